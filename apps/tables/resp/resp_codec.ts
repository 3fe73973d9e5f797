/**
 * `resp_codec.ts`: the RESP2 wire format, pure (no I/O).
 *
 * - {@link RespRequestParser} reads client commands from a byte stream cut
 *   anywhere: multibulk frames (`*N\r\n$len\r\n…\r\n`, what every client
 *   library, `redis-cli` and `redis-benchmark` send) and inline commands
 *   (`PING\r\n`, what a person types into `nc`), as Redis does. Malformed
 *   input and frames over the limits throw {@link RespProtocolError},
 *   whose message is Redis' own (`Protocol error: …`); the caller answers
 *   it and closes the connection, as Redis does.
 * - {@link RespReplyParser} reads replies (for the router's peer
 *   connections and tests).
 * - {@link RespWriter} encodes replies and commands into one growing
 *   buffer, so a batch of pipelined replies is one write.
 *
 * Hand-written: the npm RESP parsers (`redis-parser`, `respjs`) parse
 * replies only, not inline commands, and are unmaintained; this one works
 * on `Uint8Array` views without copying arguments.
 */

/** Limits of one request frame. */
export interface RespLimits {
  /** Largest bulk string (an argument), bytes. */
  maxBulkBytes: number;
  /** Most arguments in one command. */
  maxArgs: number;
  /** Largest inline command line, bytes. */
  maxInlineBytes: number;
  /** Largest whole command frame, bytes (Redis: client-query-buffer-limit). */
  maxFrameBytes: number;
}

/** Redis' defaults are 512 MiB, 1 Mi arguments, 64 KiB and 1 GiB. */
export const DEFAULT_RESP_LIMITS: RespLimits = {
  maxBulkBytes: 8 << 20,
  maxArgs: 1 << 20,
  maxInlineBytes: 64 << 10,
  maxFrameBytes: 32 << 20,
};

/** Malformed or oversized input: answer `-ERR <message>`, then close. */
export class RespProtocolError extends Error {
  /** @param message Redis' wording, starting with `Protocol error:`. */
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

const CR = 13;
const LF = 10;

/**
 * Parses client commands. `push` a chunk, then call `next` until it
 * returns undefined (the rest is an incomplete frame). The arguments are
 * views into the parser's buffer, valid until the next `push`.
 */
export class RespRequestParser {
  #buf = new Uint8Array(16 << 10);
  #start = 0;
  #end = 0;
  readonly #limits: RespLimits;

  /** @param limits frame limits (default {@link DEFAULT_RESP_LIMITS}). */
  constructor(limits: Partial<RespLimits> = {}) {
    this.#limits = { ...DEFAULT_RESP_LIMITS, ...limits };
  }

