/**
 * Just enough RFC 5322 / MIME to turn a raw email into a searchable
 * document: unfolded headers, RFC 2047 encoded words in the subject, the
 * first text/plain part (else text/html with tags stripped) decoded from
 * base64 or quoted-printable in its declared charset. Pure; never throws on
 * malformed mail (it falls back to the raw text).
 */

/** The parts of an email a search document needs. */
export interface ParsedMail {
  subject: string;
  /** Sender address, lowercased ("" when absent). */
  from: string;
  /** Date header as ms since the epoch, or null when absent or unparseable. */
  date: number | null;
  body: string;
}

const MAX_BODY_CHARS = 200_000;

/** Bytes → string where each byte is one code unit (lossless "binary" view). */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

function binaryBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function decodeCharset(bytes: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset.trim().toLowerCase() || "utf-8").decode(
      bytes,
    );
  } catch {
    return latin1(bytes);
  }
}

function splitHeaders(
  raw: string,
): { headers: Map<string, string>; body: string } {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : "";
  const headers = new Map<string, string>();
  let last = "";
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, headers.get(last)! + " " + line.trim());
      continue;
    }
    const i = line.indexOf(":");
    if (i <= 0) continue;
    last = line.slice(0, i).trim().toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(i + 1).trim());
  }
  return { headers, body };
}

function param(value: string, name: string): string | null {
  const m = new RegExp(`${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(
    value,
  );
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function decodeQuotedPrintable(s: string): string {
  return s.replace(/=\r?\n/g, "").replace(
    /=([0-9A-Fa-f]{2})/g,
    (_, h) => String.fromCharCode(parseInt(h, 16)),
  );
}

function decodeBase64Binary(s: string): string {
  try {
    return atob(s.replace(/[^A-Za-z0-9+/=]/g, "").replace(/=+$/, ""));
  } catch {
    return "";
  }
}

/** Decodes RFC 2047 encoded words (`=?utf-8?Q?...?=`) in a header value. */
export function decodeEncodedWords(value: string): string {
  return value.replace(
    /=\?([^?]+)\?([BbQq])\?([^?]*)\?=(\s+(?==\?))?/g,
    (_, charset, enc, text) => {
      const bin = enc.toUpperCase() === "B"
        ? decodeBase64Binary(text)
        : decodeQuotedPrintable(text.replace(/_/g, " "));
      return decodeCharset(binaryBytes(bin), charset);
    },
  );
}

function stripHtml(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/&amp;/gi, "&")
    .replace(/&lt;/gi, "<")
    .replace(/&gt;/gi, ">")
    .replace(/&quot;/gi, '"')
    .replace(
      /&#(\d+);/g,
      (_, n) => String.fromCodePoint(Math.min(Number(n), 0x10ffff)),
    );
}

interface TextPart {
  type: "plain" | "html";
  text: string;
}

/** The text parts of a MIME entity (binary string in, decoded text out), depth-limited. */
function textParts(
  headers: Map<string, string>,
  body: string,
  depth: number,
): TextPart[] {
  const ctype = headers.get("content-type") ?? "text/plain";
  const mime = ctype.split(";")[0]!.trim().toLowerCase();
  if (mime.startsWith("multipart/") && depth < 5) {
    const boundary = param(ctype, "boundary");
    if (!boundary) return [{ type: "plain", text: body }];
    const parts = body.split(`--${boundary}`);
    const out: TextPart[] = [];
    for (const part of parts.slice(1)) {
      if (part.startsWith("--")) break;
      const p = splitHeaders(part.replace(/^\r?\n/, ""));
      out.push(...textParts(p.headers, p.body, depth + 1));
    }
    return out;
  }
  if (mime !== "text/plain" && mime !== "text/html" && mime !== "text") {
    return [];
  }
  const cte = (headers.get("content-transfer-encoding") ?? "").toLowerCase();
  let bin = body;
  if (cte.includes("base64")) bin = decodeBase64Binary(body);
  else if (cte.includes("quoted-printable")) bin = decodeQuotedPrintable(body);
  const text = decodeCharset(
    binaryBytes(bin),
    param(ctype, "charset") ?? "utf-8",
  );
  return [{ type: mime === "text/html" ? "html" : "plain", text }];
}

/** Parses a raw email given as bytes. */
export function parseMail(bytes: Uint8Array): ParsedMail {
  const raw = latin1(bytes);
  const { headers, body } = splitHeaders(raw);
  const subject = decodeEncodedWords(headers.get("subject") ?? "").replace(
    /\s+/g,
    " ",
  ).trim();
  const fromHeader = decodeEncodedWords(headers.get("from") ?? "");
  const addr = /<([^>]+)>/.exec(fromHeader)?.[1] ??
    /[^\s<>"]+@[^\s<>"]+/.exec(fromHeader)?.[0] ?? fromHeader;
  const dateMs = Date.parse(headers.get("date") ?? "");
  const parts = textParts(headers, body, 0);
  const plain = parts.find((p) => p.type === "plain");
  const html = parts.find((p) => p.type === "html");
  let text = plain ? plain.text : html ? stripHtml(html.text) : "";
  text = text.replace(/\r\n/g, "\n");
  if (text.length > MAX_BODY_CHARS) text = text.slice(0, MAX_BODY_CHARS);
  return {
    subject,
    from: addr.trim().toLowerCase(),
    date: Number.isFinite(dateMs) ? dateMs : null,
    body: text,
  };
}
