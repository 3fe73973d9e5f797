/**
 * What the dashboard server needs from the running clusters. The real one
 * ({@link ./live_backend.ts}) drives processes; API tests use a fake.
 * Every method throws {@link PlaygroundError} for anything a user can fix.
 */
import type { ClusterSnapshot } from "./cluster_snapshot.ts";
import type { RoomsView } from "./rooms_view.ts";
import type { RoomPublishResult } from "./tables_data_demo.ts";
import type { TimeSeriesView } from "./time_series_view.ts";

/** The answer to a KV write from the dashboard. */
export interface WriteResult {
  /** The key written. */
  key: string;
  /** Node the write was sent to. */
  node: number;
  /** Log index = KV revision it got. */
  revision: number;
  /** Term the node reported right after. */
  term: number;
  /** ms from sending to the answer. */
  tookMs: number;
}

/** Per-shard timing of one search's fan-out. */
export interface ShardTiming {
  /** Shard number. */
  shard: number;
  /** The replica that answered (null: none did). */
  replica: number | null;
  /** Time the shard took to answer, ms. */
  ms: number;
  /** Hits the shard returned. */
  hits: number;
}

/** One search as the dashboard shows it. */
export interface SearchResult {
  /** The query as sent. */
  query: string;
  /** Time the coordinator took, ms. */
  tookMs: number;
  /** Time to merge the shards' lists, ms (null when the coordinator does not say). */
  mergeMs: number | null;
  /** No replica of some shard answered, so hits may be missing. */
  partial: boolean;
  /** Per-shard timings (empty when the coordinator does not say). */
  shards: ShardTiming[];
  /** The hits, best first: document id, score, name and a text snippet. */
  hits: Array<{ id: string; score: number; name: string; snippet: string }>;
}

/** An uploaded file. */
export interface UploadResult {
  /** Its GFS path (`/uploads/<name>`). */
  path: string;
  /** Bytes written. */
  length: number;
  /** Chunks it spans. */
  chunks: number;
}

/** A tables process kind. */
export type TablesKind = "master" | "server";

/** The answer to a row write from the dashboard. */
export interface RowWriteResult {
  table: string;
  row: string;
  /** ms from sending to the answer (durable in GFS by then). */
  tookMs: number;
}

/** Simulation replay, as packages/sim provides it. */
export interface SimApi {
  /** The scenarios that can be replayed. */
  scenarios(): unknown[];
  /**
   * Replays `scenario` with `seed` (a seed, or a pasted replay line) and
   * returns the run.
   * @throws PlaygroundError `bad_request` for an unknown scenario or seed.
   */
  replay(scenario: string, seed: string): Promise<unknown>;
  /** The planted bugs of packages/replication a replicated run can carry. */
  bugs(): string[];
  /**
   * Runs a `sim:replicated` seed (with `find`: the first failing one of
   * the next 30 seeds from `seed`, else the last) and returns its
   * step-by-step timeline.
   * @throws PlaygroundError `conflict` while another run is under way.
   */
  replicated(q: ReplicatedQuery): Promise<unknown>;
}

/** A replicated simulation to run (checked by the route). */
export interface ReplicatedQuery {
  machine: "kv" | "gfs";
  seed: number;
  /** A planted bug (one of {@link SimApi.bugs}), or none: the correct code. */
  bug?: string;
  /** Look for the first failing seed from `seed` on. */
  find: boolean;
}

/** See the module doc. */
export interface PlaygroundBackend {
  /** The newest snapshot. */
  snapshot(): ClusterSnapshot;
  /** Calls `fn` with every new snapshot until the returned function is called. */
  subscribe(fn: (s: ClusterSnapshot) => void): () => void;
  /** Ids of the raft nodes. */
  raftNodeIds(): number[];
  /** SIGKILL, start again, SIGSTOP, SIGCONT. @throws `not_found`, `conflict`. */
  raftAction(
    id: number,
    action: "kill" | "restart" | "pause" | "resume",
  ): Promise<void>;
  /** Hands leadership to `to` (or lets the leader pick); resolves with the new leader. */
  transferLeadership(to?: number): Promise<number>;
  /** Writes `key` through `node` (default: the leader). */
  writeKey(key: string, value: string, node?: number): Promise<WriteResult>;
  /** Starts following `key` (its flow appears in the snapshots). */
  follow(key: string): void;
  /** Number of chunkservers. */
  chunkserverCount(): number;
  /** SIGKILL or start again chunkserver `index`. */
  chunkserverAction(index: number, action: "kill" | "restart"): Promise<void>;
  /** Number of GFS master replicas. */
  masterCount(): number;
  /**
   * SIGKILL or start again (on its data) GFS master `index`.
   * @throws `conflict` (already killed, running, or an action under way).
   */
  masterAction(index: number, action: "kill" | "restart"): Promise<void>;
  /** Streams a file to GFS under /uploads/<name>, through the serving master. */
  upload(
    name: string,
    body: ReadableStream<Uint8Array>,
    length: number | undefined,
  ): Promise<UploadResult>;
  /** Runs a search on the coordinator. */
  search(query: string, size: number): Promise<SearchResult>;
  /** Ids of the tables masters or tablet servers. */
  tablesIds(kind: TablesKind): string[];
  /**
   * SIGKILL or start again a tables master or tablet server.
   * @throws `conflict` (already killed, running, or an action under way).
   */
  tablesAction(
    kind: TablesKind,
    id: string,
    action: "kill" | "restart",
  ): Promise<void>;
  /** Splits a tablet at its middle key; resolves with the two new tablets' ids. */
  splitTablet(id: string): Promise<string[]>;
  /** Follows a row of a table (its tablet, server and cells appear in snapshots). */
  followRow(table: string, row: string): void;
  /** Writes one cell (`family:qualifier`) of a row. */
  writeRow(
    table: string,
    row: string,
    column: string,
    value: string,
  ): Promise<RowWriteResult>;
  /**
   * Subscribes to `room` on tablet server `server` (an event stream the
   * playground holds); resolves once the room's home counts it in.
   * @throws `not_found` (no such server), `conflict` (killed, or too many subscribers).
   */
  roomSubscribe(
    room: string,
    server: string,
  ): Promise<{ id: number; room: string; server: string }>;
  /** Publishes to `room` through tablet server `via` (default: a running one). */
  roomPublish(
    room: string,
    data: string,
    via?: string,
  ): Promise<RoomPublishResult>;
  /** The rooms panel: subscribers, server bitmaps, publishes and their deliveries. */
  rooms(): RoomsView;
  /** Writes `points` points of `series` spread over the last `spanMs` ms. */
  seriesWrite(
    series: string,
    points: number,
    spanMs: number,
  ): Promise<
    { table: string; series: string; written: number; tookMs: number }
  >;
  /** The series by time bucket and tablet, and the busiest tablet's share. */
  series(series: string): Promise<TimeSeriesView>;
}