  /** Bytes received but not yet parsed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Appends received bytes. */
  push(chunk: Uint8Array): void {
    const have = this.#end - this.#start;
    if (have === 0) {
      this.#start = this.#end = 0;
    }
    if (this.#end + chunk.length > this.#buf.length) {
      if (have + chunk.length <= this.#buf.length / 2) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(
          Math.max(this.#buf.length * 2, (have + chunk.length) * 2),
        );
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = have;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * The next complete command, or undefined when more bytes are needed.
   * An empty inline line is skipped, as Redis does.
   * @throws RespProtocolError on malformed or oversized input.
   */
  next(): Uint8Array[] | undefined {
    for (;;) {
      if (this.#start >= this.#end) return undefined;
      const first = this.#buf[this.#start];
      const r = first === 42 /* * */ ? this.#multibulk() : this.#inline();
      if (r === undefined) {
        if (this.#end - this.#start > this.#limits.maxFrameBytes) {
          throw new RespProtocolError(
            `Protocol error: a command over ${this.#limits.maxFrameBytes} bytes`,
          );
        }
        return undefined;
      }
      if (r.length > 0) return r;
    }
  }

  /** The buffer the offsets of {@link fast} point into (until the next `push`). */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /** Key offset and length, value offset and length of the last {@link fast} frame. */
  fastKey = 0;
  fastKeyLength = 0;
  fastValue = 0;
  fastValueLength = 0;
  /** Where the last {@link fast} frame starts (its `*`) and ends. */
  fastStart = 0;
  fastEnd = 0;
  /** Whether the last {@link fast} frame was `STRATA.LOCAL GET|SET …` (a peer's forward). */
  fastLocal = false;

  /**
   * Whether the next frame is a complete `GET key` (1) or `SET key value`
   * (2) multibulk, the commands of a cache's hot path: their offsets are
   * left in `fastKey`… (no arguments array, no views), and
   * {@link skipFast} consumes the frame. 0: anything else, incomplete or
   * malformed (call {@link next}, which reads every frame).
   */
  fast(): number {
    const b = this.#buf;
    const start = this.#start;
    const end = this.#end;
    // "*2\r\n$3\r\nGET\r\n$" or "*3…SET…": 14 bytes from `s`. A peer's
    // forward is "*3\r\n$12\r\nSTRATA.LOCAL\r\n$3\r\nGET…" (or "*4…SET…"):
    // then `s` is put 4 bytes before its "$3", and the count read at start.
    if (start + 14 > end || b[start] !== 42) return 0;
    if (b[start + 2] !== CR || b[start + 3] !== LF) return 0;
    const local = b[start + 4] === 36 && b[start + 5] === 49;
    if (local && (start + 37 > end || !isStrataLocal(b, start + 6))) return 0;
    const s = local ? start + 19 : start;
    const n = b[start + 1]! - (local ? 1 : 0);
    if (
      (n !== 50 && n !== 51) ||
      b[s + 4] !== 36 || b[s + 5] !== 51 || b[s + 6] !== CR ||
      b[s + 7] !== LF || b[s + 11] !== CR || b[s + 12] !== LF ||
      b[s + 13] !== 36 || (b[s + 9]! | 0x20) !== 101 ||
      (b[s + 10]! | 0x20) !== 116
    ) return 0;
    const c = b[s + 8]! | 0x20;
    const kind = c === 103 && n === 50 ? 1 : c === 115 && n === 51 ? 2 : 0;
    if (kind === 0) return 0;
    let pos = s + 14;
    let len = 0;
    for (; pos < end && b[pos] !== CR; pos++) {
      const d = b[pos]! - 48;
      if (d < 0 || d > 9 || len > 4096) return 0;
      len = len * 10 + d;
    }
    // The key: 1..4096 bytes (the listener's limits), CRLF-terminated.
    if (len === 0 || len > 4096 || pos + 2 + len + 2 > end) return 0;
    if (b[pos + 1] !== LF) return 0;
    this.fastKey = pos + 2;
    this.fastKeyLength = len;
    pos += 2 + len;
    if (b[pos] !== CR || b[pos + 1] !== LF) return 0;
    pos += 2;
    if (kind === 2) {
      if (pos + 1 > end || b[pos] !== 36) return 0;
      pos++;
      const from = pos;
      let vlen = 0;
      for (; pos < end && b[pos] !== CR; pos++) {
        const d = b[pos]! - 48;
        if (d < 0 || d > 9 || vlen > this.#limits.maxBulkBytes) return 0;
        vlen = vlen * 10 + d;
      }
      if (pos === from || vlen > this.#limits.maxBulkBytes) return 0;
      if (pos + 2 + vlen + 2 > end || b[pos + 1] !== LF) return 0;
      this.fastValue = pos + 2;
      this.fastValueLength = vlen;
      pos += 2 + vlen;
      if (b[pos] !== CR || b[pos + 1] !== LF) return 0;
      pos += 2;
    }
    this.fastStart = start;
    this.fastEnd = pos;
    this.fastLocal = local;
    return kind;
  }

  /** Consumes the frame {@link fast} recognised. */
  skipFast(): void {
    this.#start = this.fastEnd;
  }

  /** Index of the CR of the next CRLF at or after `from`, or -1. */
  #line(from: number): number {
    // A loop: the lines here are a few bytes (`$3`, `*3`), shorter than
    // what calling the indexOf builtin costs (and no view per line).
    const b = this.#buf;
    const end = this.#end;
    for (let i = from; i < end; i++) if (b[i] === CR) return i;
    return -1;
  }

  /** Parses a decimal integer in [from, to); NaN when not one. */
  #int(from: number, to: number): number {
    const b = this.#buf;
    let neg = false;
    let i = from;
    if (i < to && b[i] === 45 /* - */) {
      neg = true;
      i++;
    }
    if (i >= to || to - i > 15) return NaN;
    let n = 0;
    for (; i < to; i++) {
      const d = b[i]! - 48;
      if (d < 0 || d > 9) return NaN;
      n = n * 10 + d;
    }
    return neg ? -n : n;
  }

  #multibulk(): Uint8Array[] | undefined {
    const b = this.#buf;
    const cr = this.#line(this.#start + 1);
    if (cr < 0) {
      if (this.#end - this.#start > 64) {
        throw new RespProtocolError(
          "Protocol error: too big mbulk count string",
        );
      }
      return undefined;
    }
    if (cr + 1 >= this.#end) return undefined;
    if (b[cr + 1] !== LF) {
      throw new RespProtocolError("Protocol error: invalid multibulk length");
    }
    const n = this.#int(this.#start + 1, cr);
    if (!Number.isInteger(n) || n > this.#limits.maxArgs) {
      throw new RespProtocolError("Protocol error: invalid multibulk length");
    }
    let pos = cr + 2;
    if (n <= 0) {
      this.#start = pos;
      return [];
    }
    const args: Uint8Array[] = new Array(n);
    for (let k = 0; k < n; k++) {
      if (pos >= this.#end) return undefined;
      if (b[pos] !== 36 /* $ */) {
        throw new RespProtocolError(
          `Protocol error: expected '$', got '${String.fromCharCode(b[pos]!)}'`,
        );
      }
      const lcr = this.#line(pos + 1);
      if (lcr < 0) {
        if (this.#end - pos > 32) {
          throw new RespProtocolError(
            "Protocol error: too big bulk count string",
          );
        }
        return undefined;
      }
      if (lcr + 1 >= this.#end) return undefined;
      const len = this.#int(pos + 1, lcr);
      if (
        b[lcr + 1] !== LF || !Number.isInteger(len) || len < 0 ||
        len > this.#limits.maxBulkBytes
      ) {
        throw new RespProtocolError("Protocol error: invalid bulk length");
      }
      const dataStart = lcr + 2;
      if (dataStart + len + 2 > this.#end) return undefined;
      if (b[dataStart + len] !== CR || b[dataStart + len + 1] !== LF) {
        throw new RespProtocolError(
          "Protocol error: bulk string not terminated by CRLF",
        );
      }
      args[k] = b.subarray(dataStart, dataStart + len);
      pos = dataStart + len + 2;
    }
    this.#start = pos;
    return args;
  }

  #inline(): Uint8Array[] | undefined {
    const b = this.#buf;
    const lf = b.subarray(this.#start, this.#end).indexOf(LF);
    if (lf < 0) {
      if (this.#end - this.#start > this.#limits.maxInlineBytes) {
        throw new RespProtocolError("Protocol error: too big inline request");
      }
      return undefined;
    }
    let stop = this.#start + lf;
    const next = stop + 1;
    if (stop > this.#start && b[stop - 1] === CR) stop--;
    if (stop - this.#start > this.#limits.maxInlineBytes) {
      throw new RespProtocolError("Protocol error: too big inline request");
    }
    const args = splitInline(b.subarray(this.#start, stop));
    if (args.length > this.#limits.maxArgs) {
      throw new RespProtocolError("Protocol error: invalid multibulk length");
    }
    this.#start = next;
    return args;
  }
}

const STRATA_LOCAL_NAME = new TextEncoder().encode("2\r\nSTRATA.LOCAL\r\n");
/** Whether `2\r\nSTRATA.LOCAL\r\n` (after a `$1`) is at `at`, as forwarders send it. */
function isStrataLocal(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < STRATA_LOCAL_NAME.length; i++) {
    if (b[at + i] !== STRATA_LOCAL_NAME[i]) return false;
  }
  return true;
}

/** Splits an inline command at spaces and tabs, honouring quotes as Redis does. */
function splitInline(line: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && (line[i] === 32 || line[i] === 9)) i++;
    if (i >= n) break;
    const q = line[i];
    if (q === 34 /* " */ || q === 39 /* ' */) {
      const bytes: number[] = [];
      i++;
      let closed = false;
      while (i < n) {
        const c = line[i]!;
        if (c === 92 /* \ */ && q === 34 && i + 1 < n) {
          const e = line[i + 1]!;
          const esc: Record<number, number> = {
            110: 10,
            114: 13,
            116: 9,
            98: 8,
            97: 7,
          };
          bytes.push(esc[e] ?? e);
          i += 2;
        } else if (c === q) {
          closed = true;
          i++;
          break;
        } else {
          bytes.push(c);
          i++;
        }
      }
      if (!closed || (i < n && line[i] !== 32 && line[i] !== 9)) {
        throw new RespProtocolError(
          "Protocol error: unbalanced quotes in request",
        );
      }
      out.push(new Uint8Array(bytes));
    } else {
      const s = i;
      while (i < n && line[i] !== 32 && line[i] !== 9) i++;
      out.push(line.subarray(s, i));
    }
  }
  return out;
}

/** A RESP2 reply. */
export type RespValue =
  | { type: "simple"; value: string }
  | { type: "error"; value: string }
  | { type: "integer"; value: number }
  | { type: "bulk"; value: Uint8Array | null }
  | { type: "array"; value: RespValue[] | null };

const lineDecoder = new TextDecoder();

/** Parses replies from a byte stream cut anywhere (a peer or a test client). */
export class RespReplyParser {
  #buf = new Uint8Array(0);
  #pos = 0;
  readonly #maxBulk: number;

  /** @param maxBulkBytes largest bulk string accepted. */
  constructor(maxBulkBytes = 64 << 20) {
    this.#maxBulk = maxBulkBytes;
  }

  /** Appends received bytes. */
  push(chunk: Uint8Array): void {
    const rest = this.#buf.subarray(this.#pos);
    const b = new Uint8Array(rest.length + chunk.length);
    b.set(rest);
    b.set(chunk, rest.length);
    this.#buf = b;
    this.#pos = 0;
  }

  /** Bytes received but not yet parsed. */
  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  /**
   * The next complete reply as its bytes (a copy), not parsed into a
   * value: what a forwarder passes on to its client as it is.
   * @throws RespProtocolError on malformed input.
   */
  nextRaw(): Uint8Array | undefined {
    const end = this.#skip(this.#pos);
    if (end < 0) return undefined;
    const out = this.#buf.slice(this.#pos, end);
    this.#pos = end;
    return out;
  }

  /** The end of the complete reply at `pos`, or -1. */
  #skip(pos: number): number {
    if (pos >= this.#buf.length) return -1;
    const t = this.#buf[pos];
    const cr = this.#crAt(pos + 1);
    if (cr < 0) return -1;
    const after = cr + 2;
    switch (t) {
      case 43: // +
      case 45: // -
        return after;
      case 58: // :
        if (this.#intAt(pos + 1, cr) === undefined) {
          throw new RespProtocolError("Protocol error: bad integer");
        }
        return after;
      case 36: { // $
        const len = this.#intAt(pos + 1, cr);
        if (len === undefined || len < -1 || len > this.#maxBulk) {
          throw new RespProtocolError("Protocol error: invalid bulk length");
        }
        if (len === -1) return after;
        return after + len + 2 > this.#buf.length ? -1 : after + len + 2;
      }
      case 42: { // *
        const n = this.#intAt(pos + 1, cr);
        if (n === undefined || n < -1) {
          throw new RespProtocolError("Protocol error: invalid array length");
        }
        let p = after;
        for (let i = 0; i < n && p >= 0; i++) p = this.#skip(p);
        return p;
      }
      default:
        throw new RespProtocolError(
          `Protocol error: unknown reply type '${String.fromCharCode(t!)}'`,
        );
    }
  }

  /**
   * The next complete reply, or undefined when more bytes are needed.
   * @throws RespProtocolError on malformed input.
   */
  next(): RespValue | undefined {
    const r = this.#value(this.#pos);
    if (!r) return undefined;
    this.#pos = r[1];
    return r[0];
  }

  /** Index of the CR ending the line at `pos` (its LF checked), or -1. */
  #crAt(pos: number): number {
    const b = this.#buf;
    for (let i = pos; i + 1 < b.length; i++) {
      if (b[i] !== CR) continue;
      if (b[i + 1] !== LF) {
        throw new RespProtocolError("Protocol error: expected CRLF");
      }
      return i;
    }
    return -1;
  }

  /** The decimal integer in [from, to), or undefined when it is not one. */
  #intAt(from: number, to: number): number | undefined {
    const b = this.#buf;
    let i = from;
    const neg = b[i] === 45;
    if (neg) i++;
    if (i >= to || to - i > 20) return undefined;
    let n = 0;
    for (; i < to; i++) {
      const d = b[i]! - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    return neg ? -n : n;
  }

  #value(pos: number): [RespValue, number] | undefined {
    if (pos >= this.#buf.length) return undefined;
    const t = this.#buf[pos];
    // Lengths and integers are read from the bytes (no string per reply:
    // the forwarding path parses one per command).
    const cr = this.#crAt(pos + 1);
    if (cr < 0) return undefined;
    const after = cr + 2;
    switch (t) {
      case 43: // +
        return [{
          type: "simple",
          value: cr - pos === 3 && this.#buf[pos + 1] === 79 &&
              this.#buf[pos + 2] === 75
            ? "OK"
            : lineDecoder.decode(this.#buf.subarray(pos + 1, cr)),
        }, after];
      case 45: // -
        return [{
          type: "error",
          value: lineDecoder.decode(this.#buf.subarray(pos + 1, cr)),
        }, after];
      case 58: { // :
        const n = this.#intAt(pos + 1, cr);
        if (n === undefined) {
          throw new RespProtocolError("Protocol error: bad integer");
        }
        return [{ type: "integer", value: n }, after];
      }
      case 36: { // $
        const len = this.#intAt(pos + 1, cr);
        if (len === undefined || len < -1 || len > this.#maxBulk) {
          throw new RespProtocolError("Protocol error: invalid bulk length");
        }
        if (len === -1) return [{ type: "bulk", value: null }, after];
        if (after + len + 2 > this.#buf.length) return undefined;
        return [{
          type: "bulk",
          value: this.#buf.slice(after, after + len),
        }, after + len + 2];
      }
      case 42: { // *
        const n = this.#intAt(pos + 1, cr);
        if (n === undefined || n < -1) {
          throw new RespProtocolError("Protocol error: invalid array length");
        }
        if (n === -1) return [{ type: "array", value: null }, after];
        const items: RespValue[] = [];
        let p = after;
        for (let i = 0; i < n; i++) {
          const r = this.#value(p);
          if (!r) return undefined;
          items.push(r[0]);
          p = r[1];
        }
        return [{ type: "array", value: items }, p];
      }
      default:
        throw new RespProtocolError(
          `Protocol error: unknown reply type '${String.fromCharCode(t!)}'`,
        );
    }
  }
}

const encoder = new TextEncoder();
const OK_BYTES = encoder.encode("+OK\r\n");
const DIGITS: Uint8Array[] = Array.from(
  { length: 1024 },
  (_, i) => encoder.encode(String(i)),
);

/** `s` with CR and LF replaced by spaces (a simple string or error is one line). */
const clean = (s: string) =>
  s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]/g, " ") : s;

/** Encodes replies (or commands) into one growing buffer. */
export class RespWriter {
  #buf = new Uint8Array(16 << 10);
  #len = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** The bytes written, as a view (valid until the next write or reset). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Takes the bytes written (a copy) and empties the writer. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#len);
    this.#len = 0;
    return out;
  }

  /** Empties the writer. */
  reset(): void {
    this.#len = 0;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  /** Raw bytes. */
  raw(bytes: Uint8Array): this {
    const n = bytes.length;
    this.#room(n);
    if (n <= 16) {
      // Byte by byte: cheaper than the set builtin for a few bytes (the
      // digits of a length, +OK).
      const b = this.#buf;
      let at = this.#len;
      for (let i = 0; i < n; i++) b[at++] = bytes[i]!;
    } else this.#buf.set(bytes, this.#len);
    this.#len += n;
    return this;
  }

  #ascii(s: string): void {
    this.#room(s.length * 3);
    const r = encoder.encodeInto(s, this.#buf.subarray(this.#len));
    this.#len += r.written;
  }

  #number(n: number): void {
    if (n >= 0 && n < 1024 && Number.isInteger(n)) this.raw(DIGITS[n]!);
    else this.#ascii(String(n));
  }

  #crlf(): void {
    this.#room(2);
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  /** `+text` (no CR or LF in `text`). */
  simple(text: string): this {
    this.#room(1);
    this.#buf[this.#len++] = 43;
    this.#ascii(clean(text));
    this.#crlf();
    return this;
  }

  /** `-message` (CR and LF replaced by spaces). */
  error(message: string): this {
    this.#room(1);
    this.#buf[this.#len++] = 45;
    this.#ascii(clean(message));
    this.#crlf();
    return this;
  }

  /** `:n`. */
  integer(n: number): this {
    this.#room(1);
    this.#buf[this.#len++] = 58;
    this.#number(n);
    this.#crlf();
    return this;
  }

  /** `$len bytes`, or `$-1` for null. */
  bulk(value: Uint8Array | string | null): this {
    if (value === null) {
      this.#ascii("$-1\r\n");
      return this;
    }
    const bytes = typeof value === "string" ? encoder.encode(value) : value;
    this.#room(bytes.length + 16);
    this.#buf[this.#len++] = 36;
    this.#number(bytes.length);
    this.#crlf();
    this.raw(bytes);
    this.#crlf();
    return this;
  }

  /** `*n` (then n values), or `*-1` for null. */
  array(n: number | null): this {
    if (n === null) {
      this.#ascii("*-1\r\n");
      return this;
    }
    this.#room(1);
    this.#buf[this.#len++] = 42;
    this.#number(n);
    this.#crlf();
    return this;
  }

  /** A command as a multibulk frame. */
  command(args: readonly (Uint8Array | string)[]): this {
    this.array(args.length);
    for (const a of args) this.bulk(a);
    return this;
  }

  /** A reply value. */
  value(v: RespValue): this {
    switch (v.type) {
      case "simple":
        return v.value === "OK" ? this.raw(OK_BYTES) : this.simple(v.value);
      case "error":
        return this.error(v.value);
      case "integer":
        return this.integer(v.value);
      case "bulk":
        return this.bulk(v.value);
      case "array":
        if (v.value === null) return this.array(null);
        this.array(v.value.length);
        for (const x of v.value) this.value(x);
        return this;
    }
  }
}

/** A command as a RESP multibulk frame. */
export function encodeCommand(
  args: readonly (Uint8Array | string)[],
): Uint8Array {
  return new RespWriter().command(args).take();
}
