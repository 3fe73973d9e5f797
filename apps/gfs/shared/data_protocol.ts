/**
 * The chunkserver's data port: GFS chunk reads and record appends as
 * messages of strata's framed TCP transport (@strata/transport), beside the
 * HTTP routes that do the same (`GET /v1/chunks/:handle`,
 * `POST /v1/chunks/:handle/records`). Every message is a zod schema encoded
 * as CBOR by @strata/codec; a frame that does not decode or validate closes
 * its connection (`frame_error`), never the server.
 *
 * A call's answer is its result message or {@link DataRefused}, which
 * carries the GfsError's code and message (so a client switches on
 * `chunk_full`, `no_lease`, `stale`… exactly as over HTTP).
 */
import { defineMessage, defineMessageSet } from "@strata/codec";
import { z } from "zod";
import { type GfsError, gfsErrorFromBody } from "./gfs_error.ts";

const Handle = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Bytes = z.instanceof(Uint8Array);

/** Client → chunkserver: read `length` bytes of a chunk at `offset`. */
export const ReadChunk = defineMessage(
  "ReadChunk",
  z.object({
    handle: Handle,
    /** The version the client located (null: whatever this replica holds). */
    version: z.number().int().min(1).nullable(),
    offset: Count,
    length: Count,
  }),
);

/** Chunkserver → client: the bytes read (every block verified first). */
export const ChunkBytes = defineMessage(
  "ChunkBytes",
  z.object({ bytes: Bytes }),
);

/** Client → primary: append one framed record (as `POST …/records`). */
export const AppendRecord = defineMessage(
  "AppendRecord",
  z.object({
    handle: Handle,
    version: z.number().int().min(1),
    /**
     * The lease's secondaries (origins), as the master named them; checked
     * by the primary against the registered chunkservers (a URL that does
     * not parse is `bad_request` there), not parsed here once per record.
     */
    secondaries: z.array(z.string().min(1).max(512)).max(15),
    data: Bytes,
  }),
);

/** Primary → client: where the record landed (durable on every replica). */
export const RecordAppended = defineMessage(
  "RecordAppended",
  z.object({ offset: Count }),
);

/**
 * Primary → secondary (peer secret only): apply a record-append batch,
 * `data` at `offset` of the chunk at `version`, as mutation `seq` (as
 * `POST …/apply-bytes`). A secondary applies a chunk's batches in `seq` order.
 */
export const ApplyBytes = defineMessage(
  "ApplyBytes",
  z.object({
    handle: Handle,
    version: z.number().int().min(1),
    offset: Count,
    /** The mutation's serial number (null: apply at once, unordered). */
    seq: z.number().int().min(1).nullable(),
    data: Bytes,
  }),
);

/** Secondary → primary: the batch is durable here. */
export const BytesApplied = defineMessage(
  "BytesApplied",
  z.object({ length: Count }),
);

/** Chunkserver → client: the call failed with this GfsError. */
export const DataRefused = defineMessage(
  "DataRefused",
  z.object({
    code: z.string().max(64),
    message: z.string().max(4096),
  }),
);

/** The data port's message set (both sides check its fingerprint). */
export const dataMessages = defineMessageSet([
  ReadChunk,
  ChunkBytes,
  AppendRecord,
  RecordAppended,
  DataRefused,
  ApplyBytes,
  BytesApplied,
]);

/** The data port's message kinds, as a tuple type. */
export type DataMessages = readonly [
  typeof ReadChunk,
  typeof ChunkBytes,
  typeof AppendRecord,
  typeof RecordAppended,
  typeof DataRefused,
  typeof ApplyBytes,
  typeof BytesApplied,
];

/**
 * Rebuilds the GfsError a chunkserver refused a call with, as an HTTP
 * client does from an error body (an unknown code reads as `unavailable`).
 */
export function refusalError(r: { code: string; message: string }): GfsError {
  return gfsErrorFromBody(503, { error: r });
}

/** The most bytes one ReadChunk may ask for (larger reads go in pieces, or over HTTP). */
export const DATA_READ_MAX_BYTES = 4 * 2 ** 20;
/** The largest record AppendRecord (or batch ApplyBytes) carries (larger ones go over HTTP). */
export const DATA_RECORD_MAX_BYTES = 16 * 2 ** 20;
/** The largest frame payload the data port sends or takes (both sides). */
export const DATA_FRAME_MAX_BYTES = DATA_RECORD_MAX_BYTES + 64 * 1024;
