import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { GfsError } from "./gfs_error.ts";
import { WriteGrantSchema } from "./write_grant.ts";

/**
 * The bulk port's wire protocol: chunk bytes travel raw on a TCP socket,
 * never copied into a frame. After an HMAC handshake, each exchange is a
 * small JSON header (4-byte big-endian length, then UTF-8 JSON, validated
 * by zod on arrival) followed by raw bytes where the header says so:
 *
 * - `read` → reply header `{ok, length}`, then `length` raw bytes;
 * - `write` (client → primary): header, then `length` raw bytes → reply
 *   `{ok, servers, length}` once durable on every server listed;
 * - `forward` (primary → secondary, peer secret only): header, raw bytes
 *   (forwarded on to the next server of `chain` while they arrive), then a
 *   trailer header `{seq}`: the mutation number the primary gave the bytes
 *   once it had them all (so each server writes in the primary's order).
 *
 * A failure replies `{error: {code, message}}` (the HTTP routes' codes).
 * One exchange at a time per connection; clients keep a pool.
 */
export const BULK_MAGIC = new TextEncoder().encode("GFSBULK1");
/** Bytes of a handshake nonce and of an HMAC-SHA256 proof. */
export const NONCE_BYTES = 32;
/** Largest JSON header accepted. */
export const BULK_HEADER_MAX_BYTES = 64 * 1024;

const Handle = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Chain = z.array(z.string().url().max(2048)).max(15);

/** What a pushed write carries, to the primary or along the chain. */
const pushFields = {
  handle: Handle,
  version: z.number().int().min(1),
  offset: Count,
  length: Count,
  chain: Chain,
  /** The master's grant for a chunk it placed without creating it (see `write_grant.ts`). */
  grant: WriteGrantSchema.optional(),
};

/** A request header. */
export const BulkRequestSchema = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("read"),
    handle: Handle,
    version: z.number().int().min(1).nullable(),
    offset: Count,
    length: Count,
  }).strict(),
  /** From the client to the primary: `chain` is the secondaries, in push order. */
  z.object({ op: z.literal("write"), ...pushFields }).strict(),
  /** From one replica to the next: `chain` is the servers after the receiver. */
  z.object({ op: z.literal("forward"), ...pushFields }).strict(),
]);
/** A request header. */
export type BulkRequest = z.infer<typeof BulkRequestSchema>;

/** The trailer of a `forward`: the primary's mutation number. */
export const BulkTrailerSchema = z.object({
  seq: z.number().int().min(1),
}).strict();

/** A reply header. */
export const BulkReplySchema = z.union([
  z.object({
    ok: z.literal(true),
    length: Count,
    /** Servers (HTTP base URLs) holding the bytes durably (writes). */
    servers: z.array(z.string()).max(16).optional(),
  }),
  z.object({
    error: z.object({ code: z.string().max(64), message: z.string() }),
  }),
]);
/** A reply header. */
export type BulkReply = z.infer<typeof BulkReplySchema>;

/** The minimal socket a bulk exchange needs (a `Deno.Conn`). */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
}

/**
 * A socket read through a kept buffer: a read smaller than the buffer
 * takes whatever has arrived (up to the buffer's size) in one socket read,
 * and later reads are served from it first; a larger read with nothing
 * buffered goes straight to the socket. A header and the bytes after it
 * (a small read's reply, a write's first bytes) then cost one socket
 * read, i.e. one trip through the event loop, instead of three. Writes
 * pass through. Safe on a bulk connection because every read of it goes
 * through here.
 */
export class ReadAhead implements ByteConn {
  #buf: Uint8Array | null = null;
  #at = 0;
  #end = 0;

  /** @param conn the socket; @param size the buffer (allocated at the first small read). */
  constructor(readonly conn: ByteConn, readonly size: number) {}

  /** The bytes received and not read yet (a view, valid until the next read). */
  buffered(): Uint8Array {
    return this.#buf === null ? EMPTY : this.#buf.subarray(this.#at, this.#end);
  }

