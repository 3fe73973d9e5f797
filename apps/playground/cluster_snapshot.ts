/**
 * What the dashboard shows, pushed every ~500 ms on `/api/stream`, and the
 * pure functions that assemble it from what the collector scraped.
 */
import type { z } from "zod";
import type { KeyFlowView } from "./key_flow.ts";
import type { TablesView } from "./tables_view.ts";
import type {
  MasterChunkserverSchema,
  MasterStatusSchema,
  RaftStatusSchema,
} from "./node_responses.ts";

/** Whether the playground's process for a node runs. */
export type ProcessState = "up" | "paused" | "killed";

/** What `GET /v1/status` of a raft node returns (the fields shown). */
export type RaftStatus = z.infer<typeof RaftStatusSchema>;

/** Traffic of one node from successive `/metrics` scrapes. */
export interface RaftTraffic {
  /** Raft messages sent per second. */
  messagesPerSec: number;
  /** Bytes put on the wire per second (after differential encoding). */
  bytesPerSec: number;
  /** Bytes per second differential encoding kept off the wire. */
  savedBytesPerSec: number;
  /** Bytes put on the wire since the process started (as last scraped). */
  bytesSentTotal: number;
  /** Bytes differential encoding kept off the wire since the process started. */
  bytesSavedTotal: number;
}

/** One raft node as the dashboard draws it. */
export interface RaftNodeView extends RaftTraffic {
  /** Raft id of the node. */
  id: number;
  /** `127.0.0.1:port` of its HTTP API. */
  http: string;
  /** Whether its process runs, is paused (SIGSTOP) or killed. */
  process: ProcessState;
  /** Its status answered (false when killed, paused or not answering). */
  reachable: boolean;
  /** "leader" | "follower" | "candidate" | ... or "unknown" when unreachable. */
  role: string;
  /** Its current term (null: unreachable). */
  term: number | null;
  /** Id of the leader it knows (null: none known, or unreachable). */
  leader: number | null;
  /** Highest log index it knows committed (null: unreachable). */
  commitIndex: number | null;
  /** Highest log index its state machine applied (null: unreachable). */
  appliedIndex: number | null;
  /** First index still in its log after compaction (null: unreachable). */
  firstIndex: number | null;
  /** Last index in its log (null: unreachable). */
  lastIndex: number | null;
  /** Log index its latest snapshot covers (null: unreachable). */
  snapshotIndex: number | null;
  /** Size of its on-disk log, bytes (null: unreachable). */
  logBytes: number | null;
  /** Keys in its KV store (null: unreachable). */
  keys: number | null;
}

/** The raft panel. */
export interface RaftView {
  /** Every raft node, by id. */
  nodes: RaftNodeView[];
  /** The leader of the highest term any reachable node reports, if one leads. */
  leader: number | null;
  /** The highest term any reachable node reports (null: none reachable). */
  term: number | null;
}

/** One chunkserver in the GFS panel. */
export interface ChunkserverView {
  /** Index in the playground (for kill/restart). */
  index: number;
  /** Its chunkserver id (`cs<i>`). */
  id: string;
  /** Base URL it serves on. */
  url: string;
  /** Whether the playground's process for it runs. */
  process: ProcessState;
  /** The master's view: heartbeats arrive. */
  alive: boolean;
  /** Capacity it reports to the master, bytes (0 when the master does not know it). */
  capacityBytes: number;
  /** Bytes its chunks use (0 when the master does not know it). */
  usedBytes: number;
  /** Chunk replicas it holds (0 when the master does not know it). */
  chunks: number;
  /** Ms since the master's last heartbeat from it (null: the master does not know it). */
  lastHeartbeatMsAgo: number | null;
}

/** A file under /uploads and where its chunks live. */
export interface GfsFileView {
  /** Its GFS path (`/uploads/<name>`). */
  path: string;
  /** Its length, bytes. */
  length: number;
  /** Per chunk: ids of the chunkservers holding a live replica. */
  chunks: Array<{ handle: number; length: number; replicas: string[] }>;
}

/** A GFS master's Raft role as the panel shows it. */
export type GfsMasterRole = "leader" | "follower" | "candidate" | "unknown";

