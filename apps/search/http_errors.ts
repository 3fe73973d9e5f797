import type { Context, Hono } from "hono";
import type { z } from "zod";
import { httpStatusOf, isSearchError, SearchError } from "./search_error.ts";

/** Body of every error answer: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Answers a SearchError (or anything else, as a bare 500) as JSON, never with a stack trace. */
export function errorResponse(c: Context, e: unknown): Response {
  if (isSearchError(e)) {
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    const details = (e as SearchError & { details?: unknown }).details;
    if (details !== undefined) body.error.details = details;
    return c.json(body, httpStatusOf(e.code));
  }
  return c.json(
    {
      error: { code: "internal", message: "internal error" },
    } satisfies ErrorBody,
    500,
  );
}

/** Installs JSON 404 and error handlers on an app. */
export function installErrorHandlers(app: Hono): void {
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `no route ${c.req.method} ${c.req.path}`,
      },
    }, 404)
  );
  app.onError((e, c) => errorResponse(c, e));
  // Malformed percent-encoding in the path or query is the caller's
  // mistake: answer 400 before a route decodes it.
  app.use("*", async (c, next) => {
    checkPercentEncoding(c.req.url);
    await next();
  });
}

/**
 * Throws `bad_request` when the path or a query component of `url` has
 * malformed percent-encoding (`%E0%A4%A`, `%ZZ`).
 */
export function checkPercentEncoding(url: string): void {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const rest = start < 0 ? "" : url.slice(start);
  if (!rest.includes("%")) return;
  const q = rest.indexOf("?");
  const parts = [
    q < 0 ? rest : rest.slice(0, q),
    ...(q < 0 ? [] : rest.slice(q + 1).split(/[&=]/)),
  ];
  for (const part of parts) {
    try {
      decodeURIComponent(part);
    } catch {
      throw new SearchError(
        "bad_request",
        `malformed percent-encoding in the URL: ${part.slice(0, 60)}`,
      );
    }
  }
}

/**
 * Refuses a body whose Content-Type is not one of `types` (media type
 * only, parameters ignored) with `unsupported_media_type`; a missing
 * Content-Type is accepted.
 */
export function checkContentType(c: Context, types: readonly string[]): void {
  const raw = c.req.header("content-type");
  if (raw === undefined || raw.trim() === "") return;
  const media = raw.split(";")[0]!.trim().toLowerCase();
  if (!types.includes(media)) {
    throw new SearchError(
      "unsupported_media_type",
      `content-type ${media.slice(0, 60)} is not accepted here; send ${
        types.join(" or ")
      }`,
    );
  }
}

/** A SearchError carrying structured details (line numbers, failed shards). */
export function detailedError(
  code: SearchError["code"],
  message: string,
  details: unknown,
): SearchError {
  return Object.assign(new SearchError(code, message), { details });
}

/** Validates `value` with a zod schema; `bad_request` naming the first problem otherwise. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue && issue.path.length > 0
    ? ` at ${issue.path.join(".")}`
    : "";
  throw new SearchError(
    "bad_request",
    `bad ${what}${path}: ${issue?.message ?? "invalid"}`,
  );
}

/**
 * Reads a JSON request body (at most `maxBytes`; Content-Type
 * application/json or none), as `bad_request` / `too_large` /
 * `unsupported_media_type` errors.
 */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  checkContentType(c, ["application/json"]);
  const text = await readText(c, maxBytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new SearchError("bad_request", "the body is not valid JSON");
  }
}

/** Reads a request body as text, refusing more than `maxBytes`. */
export async function readText(c: Context, maxBytes: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new SearchError(
      "too_large",
      `the body is ${declared} bytes; at most ${maxBytes} are accepted`,
    );
  }
  const body = c.req.raw.body;
  if (body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) {
        throw new SearchError(
          "too_large",
          `the body is over ${maxBytes} bytes`,
        );
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (isSearchError(e)) throw e;
    // The client stopped sending (a truncated body, a reset connection).
    throw new SearchError(
      "bad_request",
      `the request body could not be read: it ended after ${total} bytes${
        declared > 0 ? ` of a declared ${declared}` : ""
      }`,
    );
  }
  if (declared > 0 && total < declared) {
    throw new SearchError(
      "bad_request",
      `the request body ended after ${total} of a declared ${declared} bytes`,
    );
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    all.set(ch, off);
    off += ch.length;
  }
  return new TextDecoder().decode(all);
}
