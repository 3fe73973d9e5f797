import { z } from "zod";
import { MAX_PATH_LENGTH } from "./gfs_path.ts";
import { WriteGrantSchema } from "./write_grant.ts";

const Handle = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** A chunk handle in a route (`:handle`, a string): a positive safe integer. */
export const HandleParam = z.coerce.number().pipe(Handle);
const Url = z.string().url().max(512);
const Path = z.string().min(1).max(MAX_PATH_LENGTH);

/** Chunkserver → master heartbeat body. */
export const HeartbeatSchema = z.object({
  id: z.string().min(1).max(128),
  url: Url,
  rack: z.string().max(64),
  capacityBytes: z.number().int().min(0),
  usedBytes: z.number().int().min(0),
  load: z.number().min(0),
  chunks: z.array(
    z.tuple([Handle, z.number().int().min(1), z.number().int().min(0)]),
  ),
  extend: z.array(Handle),
  /** The chunkserver's chunk size; a master of another cell refuses it. */
  chunkBytes: z.number().int().min(1).optional(),
});

/** Master → chunkserver heartbeat reply. */
export const HeartbeatReplySchema = z.object({
  delete: z.array(Handle),
  leases: z.array(z.object({
    handle: Handle,
    version: z.number().int(),
    expiresAt: z.number(),
  })),
  /**
   * Every chunkserver registered with the master: the only peers a
   * chunkserver pushes to, forwards to or clones from.
   */
  peers: z.array(Url).optional(),
});

/** Chunkserver → master: a replica failed its checksum and was dropped. */
export const CorruptReportSchema = z.object({
  id: z.string().min(1).max(128),
  handle: Handle,
});

/** Client → master: create a file. */
export const CreateSchema = z.object({
  path: Path,
  replication: z.number().int().min(1).max(16).optional(),
  mode: z.enum(["upload", "append"]).default("upload"),
  /**
   * Also allocate chunk 0 and answer its write target (an upload that has
   * data): saves the client a round trip and the master a log write.
   */
  allocate: z.boolean().optional(),
  /**
   * Answer chunk 0's target with a write grant (the client writes over the
   * bulk ports): the master then does not create the chunk on the
   * chunkservers before answering; the write carries the grant.
   */
  grant: z.boolean().optional(),
});

/** Where a client writes one chunk: primary first, then the chain. */
export const WriteTargetSchema = z.object({
  handle: Handle,
  version: z.number().int(),
  primary: Url,
  secondaries: z.array(Url),
  chunkBytes: z.number().int(),
  /**
   * Present when the chunk was placed without calling its chunkservers:
   * the bulk write carries it and each replica creates the chunk from it.
   */
  grant: WriteGrantSchema.optional(),
});

/** A write target. */
export type WriteTarget = z.infer<typeof WriteTargetSchema>;

/** Master → client: a created file (and chunk 0's target when asked). */
export const CreatedSchema = z.object({
  fileId: z.number().int(),
  chunkBytes: z.number().int(),
  replication: z.number().int(),
  first: WriteTargetSchema.nullable().optional(),
});

/** Client → master: a chunk for an upload. */
export const AllocateSchema = z.object({
  path: Path,
  fileId: z.number().int().min(1),
  index: z.number().int().min(0).max(1_000_000),
  /** Answer with a write grant (see {@link CreateSchema}). */
  grant: z.boolean().optional(),
  /**
   * Chunkservers (URLs) the client's last write of this chunk failed
   * through: placed only when too few others fit, and then last.
   */
  avoid: z.array(Url).max(16).optional(),
});

/** Client → master: finish an upload. */
export const CompleteSchema = z.object({
  path: Path,
  fileId: z.number().int().min(1),
  chunks: z.array(z.object({
    handle: Handle,
    length: z.number().int().min(0),
    servers: z.array(Url),
  })),
});

/** Client → master: give up an upload. */
export const AbandonSchema = z.object({
  path: Path,
  fileId: z.number().int().min(1),
});

/** Client → master: where to record-append. */
export const AppendTargetSchema = z.object({
  path: Path,
  create: z.boolean().default(true),
  replication: z.number().int().min(1).max(16).optional(),
  /** The chunk that was full: allocate the next one after it. */
  afterHandle: Handle.optional(),
  /** The last attempt failed: grant a fresh lease (version bump). */
  renew: z.boolean().default(false),
});