/** One GFS master replica in the GFS panel. */
export interface GfsMasterView {
  /** Index in the playground (for kill/restart); its Raft id is index + 1. */
  index: number;
  /** Base URL it serves on. */
  url: string;
  /** Whether the playground's process for it runs. */
  process: "up" | "killed";
  /** `GET /v1/master` answered. */
  reachable: boolean;
  /** "unknown" when killed or not answering. */
  role: GfsMasterRole;
  /** It leads and has applied everything committed before its term. */
  serving: boolean;
  /** Its Raft term (null: unreachable or unreplicated). */
  term: number | null;
  /** Raft id of the leader it knows (null: none). */
  leader: number | null;
  /** Highest op-log index it knows committed (null: unreachable or not reported). */
  commitIndex: number | null;
  /** Highest op-log index it applied (null: unreachable or not reported). */
  appliedIndex: number | null;
}

/** The GFS panel. */
export interface GfsView {
  /** The master that serves now (the leader), null when none does. */
  masterUrl: string | null;
  /** Every master replica, by index. */
  masters: GfsMasterView[];
  /** Index of the serving master, null during an election. */
  leaderIndex: number | null;
  /** The serving master answered its chunkserver list and health. */
  reachable: boolean;
  /** Why the counts are missing (null when reachable). */
  error: string | null;
  /** Every chunkserver the playground started, by index. */
  chunkservers: ChunkserverView[];
  /** Chunks the master knows (0 when unreachable). */
  chunks: number;
  /** Chunks with fewer live replicas than wanted (0 when unreachable). */
  underReplicated: number;
  /** Chunks with no live replica (0 when unreachable). */
  lost: number;
  /** Files in the namespace (0 when unreachable). */
  files: number;
  /** Re-replication clones running now. */
  clonesInFlight: number;
  /** Clones finished since the master started. */
  clonesDone: number;
  /** The newest files under /uploads (at most 5, newest first). */
  uploads: GfsFileView[];
}

/** One search replica. */
export interface SearchReplicaView {
  /** Replica number within its shard. */
  replica: number;
  /** Whether the playground's process for it runs. */
  process: "up" | "killed";
  /** The coordinator's replica selector marked it down after failures. */
  markedDown: boolean;
  /** Its moving-average latency at the coordinator, ms (null: no stats). */
  ewmaMs: number | null;
}

/** The search panel. */
export interface SearchView {
  /** Base URL of the coordinator (null: none). */
  url: string | null;
  /** The coordinator answered its stats. */
  reachable: boolean;
  /** Why the stats are missing (null when reachable). */
  error: string | null;
  /** Documents in the index (the last known count when unreachable). */
  docs: number;
  /** Per shard: its documents (null: unknown) and its replicas. */
  shards: Array<
    { shard: number; docs: number | null; replicas: SearchReplicaView[] }
  >;
}

/** Everything on the page at one instant. */
export interface ClusterSnapshot {
  /** Unix time of the snapshot, ms. */
  at: number;
  /** The raft panel. */
  raft: RaftView;
  /** The GFS panel. */
  gfs: GfsView;
  /** The search panel. */
  search: SearchView;
  /** Followed keys and their writes. */
  follows: KeyFlowView[];
  /** The tables panel. */
  tables: TablesView;
}

/** Inputs of {@link summarizeRaft} for one node. */
export interface RaftNodeInput {
  id: number;
  http: string;
  process: ProcessState;
  status: RaftStatus | null;
  traffic: RaftTraffic;
}

/**
 * The raft panel from each node's process state, status answer and
 * traffic. The cluster's leader is the one named by a node that says it
 * leads at the highest term seen: an old leader that was paused and still
 * believes it leads at an older term is not shown as the leader.
 */
