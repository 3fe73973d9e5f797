import { Decoder, Encoder } from "cbor-x";
import type { z } from "zod";
import { CodecError } from "./codec_error.ts";
import { encodeFrame, type Frame } from "./frame.ts";
import {
  fromWireChecked,
  positionalStructure,
} from "./positional_structure.ts";
import { schemaFingerprint } from "./schema_fingerprint.ts";
import {
  compileSchemaReader,
  REJECT,
  schemaMayHoldBytes,
} from "./schema_reader.ts";

// One plain CBOR encoder for every message: no record extension, so no state
// is carried from one message to the next (see positional_structure.ts).
// Byte strings are tagged so they decode as plain Uint8Array (not Buffer,
// whose slice() shares memory).
const cborOptions = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: true,
} as const;
const encoder = new Encoder(cborOptions);
const decoder = new Decoder(cborOptions);

/**
 * Decodes CBOR bytes, turning whatever the decoder throws into a CodecError.
 * With `copy` (the default), byte strings in the result are views of a
 * private copy of `bytes`, so they never change when the caller reuses its
 * buffer; one copy of the whole input is several times cheaper than cbor-x's
 * per-field `copyBuffers`. Pass `copy = false` only when the value cannot
 * hold byte strings, or when `bytes` are the caller's own copy that nothing
 * reuses (then byte strings are views of it).
 */
export function decodeCbor(bytes: Uint8Array, copy = true): unknown {
  try {
    return decoder.decode(copy ? new Uint8Array(bytes) : bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const truncated = /end of|unexpected end|insufficient/i.test(msg);
    throw new CodecError(
      truncated ? "truncated" : "schema_violation",
      `invalid CBOR: ${msg}`,
      { cause: e },
    );
  }
}

/**
 * cbor-x returns a Node Buffer; hand out a plain Uint8Array over the same
 * memory so that `.slice()` copies, as it does for every other Uint8Array.
 */
function plainBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A named message kind with its zod schema and typed encode/decode. */
export interface MessageType<
  N extends string = string,
  S extends z.ZodType = z.ZodType,
> {
  /** Unique name within a message set; part of the fingerprint. */
  readonly name: N;
  /** The single definition of the message's shape. */
  readonly schema: S;
  /** Encodes a message to CBOR bytes (objects as positional structures). */
  encode(message: z.output<S>): Uint8Array;
  /**
   * Decodes and validates untrusted bytes.
   * @throws CodecError (`truncated`, `schema_violation`) on bad bytes.
   */
  decode(bytes: Uint8Array): z.output<S>;
  /** Validates an already decoded wire value (for callers that decode CBOR themselves). */
  fromWire(wire: unknown): z.output<S>;
  /** The wire form of a message before CBOR: objects as positional arrays. */
  toWire(message: z.output<S>): unknown;
}

/**
 * Defines a message kind. The schema is the single source of truth: the type
 * is inferred from it, decoding validates against it, and the message set's
 * fingerprint is computed from it.
 *
 * @example
 * ```ts
 * const Heartbeat = defineMessage("Heartbeat", z.object({ term: z.number() }));
 * Heartbeat.decode(Heartbeat.encode({ term: 3 })); // { term: 3 }
 * ```
 */
export function defineMessage<N extends string, S extends z.ZodType>(
  name: N,
  schema: S,
): MessageType<N, S> {
  const structure = positionalStructure(schema);
  const read = compileSchemaReader(schema);
  const copy = schemaMayHoldBytes(schema);
  const fromWire = (wire: unknown): z.output<S> => {
    try {
      return read(wire) as z.output<S>;
    } catch (e) {
      if (e !== REJECT) throw e;
    }
    // Rejected by the fast path: zod, the definition, says why.
    const value = fromWireChecked(structure, wire, name);
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `.${issue.path.join(".")}` : "";
      throw new CodecError(
        "schema_violation",
        `${name}${where}: ${issue?.message ?? "invalid"}`,
      );
    }
    return parsed.data;
  };
  return {
    name,
    schema,
    encode: (message) => plainBytes(encoder.encode(structure.toWire(message))),
    decode: (bytes) => fromWire(decodeCbor(bytes, copy)),
    fromWire,
    toWire: (message) => structure.toWire(message),
  };
}

// deno-lint-ignore no-explicit-any
type AnyMessageType = MessageType<string, any>;

/** A decoded frame of a message set: the message's name and its value. */
export type DecodedMessage<T extends readonly AnyMessageType[]> = {
  [K in keyof T]: T[K] extends MessageType<infer N, infer S>
    ? { type: N; message: z.output<S> }
    : never;
}[number];

/** A group of message kinds that two peers agree on, with stable type ids. */
export interface MessageSet<T extends readonly AnyMessageType[]> {
  /** The kinds, sorted by name; a kind's type id is its position + 1. */
  readonly types: readonly AnyMessageType[];
  /** SHA-256 hex of every kind's name and schema (see schemaFingerprint). */
  readonly fingerprint: string;
  /** Type id of a kind in this set. @throws CodecError `unknown_type`. */
  typeId(type: T[number] | T[number]["name"]): number;
  /** The kind with this id, or undefined. */
  byId(id: number): T[number] | undefined;
  /** Encodes `message` of kind `type` into a whole frame. */
  encodeFrame<M extends T[number]>(
    type: M,
    message: M extends MessageType<string, infer S> ? z.output<S> : never,
    flags?: number,
  ): Uint8Array;
  /**
   * Decodes and validates a frame's payload by its type id.
   * @throws CodecError `unknown_type`, `truncated`, `schema_violation`.
   */
  decodeFrame(frame: Frame): DecodedMessage<T>;
}

/**
 * Groups message kinds into a set. Type ids follow the sorted names, so the
 * order in which kinds are listed does not matter, and the fingerprint
 * tells whether two peers hold the same set.
 *
 * @throws Error when two kinds share a name.
 */
export function defineMessageSet<const T extends readonly AnyMessageType[]>(
  types: T,
): MessageSet<T> {
  const sorted = [...types].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  const ids = new Map<string, number>();
  sorted.forEach((t, i) => {
    if (ids.has(t.name)) throw new Error(`duplicate message name ${t.name}`);
    ids.set(t.name, i + 1);
  });
  if (sorted.length > 0xffff) throw new Error("at most 65535 message kinds");
  const fingerprint = schemaFingerprint(sorted);
  const typeId = (type: AnyMessageType | string): number => {
    const name = typeof type === "string" ? type : type.name;
    const id = ids.get(name);
    if (id === undefined) {
      throw new CodecError("unknown_type", `no message named ${name} in set`);
    }
    return id;
  };
  return {
    types: sorted,
    fingerprint,
    typeId,
    byId: (id) => sorted[id - 1] as T[number] | undefined,
    encodeFrame: (type, message, flags = 0) =>
      encodeFrame({ type: typeId(type), flags, payload: type.encode(message) }),
    decodeFrame(frame) {
      const kind = sorted[frame.type - 1];
      if (!kind) {
        throw new CodecError(
          "unknown_type",
          `frame has message type ${frame.type}, unknown to this set`,
        );
      }
      return {
        type: kind.name,
        message: kind.decode(frame.payload),
      } as DecodedMessage<T>;
    },
  };
}