  /**
   * With nothing buffered, one socket read into the buffer.
   * @returns false at the end of the stream.
   */
  async fill(): Promise<boolean> {
    if (this.#at < this.#end) return true;
    this.#buf ??= new Uint8Array(this.size);
    const n = await this.conn.read(this.#buf);
    if (n === null) return false;
    this.#at = 0;
    this.#end = n;
    return true;
  }

  /** Drops the first `n` of the {@link buffered} bytes (they were used). */
  skip(n: number): void {
    this.#at = Math.min(this.#end, this.#at + n);
  }

  /** Like `Deno.Conn.read`: bytes read into `p` (at least one), or null at the end. */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    if (this.#at === this.#end) {
      if (p.length >= this.size) return await this.conn.read(p);
      this.#buf ??= new Uint8Array(this.size);
      const n = await this.conn.read(this.#buf);
      if (n === null) return null;
      this.#at = 0;
      this.#end = n;
    }
    const n = Math.min(p.length, this.#end - this.#at);
    p.set(this.#buf!.subarray(this.#at, this.#at + n));
    this.#at += n;
    return n;
  }

  /** Writes to the socket. */
  write(p: Uint8Array): Promise<number> {
    return this.conn.write(p);
  }
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes all of `bytes`. */
export async function writeAll(c: ByteConn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await c.write(bytes.subarray(o));
}

/**
 * Reads exactly `into.length` bytes into `into` (no copy beyond the
 * socket's own).
 * @returns false at a clean end of stream before the first byte.
 * @throws GfsError `unavailable` when the stream ends part way.
 */
export async function readExact(
  c: ByteConn,
  into: Uint8Array,
): Promise<boolean> {
  let got = 0;
  while (got < into.length) {
    const n = await c.read(into.subarray(got));
    if (n === null) {
      if (got === 0) return false;
      throw new GfsError("unavailable", "bulk connection closed mid-message");
    }
    got += n;
  }
  return true;
}

/** Encodes a header: 4-byte big-endian length, then the JSON. */
export function encodeHeader(value: unknown): Uint8Array {
  const json = encoder.encode(JSON.stringify(value));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

/**
 * Reads one header and validates it.
 * @returns null at a clean end of stream.
 * @throws GfsError `bad_request` (too long, not JSON, fails `schema`),
 *   `unavailable` (stream ended part way).
 */
export async function readHeader<S extends z.ZodType>(
  c: ByteConn,
  schema: S,
): Promise<z.infer<S> | null> {
  if (c instanceof ReadAhead) {
    // The usual case: the whole header comes in one socket read. It is
    // parsed where it lies, without copies or further awaits.
    if (!await c.fill()) return null;
    const got = c.buffered();
    if (got.length >= 4) {
      const n = new DataView(got.buffer, got.byteOffset, 4).getUint32(0);
      if (n <= BULK_HEADER_MAX_BYTES && got.length >= 4 + n) {
        c.skip(4 + n);
        return parseHeader(got.subarray(4, 4 + n), schema);
      }
    }
  }
  const len = new Uint8Array(4);
  if (!await readExact(c, len)) return null;
  const n = new DataView(len.buffer).getUint32(0);
  if (n > BULK_HEADER_MAX_BYTES) {
    throw new GfsError("bad_request", `bulk header of ${n} bytes is too long`);
  }
  const body = new Uint8Array(n);
  if (!await readExact(c, body)) {
    throw new GfsError("unavailable", "bulk connection closed mid-header");
  }
  return parseHeader(body, schema);
}

/** A header's JSON, validated by `schema` (throws as {@link readHeader}). */
function parseHeader<S extends z.ZodType>(
  body: Uint8Array,
  schema: S,
): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch {
    throw new GfsError("bad_request", "bulk header is not JSON");
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    throw new GfsError(
      "bad_request",
      `bad bulk header: ${r.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return r.data;
}

/**
 * The handshake proof: HMAC-SHA256 of the role label and both nonces,
 * keyed by the secret (which never travels); the role label stops a proof
 * from being reflected back at its sender.
 */
export function bulkProof(
  secret: string,
  role: "client" | "server",
  challenge: Uint8Array,
  response: Uint8Array,
): Uint8Array {
  const h = createHmac("sha256", secret);
  h.update(`gfs-bulk-v1:${role}`);
  h.update(challenge);
  h.update(response);
  return new Uint8Array(h.digest());
}

/** Constant-time comparison of two proofs. */
export function proofsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length &&
    timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Whether `got` starts with the protocol's magic. */
export function hasMagic(got: Uint8Array): boolean {
  return BULK_MAGIC.every((b, i) => got[i] === b);
}