export function summarizeRaft(inputs: readonly RaftNodeInput[]): RaftView {
  const nodes: RaftNodeView[] = [...inputs].sort((a, b) => a.id - b.id).map(
    (n) => {
      const s = n.process === "up" ? n.status : null;
      return {
        id: n.id,
        http: n.http,
        process: n.process,
        reachable: s !== null,
        role: s?.role ?? (n.process === "up" ? "unknown" : n.process),
        term: s?.term ?? null,
        leader: s ? (s.leader > 0 ? s.leader : null) : null,
        commitIndex: s?.commitIndex ?? null,
        appliedIndex: s?.appliedIndex ?? null,
        firstIndex: s?.firstIndex ?? null,
        lastIndex: s?.lastIndex ?? null,
        snapshotIndex: s?.snapshotIndex ?? null,
        logBytes: s?.logBytes ?? null,
        keys: s?.keys ?? null,
        ...(s ? n.traffic : {
          ...n.traffic,
          messagesPerSec: 0,
          bytesPerSec: 0,
          savedBytesPerSec: 0,
        }),
      };
    },
  );
  let term: number | null = null;
  for (const n of nodes) {
    if (n.term !== null && (term === null || n.term > term)) term = n.term;
  }
  const leaderNode = nodes.find((n) => n.role === "leader" && n.term === term);
  return { nodes, leader: leaderNode?.id ?? null, term };
}

/** What `GET /v1/chunkservers` of the master lists per server. */
export type MasterChunkserver = z.infer<typeof MasterChunkserverSchema>;

/**
 * Chunkserver rows: every process the playground started, in order, with
 * the master's view of it when the master knows it (`cs<i>` ids).
 */
export function mergeChunkservers(
  processes: ReadonlyArray<{ id: string; url: string; process: ProcessState }>,
  master: readonly MasterChunkserver[],
): ChunkserverView[] {
  const byId = new Map(master.map((m) => [m.id, m]));
  return processes.map((p, index) => {
    const m = byId.get(p.id);
    return {
      index,
      id: p.id,
      url: m?.url ?? p.url,
      process: p.process,
      alive: m?.alive ?? false,
      capacityBytes: m?.capacityBytes ?? 0,
      usedBytes: m?.usedBytes ?? 0,
      chunks: m?.chunks ?? 0,
      lastHeartbeatMsAgo: m?.lastHeartbeatMsAgo ?? null,
    };
  });
}

/** Maps replica URLs the master reports to chunkserver ids for display. */
export function replicaIds(
  urls: readonly string[],
  servers: ReadonlyArray<{ id: string; url: string }>,
): string[] {
  const byUrl = new Map(servers.map((s) => [s.url, s.id]));
  return urls.map((u) => byUrl.get(u) ?? u).sort();
}

/** A validated `GET /v1/master` answer of a GFS master. */
export type MasterStatus = z.infer<typeof MasterStatusSchema>;

export interface MasterInput {
  url: string;
  process: "up" | "killed";
  status: MasterStatus | null;
}

function masterRole(role: string): GfsMasterRole {
  if (role === "leader" || role === "follower") return role;
  // The pre-vote phase is an election in progress too.
  if (role === "candidate" || role === "preCandidate") return "candidate";
  return "unknown";
}

/**
 * The master cards and which one serves. The serving master is the one
 * that says it serves at the highest term: a deposed leader stops serving
 * when it loses its quorum lease, but during that window two may claim it,
 * and the newer term is the one whose writes commit.
 */
export function summarizeMasters(
  inputs: readonly MasterInput[],
): { masters: GfsMasterView[]; leaderIndex: number | null } {
  const masters = inputs.map((m, index): GfsMasterView => {
    const s = m.process === "up" ? m.status : null;
    return {
      index,
      url: m.url,
      process: m.process,
      reachable: s !== null,
      role: s ? masterRole(s.role) : "unknown",
      serving: s?.serving ?? false,
      term: s?.term ?? null,
      leader: s?.leader && s.leader > 0 ? s.leader : null,
      commitIndex: s?.commitIndex ?? null,
      appliedIndex: s?.appliedIndex ?? null,
    };
  });
  let leaderIndex: number | null = null;
  for (const m of masters) {
    if (!m.serving) continue;
    const best = leaderIndex === null ? null : masters[leaderIndex]!;
    if (best === null || (m.term ?? 0) > (best.term ?? 0)) {
      leaderIndex = m.index;
    }
  }
  return { masters, leaderIndex };
}
