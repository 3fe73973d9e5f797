/**
 * zod schemas of what the playground reads from the clusters' nodes: the
 * raft-kv status and watch events, the GFS master's chunkserver list,
 * health, listing and chunk locations, and the search coordinator's stats
 * and results. A node that answers something else (another version, a
 * half-written body) is treated like a node that did not answer, so the
 * page shows "no answer" instead of undefined fields.
 */
import { z } from "zod";

const count = z.number().int().nonnegative();

/**
 * What `GET /v1/master` of a GFS master answers (the fields shown). A
 * master alone is a one-member group with a term like any other; the raft
 * fields stay optional so a master of an older version still shows.
 */
export const MasterStatusSchema = z.object({
  serving: z.boolean(),
  role: z.string(),
  term: z.number().int().min(0).optional(),
  leader: z.number().int().nullable().optional(),
  commitIndex: z.number().int().min(0).optional(),
  appliedIndex: z.number().int().min(0).optional(),
});

/** `GET /v1/status` of a raft-kv node. */
export const RaftStatusSchema = z.object({
  id: z.number().int(),
  role: z.string(),
  term: count,
  leader: count,
  commitIndex: count,
  appliedIndex: count,
  firstIndex: count,
  lastIndex: count,
  logBytes: count,
  snapshotIndex: count,
  keys: count,
});

/** A `put`/`delete` event of a raft-kv node's `/v1/watch` stream. */
export const WatchEventSchema = z.object({
  key: z.string(),
  revision: count,
  value: z.string().optional(),
});

/** One row of the GFS master's `GET /v1/chunkservers`. */
export const MasterChunkserverSchema = z.object({
  id: z.string(),
  url: z.string(),
  alive: z.boolean(),
  capacityBytes: z.number().nonnegative(),
  usedBytes: z.number().nonnegative(),
  chunks: count,
  lastHeartbeatMsAgo: z.number(),
});

/** `GET /v1/chunkservers` of the GFS master. */
export const ChunkserverListSchema = z.object({
  chunkservers: z.array(MasterChunkserverSchema),
});

/** `GET /v1/health` of the GFS master. */
export const GfsHealthSchema = z.object({
  chunks: count,
  underReplicated: count,
  lost: count,
  files: count,
});

/** `GET /v1/ls` of the GFS master. */
export const GfsListingSchema = z.object({
  files: z.array(z.object({
    path: z.string(),
    length: count,
    mtime: z.number(),
  })),
});

/** `GET /v1/rpc/locate` of the GFS master: where each chunk lives. */
export const GfsLocateSchema = z.object({
  chunks: z.array(z.object({
    handle: count,
    length: count,
    replicas: z.array(z.string()),
  })),
});

/** `GET /v1/stats` of the search coordinator. */
export const SearchStatsSchema = z.object({
  docs: count,
  shards: z.array(z.object({
    shard: count,
    up: z.boolean(),
    docs: count.optional(),
  })),
  replicas: z.array(z.array(z.object({
    ewmaMs: z.number(),
    down: z.boolean(),
  }))),
});

/** `GET /v1/search` of the search coordinator. */
export const SearchAnswerSchema = z.object({
  took_ms: z.number(),
  merge_ms: z.number().optional(),
  partial: z.boolean(),
  shards: z.array(z.object({
    shard: count,
    replica: count.nullable(),
    ms: z.number(),
    hits: count,
  })).optional(),
  hits: z.array(z.object({
    id: z.string(),
    score: z.number(),
    name: z.string(),
    snippet: z.string(),
  })),
});

/** `PUT /v1/kv/<key>` of a raft-kv node. */
export const KvPutAnswerSchema = z.object({ revision: count });

/** `POST /v1/cluster/transfer-leadership` of a raft-kv node. */
export const TransferAnswerSchema = z.object({ leader: count });

/** `GET /v1/status` of a tables master. */
export const TablesMasterStatusSchema = z.object({
  role: z.enum(["active", "standby"]),
});

/** `GET /v1/tablets` of a tables master: the tablet map (keys base64). */
export const TablesTabletsSchema = z.object({
  tablets: z.array(z.object({
    id: z.string(),
    table: z.string(),
    start: z.string(),
    end: z.string().nullable(),
    server: z.string().nullable(),
    url: z.string().nullable(),
    bytes: z.number().nonnegative().optional(),
  })),
});

/** `GET /v1/status` of a tablet server. */
export const TabletServerStatusSchema = z.object({
  serving: z.boolean(),
  reason: z.string().optional(),
});