/** Master → client: a file's chunks. */
export const LocateSchema = z.object({
  fileId: z.number().int(),
  length: z.number().int(),
  mode: z.enum(["upload", "append"]),
  chunkBytes: z.number().int(),
  chunks: z.array(z.object({
    handle: Handle,
    version: z.number().int(),
    length: z.number().int(),
    replicas: z.array(Url),
  })),
});

/** A located file. */
export type Located = z.infer<typeof LocateSchema>;

/** File metadata as `stat` and `ls` show it. */
export const FileInfoSchema = z.object({
  path: z.string(),
  length: z.number().int(),
  mode: z.enum(["upload", "append"]),
  replication: z.number().int(),
  chunks: z.number().int(),
  createdAt: z.number(),
  mtime: z.number(),
});

/** A file's metadata. */
export type FileInfo = z.infer<typeof FileInfoSchema>;

/** `GET /v1/ls` answer. */
export const ListingSchema = z.object({ files: z.array(FileInfoSchema) });

/** `POST /v1/exists`: for each path asked, whether `stat` would find it. */
export const ExistsSchema = z.object({ exists: z.array(z.boolean()) });

/** Chunkserver: a data push finished; who has the data. */
export const PushedSchema = z.object({ received: z.array(Url) });

/** Client → primary: apply pushed data at an offset (upload). */
export const WriteSchema = z.object({
  dataId: z.string().min(8).max(64),
  version: z.number().int().min(1),
  offset: z.number().int().min(0),
  secondaries: z.array(Url).max(15),
});

/** Primary → client: which replicas applied a write. */
export const WrittenSchema = z.object({
  ok: z.array(Url),
  failed: z.array(Url),
  length: z.number().int(),
});

/**
 * Query of a record append sent inline (`POST /v1/chunks/:h/records`, the
 * framed record as the body): the lease's version and the secondaries the
 * primary forwards the group-committed batch to.
 */
export const RecordsQuerySchema = z.object({
  version: z.coerce.number().int().min(1),
  /** Comma-separated secondary URLs ("" for none). */
  secondaries: z.string().max(15 * 512).default(""),
});

/** Query of an inline apply (`POST /v1/chunks/:h/apply-bytes`, the bytes as the body). */
export const ApplyBytesQuerySchema = z.object({
  version: z.coerce.number().int().min(1),
  offset: z.coerce.number().int().min(0),
  seq: z.coerce.number().int().min(1).optional(),
});

/** Primary → client: where the record landed. */
export const AppendedSchema = z.object({ offset: z.number().int() });

/** Primary → secondary: apply at the primary's offset, or pad the chunk. */
export const ApplySchema = z.object({
  version: z.number().int().min(1),
  offset: z.number().int().min(0),
  dataId: z.string().min(8).max(64).optional(),
  /** Pad with zeros up to this length instead of writing data. */
  padTo: z.number().int().min(0).optional(),
  /** The primary's order of this mutation among the chunk version's mutations (from 1). */
  seq: z.number().int().min(1).optional(),
});

/** Master → chunkserver: set a chunk's version (creating it), maybe with a lease. */
export const SetVersionSchema = z.object({
  version: z.number().int().min(1),
  create: z.boolean(),
  leaseUntil: z.number().optional(),
});

/** Master → chunkserver: copy a chunk from another server. */
export const CloneSchema = z.object({
  source: Url,
  version: z.number().int().min(1),
});

/** Chunkserver → master: a clone finished. */
export const ClonedSchema = z.object({ length: z.number().int() });

/** A JSON "ok" answer. */
export const OkSchema = z.object({ ok: z.literal(true) });

/** Health answer of the master. */
export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  chunks: z.number().int(),
  underReplicated: z.number().int(),
  lost: z.number().int(),
  liveServers: z.number().int(),
  deadServers: z.number().int(),
  files: z.number().int(),
});

/** Chunkserver list entry. */
export const ChunkserverInfoSchema = z.object({
  id: z.string(),
  url: z.string(),
  rack: z.string(),
  alive: z.boolean(),
  capacityBytes: z.number(),
  usedBytes: z.number(),
  fractionUsed: z.number(),
  load: z.number(),
  chunks: z.number().int(),
  lastHeartbeatMsAgo: z.number(),
});
