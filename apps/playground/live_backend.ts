/**
 * The {@link PlaygroundBackend} over a running {@link Playground}: a
 * collector that scrapes every node every ~500 ms into a
 * {@link ClusterSnapshot}, the actions (signals to processes, HTTP calls to
 * the nodes), the key followers (a `/v1/watch` stream per node and
 * followed key), and the tables cell (its tablet map, servers and a
 * followed row, through the tables admin token and `TablesClient`). This is the I/O edge; what it computes lives in the pure
 * modules it calls.
 */
import { authHeaders } from "@strata/edge";
import { GfsClient, type GfsErrorCode, isGfsError } from "@strata/gfs";
import {
  type ChunkserverView,
  type ClusterSnapshot,
  type GfsFileView,
  type GfsMasterView,
  type GfsView,
  type MasterInput,
  mergeChunkservers,
  type ProcessState,
  type RaftNodeInput,
  type RaftStatus,
  replicaIds,
  type SearchView,
  summarizeMasters,
  summarizeRaft,
} from "./cluster_snapshot.ts";
import { KeyFlow } from "./key_flow.ts";
import type {
  PlaygroundBackend,
  RowWriteResult,
  SearchResult,
  TablesKind,
  UploadResult,
  WriteResult,
} from "./playground_backend.ts";
import {
  locateRow,
  MAX_EVENTS,
  RowFollow,
  serverViews,
  type TablesMasterInput,
  type TablesView,
  tabletChanges,
  type TabletEvent,
  tabletViews,
  type TabletWire,
} from "./tables_view.ts";
import { TablesClient } from "@strata/tables/client";
import type { RoomsView } from "./rooms_view.ts";
import { type RoomPublishResult, TablesDataDemo } from "./tables_data_demo.ts";
import type { TimeSeriesView } from "./time_series_view.ts";
import type { Playground } from "./playground.ts";
import {
  PlaygroundError,
  type PlaygroundErrorCode,
} from "./playground_error.ts";
import { CODE_BY_STATUS, fromTablesError } from "./tables_error_map.ts";
import { parsePrometheusText, sumSamples } from "./prometheus_text.ts";
import { RateWindow } from "./rate_window.ts";
import { SseParser } from "./sse_parser.ts";
import {
  ChunkserverListSchema,
  GfsHealthSchema,
  GfsListingSchema,
  GfsLocateSchema,
  KvPutAnswerSchema,
  MasterStatusSchema,
  RaftStatusSchema,
  SearchAnswerSchema,
  SearchStatsSchema,
  TablesMasterStatusSchema,
  TablesTabletsSchema,
  TabletServerStatusSchema,
  TransferAnswerSchema,
  WatchEventSchema,
} from "./node_responses.ts";
import type { z } from "zod";

/** Options of {@link LiveBackend}. */
export interface LiveBackendOptions {
  /** Ms between snapshots (default 500). */
  intervalMs?: number;
  /** Keys followed at once; the oldest is dropped beyond this (default 4). */
  maxFollowed?: number;
}

const RAFT_IDS = [1, 2, 3];
/** Replicas per chunk of a dashboard upload. */
const UPLOAD_REPLICATION = 2;

interface Followed {
  flow: KeyFlow;
  abort: AbortController;
  /** First revision of interest: the commit index when following began. */
  fromRevision: number;
}

/** See the module doc. Call {@link LiveBackend.start} once, {@link LiveBackend.close} at the end. */
export class LiveBackend implements PlaygroundBackend {
  #pg: Playground;
  /** Headers of every call to the kv nodes (their admin token). */
  readonly #kv: Record<string, string>;
  /** Headers of every call to the GFS masters (the cell's admin token). */
  readonly #gfsAuth: Record<string, string>;
  /** Headers of every call to the search coordinator (its admin token). */
  readonly #searchAuth: Record<string, string>;
  #interval: number;
  #maxFollowed: number;
  #paused = new Set<number>();
  #killedChunkservers = new Set<number>();
  #killedMasters = new Set<number>();
  /** GFS processes with a kill or restart under way (a second one is refused). */
  #busy = new Set<string>();
  /** Uploads go through the gfs client: it fails over between masters. */
  #gfsClient: GfsClient;
  #rates = new Map<number, RateWindow>();
  #totals = new Map<number, { sent: number; saved: number }>();
  #subscribers = new Set<(s: ClusterSnapshot) => void>();
  #latest: ClusterSnapshot;
  #follows = new Map<string, Followed>();
  #nextWriteId = 1;
  #closed = false;
  #loop?: Promise<void>;
  #tick = 0;
  #gfsSlow: Pick<GfsView, "uploads"> = { uploads: [] };
  #searchView: SearchView;
  #wake?: () => void;
  /** Headers of every call to the tables processes (the cell's admin token). */
  readonly #tablesAuth: Record<string, string>;
  /** Row writes and splits: it finds the active master and the row's server. */
  #tablesClient: TablesClient;
  /** The followed row's reads, each round: short deadlines, so a dead server does not hold the snapshots up. */
  #rowReader: TablesClient;
  /** The last tablet map seen (null: none yet), to tell what changed. */
  #tabletMap: TabletWire[] | null = null;
  #tabletEvents: TabletEvent[] = [];
  #rowFollow: RowFollow | null = null;
  #tablesView: TablesView;
  /** Rooms and the time series (apps/tables' DataLayer, through its public API). */
  readonly #data: TablesDataDemo;
  /** Trusts the clusters' certificate when they serve TLS (undefined: plain HTTP). */
  readonly #client: Deno.HttpClient | undefined;

  /**
   * A backend over `playground`; nothing is scraped until {@link start}.
   * @param playground the running clusters.
   */
  constructor(playground: Playground, options: LiveBackendOptions = {}) {
    this.#pg = playground;
    this.#client = playground.httpClient;
    const httpClient = this.#client ? { httpClient: this.#client } : {};
    const kvToken = playground.raft.adminToken;
    this.#kv = authHeaders(kvToken);
    const gfsToken = playground.gfs.secrets?.tokens.admin;
    this.#gfsAuth = authHeaders(gfsToken);
    this.#searchAuth = authHeaders(playground.search.secrets?.tokens.admin);
    this.#interval = options.intervalMs ?? 500;
    this.#maxFollowed = options.maxFollowed ?? 4;
    this.#gfsClient = new GfsClient(playground.gfs.masterUrls, {
      token: gfsToken,
      ...httpClient,
    });
    this.#tablesAuth = authHeaders(playground.tables.adminToken);
    this.#tablesClient = new TablesClient(
      playground.tables.masters.map((m) => m.url),
      { token: playground.tables.adminToken, timeoutMs: 3000, ...httpClient },
    );
    this.#rowReader = new TablesClient(
      playground.tables.masters.map((m) => m.url),
      {
        token: playground.tables.adminToken,
        timeoutMs: 1000,
        retryForMs: 1500,
        ...httpClient,
      },
    );
    this.#data = new TablesDataDemo({
      masters: playground.tables.masters.map((m) => m.url),
      servers: () => playground.tables.servers,
      running: (id) => playground.tables.running("server", id),
      token: playground.tables.adminToken,
      ...httpClient,
    });
    this.#tablesView = {
      reachable: false,
      error: "starting",
      masters: [],
      active: null,
      servers: [],
      tablets: [],
      events: [],
      row: null,
    };
    this.#searchView = {
      url: playground.search.url,
      reachable: false,
      error: null,
      docs: playground.docs,
      shards: [],
    };
    this.#latest = {
      at: Date.now(),
      raft: summarizeRaft([]),
      gfs: unreachableGfs("starting"),
      search: this.#searchView,
      follows: [],
      tables: this.#tablesView,
    };
  }

  /** Starts the collector loop; resolves after the first snapshot. */
  async start(): Promise<void> {
    await this.#collect();
    this.#loop = (async () => {
      while (!this.#closed) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, this.#interval);
        });
        this.#wake = undefined;
        if (this.#closed) break;
        try {
          await this.#collect();
        } catch (e) {
          console.error("playground: snapshot failed", e);
        }
      }
    })();
    await Promise.resolve();
  }

  /** Stops the collector and every key follower (the processes are the playground's). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    for (const f of this.#follows.values()) f.abort.abort();
    this.#data.close();
    await this.#loop;
  }

  // ---- snapshots

  /** The newest snapshot. */
  snapshot(): ClusterSnapshot {
    return this.#latest;
  }

  /** Calls `fn` with every new snapshot until the returned function is called. */
  subscribe(fn: (s: ClusterSnapshot) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  #raftProcess(id: number): ProcessState {
    if (!this.#pg.raft.nodes.has(id)) return "killed";
    return this.#paused.has(id) ? "paused" : "up";
  }

  /** `https` when the clusters serve TLS (then {@link #client} trusts them). */
  get #scheme(): string {
    return this.#client ? "https" : "http";
  }

  #raftHttp(id: number): string | undefined {
    return this.#pg.raft.nodes.get(id)?.http;
  }

  /** Remembers the HTTP address of each node even while it is killed. */
  #knownHttp = new Map<number, string>();

  async #collect(): Promise<void> {
    this.#tick++;
    const slow = this.#tick % 2 === 1;
    const [raftNodes, gfs] = await Promise.all([
      Promise.all(RAFT_IDS.map((id) => this.#raftNode(id))),
      this.#gfs(slow),
      slow ? this.#search() : Promise.resolve(),
      this.#tables(),
    ]);
    this.#latest = {
      at: Date.now(),
      raft: summarizeRaft(raftNodes),
      gfs,
      search: this.#searchView,
      follows: [...this.#follows.values()].map((f) => f.flow.view()),
      tables: this.#tablesView,
    };
    for (const fn of this.#subscribers) fn(this.#latest);
  }

  async #raftNode(id: number): Promise<RaftNodeInput> {
    const http = this.#raftHttp(id);
    if (http) this.#knownHttp.set(id, http);
    const process = this.#raftProcess(id);
    let window = this.#rates.get(id);
    if (!window) this.#rates.set(id, window = new RateWindow(2000));
    let status: RaftStatus | null = null;
    if (process === "up" && http) {
      const [s, metrics] = await Promise.all([
        getJson(
          `${this.#scheme}://${http}/v1/status`,
          RaftStatusSchema,
          800,
          this.#kv,
          this.#client,
        ),
        getText(
          `${this.#scheme}://${http}/metrics`,
          800,
          this.#kv,
          this.#client,
        ),
      ]);
      status = s;
      if (metrics !== null) {
        const samples = parsePrometheusText(metrics);
        const counters = {
          messages: sumSamples(samples, "strata_raft_messages_sent_total"),
          bytes: sumSamples(samples, "strata_raft_bytes_sent_total"),
          saved: sumSamples(samples, "strata_raft_diff_bytes_saved_total"),
        };
        window.push({ atMs: performance.now(), counters });
        this.#totals.set(id, { sent: counters.bytes, saved: counters.saved });
      }
    } else if (process === "killed") {
      window.reset();
    }
    const rates = window.rates();
    const totals = this.#totals.get(id) ?? { sent: 0, saved: 0 };
    return {
      id,
      http: http ?? this.#knownHttp.get(id) ?? "",
      process,
      status,
      traffic: {
        messagesPerSec: rates.messages ?? 0,
        bytesPerSec: rates.bytes ?? 0,
        savedBytesPerSec: rates.saved ?? 0,
        bytesSentTotal: totals.sent,
        bytesSavedTotal: totals.saved,
      },
    };
  }

  /** Asks every running master for its Raft role (killed ones are not asked). */
  async #masters(): Promise<
    { masters: GfsMasterView[]; leaderIndex: number | null }
  > {
    const urls = this.#pg.gfs.masterUrls;
    const inputs = await Promise.all(
      urls.map(async (url, i): Promise<MasterInput> => {
        const process = this.#killedMasters.has(i) ? "killed" : "up";
        const status = process === "up"
          ? await getJson(
            `${url}/v1/master`,
            MasterStatusSchema,
            800,
            this.#gfsAuth,
            this.#client,
          )
          : null;
        return { url, process, status };
      }),
    );
    return summarizeMasters(inputs);
  }

  /**
   * The base URL of the GFS master that serves now, asking the masters
   * (with replicated masters the serving one changes).
   * @throws PlaygroundError `unavailable` when none serves (an election).
   */
  async gfsMasterUrl(): Promise<string> {
    const { masters, leaderIndex } = await this.#masters();
    if (leaderIndex === null) {
      throw new PlaygroundError(
        "unavailable",
        "no GFS master leads right now (election in progress?)",
      );
    }
    return masters[leaderIndex]!.url;
  }

  async #gfs(slow: boolean): Promise<GfsView> {
    const processes = this.#pg.gfs.chunkservers.map((cs, i) => ({
      id: cs.id || `cs${i}`,
      url: cs.url,
      process:
        (this.#killedChunkservers.has(i) ? "killed" : "up") as ProcessState,
    }));
    const { masters, leaderIndex } = await this.#masters();
    const down = (error: string): GfsView =>
      unreachableGfs(error, {
        masters,
        leaderIndex,
        chunkservers: mergeChunkservers(processes, []),
        uploads: this.#gfsSlow.uploads,
      });
    if (leaderIndex === null) {
      return down("no GFS master leads right now (election in progress?)");
    }
    // If the leader changed since it was asked, these fail this once (fetch
    // drops the token on the 307 to another port); the next round asks again.
    const master = masters[leaderIndex]!.url;
    const [list, health, metrics] = await Promise.all([
      getJson(
        `${master}/v1/chunkservers`,
        ChunkserverListSchema,
        1500,
        this.#gfsAuth,
        this.#client,
      ),
      getJson(
        `${master}/v1/health`,
        GfsHealthSchema,
        1500,
        this.#gfsAuth,
        this.#client,
      ),
      getText(`${master}/metrics`, 1500, this.#gfsAuth, this.#client),
    ]);
    if (!list || !health) {
      return down(`the master at ${master} does not answer`);
    }
    const samples = metrics ? parsePrometheusText(metrics) : [];
    const chunkservers: ChunkserverView[] = mergeChunkservers(
      processes,
      list.chunkservers,
    );
    if (slow) {
      this.#gfsSlow = {
        uploads: await this.#uploads(master, list.chunkservers),
      };
    }
    return {
      masterUrl: master,
      masters,
      leaderIndex,
      reachable: true,
      error: null,
      chunkservers,
      chunks: health.chunks,
      underReplicated: health.underReplicated,
      lost: health.lost,
      files: health.files,
      clonesInFlight: sumSamples(samples, "gfs_master_clones_in_flight"),
      clonesDone: sumSamples(samples, "gfs_master_clones_total", {
        result: "ok",
      }),
      uploads: this.#gfsSlow.uploads,
    };
  }

  async #uploads(
    master: string,
    servers: ReadonlyArray<{ id: string; url: string }>,
  ): Promise<GfsFileView[]> {
    const ls = await getJson(
      `${master}/v1/ls?prefix=${encodeURIComponent("/uploads/")}`,
      GfsListingSchema,
      1500,
      this.#gfsAuth,
      this.#client,
    );
    if (!ls) return this.#gfsSlow.uploads;
    const newest = [...ls.files].sort((a, b) => b.mtime - a.mtime).slice(0, 5);
    const located = await Promise.all(newest.map(async (f) => {
      const loc = await getJson(
        `${master}/v1/rpc/locate?path=${encodeURIComponent(f.path)}`,
        GfsLocateSchema,
        1500,
        this.#gfsAuth,
        this.#client,
      );
      return {
        path: f.path,
        length: f.length,
        chunks: (loc?.chunks ?? []).map((c) => ({
          handle: c.handle,
          length: c.length,
          replicas: replicaIds(c.replicas, servers),
        })),
      };
    }));
    return located;
  }

  async #search(): Promise<void> {
    const s = this.#pg.search;
    const stats = await getJson(
      `${s.url}/v1/stats`,
      SearchStatsSchema,
      3000,
      this.#searchAuth,
      this.#client,
    );
    this.#searchView = {
      url: s.url,
      reachable: stats !== null,
      error: stats ? null : "the coordinator does not answer",
      docs: stats?.docs ?? this.#searchView.docs,
      shards: s.replicas.map((reps, shard) => ({
        shard,
        docs: stats?.shards[shard]?.docs ?? null,
        replicas: reps.map((p, replica) => {
          const sel = stats?.replicas[shard]?.[replica];
          return {
            replica,
            process: p ? "up" as const : "killed" as const,
            markedDown: sel?.down ?? false,
            ewmaMs: sel ? Math.round(sel.ewmaMs * 100) / 100 : null,
          };
        }),
      })),
    };
  }

  /**
   * Asks the tables masters for their role and the active one for the
   * tablet map, each tablet server for its status, and reads the
   * followed row; what changed in the map since the last round becomes
   * events.
   */
  async #tables(): Promise<void> {
    const t = this.#pg.tables;
    const masters: TablesMasterInput[] = await Promise.all(
      t.masters.map(async (m) => {
        const up = t.running("master", m.id);
        const status = up
          ? await getJson(
            `${m.url}/v1/status`,
            TablesMasterStatusSchema,
            1000,
            this.#tablesAuth,
            this.#client,
          )
          : null;
        return {
          id: m.id,
          url: m.url,
          process: up ? "up" as const : "killed" as const,
          role: status?.role ?? null,
        };
      }),
    );
    const active = masters.find((m) => m.role === "active") ?? null;
    const [map, servers] = await Promise.all([
      active
        ? getJson(
          `${active.url}/v1/tablets`,
          TablesTabletsSchema,
          1500,
          this.#tablesAuth,
          this.#client,
        )
        : Promise.resolve(null),
      Promise.all(t.servers.map(async (s) => {
        const up = t.running("server", s.id);
        return {
          id: s.id,
          url: s.url,
          process: up ? "up" as const : "killed" as const,
          status: up
            ? await getJson(
              `${s.url}/v1/status`,
              TabletServerStatusSchema,
              1000,
              this.#tablesAuth,
              this.#client,
            )
            : null,
        };
      })),
    ]);
    const now = Date.now();
    if (map) {
      if (this.#tabletMap) {
        const dead = new Set(
          servers.filter((s) =>
            s.process === "killed" || s.status?.serving === false
          ).map((s) => s.id),
        );
        this.#tabletEvents.push(
          ...tabletChanges(this.#tabletMap, map.tablets, now, dead),
        );
        this.#tabletEvents = this.#tabletEvents.slice(-MAX_EVENTS);
      }
      this.#tabletMap = map.tablets;
    }
    const tablets = tabletViews(this.#tabletMap ?? []);
    if (this.#rowFollow) await this.#readFollowedRow(this.#rowFollow, now);
    this.#tablesView = {
      reachable: map !== null,
      error: map
        ? null
        : active
        ? `the active master ${active.id} does not answer`
        : "no tables master is active (an election?)",
      masters,
      active: active?.id ?? null,
      servers: serverViews(servers, tablets),
      tablets,
      events: [...this.#tabletEvents],
      row: this.#rowFollow?.view() ?? null,
    };
  }

  /** Locates the followed row in the last map and reads its cells from its server. */
  async #readFollowedRow(f: RowFollow, now: number): Promise<void> {
    const holder = locateRow(
      this.#tabletMap ?? [],
      f.table,
      new TextEncoder().encode(f.row),
    );
    f.locatedAt(holder?.id ?? null, holder?.server ?? null, now);
    try {
      // The map may have changed since the client cached it.
      this.#rowReader.invalidate(f.table);
      const row = await this.#rowReader.getRow(f.table, f.row);
      const dec = new TextDecoder();
      f.read({
        cells: row.cells.map((c) => ({
          column: `${c.family}:${dec.decode(c.qualifier)}`,
          timestamp: c.timestamp,
          value: dec.decode(c.value),
        })),
      });
    } catch (e) {
      f.read({ error: e instanceof Error ? e.message : String(e) });
    }
  }

  // ---- tables actions

  /** Ids of the tables masters or tablet servers. */
  tablesIds(kind: TablesKind): string[] {
    const t = this.#pg.tables;
    return (kind === "master" ? t.masters : t.servers).map((p) => p.id);
  }

  /** SIGKILL or start again a tables master or tablet server. */
  async tablesAction(
    kind: TablesKind,
    id: string,
    action: "kill" | "restart",
  ): Promise<void> {
    const t = this.#pg.tables;
    const name = `tables ${kind} ${id}`;
    if (this.#busy.has(name)) {
      throw new PlaygroundError(
        "conflict",
        `${name} is being killed or restarted; wait a moment`,
      );
    }
    const running = t.running(kind, id);
    if (action === "kill" && !running) {
      throw new PlaygroundError("conflict", `${name} is already killed`);
    }
    if (action === "restart" && running) {
      throw new PlaygroundError(
        "conflict",
        `${name} is running; kill it first`,
      );
    }
    this.#busy.add(name);
    try {
      if (action === "kill") await t.kill(kind, id);
      else {
        await t.restart(kind, id).catch((e) => {
          throw new PlaygroundError(
            "unavailable",
            `${name} did not come back: ${e instanceof Error ? e.message : e}`,
          );
        });
      }
    } finally {
      this.#busy.delete(name);
    }
    this.#wake?.();
  }

  /** Splits a tablet at its middle key through the active master. */
  async splitTablet(id: string): Promise<string[]> {
    if (this.#tabletMap && !this.#tabletMap.some((t) => t.id === id)) {
      throw new PlaygroundError("not_found", `there is no tablet ${id}`);
    }
    try {
      const children = await this.#tablesClient.splitTablet(id);
      this.#wake?.();
      return children.map((c) => c.id);
    } catch (e) {
      throw fromTablesError(e);
    }
  }

  /** Follows `row` of `table`, replacing the row followed before. */
  followRow(table: string, row: string): void {
    this.#rowFollow = new RowFollow(table, row);
    this.#wake?.();
  }

  /** Writes one cell of a row (durable in GFS when it resolves). */
  async writeRow(
    table: string,
    row: string,
    column: string,
    value: string,
  ): Promise<RowWriteResult> {
    const sep = column.indexOf(":");
    const t0 = performance.now();
    try {
      await this.#tablesClient.put(
        table,
        row,
        column.slice(0, sep),
        column.slice(sep + 1),
        value,
      );
    } catch (e) {
      throw fromTablesError(e);
    }
    const tookMs = Math.round((performance.now() - t0) * 100) / 100;
    this.#wake?.();
    return { table, row, tookMs };
  }

  // ---- rooms and the time series

  /** Subscribes to a room on a tablet server (see {@link TablesDataDemo.subscribe}). */
  roomSubscribe(
    room: string,
    server: string,
  ): Promise<{ id: number; room: string; server: string }> {
    return this.#data.subscribe(room, server);
  }

  /** Publishes to a room through a tablet server. */
  roomPublish(
    room: string,
    data: string,
    via?: string,
  ): Promise<RoomPublishResult> {
    return this.#data.publish(room, data, via);
  }

  /** The rooms panel. */
  rooms(): RoomsView {
    return this.#data.rooms();
  }

  /** Writes points of a series of the demo time-series table. */
  seriesWrite(
    series: string,
    points: number,
    spanMs: number,
  ): Promise<
    { table: string; series: string; written: number; tookMs: number }
  > {
    return this.#data.writeSeries(series, points, spanMs);
  }

  /** The series by bucket and tablet. */
  series(series: string): Promise<TimeSeriesView> {
    return this.#data.seriesView(series);
  }

  // ---- raft actions

  /** Ids of the raft nodes (1..3). */
  raftNodeIds(): number[] {
    return [...RAFT_IDS];
  }

  /** SIGKILL, start again, SIGSTOP or SIGCONT raft node `id`. */
  async raftAction(
    id: number,
    action: "kill" | "restart" | "pause" | "resume",
  ): Promise<void> {
    const state = this.#raftProcess(id);
    const refuse = (why: string) => {
      throw new PlaygroundError("conflict", `node ${id} ${why}`);
    };
    switch (action) {
      case "kill":
        if (state === "killed") refuse("is already killed");
        await this.#pg.raft.kill(id, "SIGKILL");
        this.#paused.delete(id);
        this.#rates.get(id)?.reset();
        break;
      case "restart":
        if (state !== "killed") refuse(`is running (${state}); kill it first`);
        try {
          await this.#pg.raft.restart(id);
        } catch (e) {
          throw new PlaygroundError(
            "unavailable",
            `node ${id} did not come back: ${
              e instanceof Error ? e.message : e
            }`,
          );
        }
        break;
      case "pause":
        if (state !== "up") {
          refuse(`is ${state}; only a running node can be paused`);
        }
        this.#pg.raft.signal(id, "SIGSTOP");
        this.#paused.add(id);
        break;
      case "resume":
        if (state !== "paused") refuse(`is ${state}, not paused`);
        this.#pg.raft.signal(id, "SIGCONT");
        this.#paused.delete(id);
        break;
    }
    this.#wake?.();
  }

  #leader(): number | null {
    const l = this.#latest.raft.leader;
    return l !== null && this.#raftProcess(l) === "up" ? l : null;
  }

  /** Hands leadership to `to` (or lets the leader pick); resolves with the new leader. */
  async transferLeadership(to?: number): Promise<number> {
    const leader = this.#leader();
    if (leader === null) {
      throw new PlaygroundError(
        "unavailable",
        "there is no leader to hand over from",
      );
    }
    if (to !== undefined && this.#raftProcess(to) !== "up") {
      throw new PlaygroundError(
        "conflict",
        `node ${to} is ${this.#raftProcess(to)}`,
      );
    }
    const out = await callNode(
      `${this.#scheme}://${
        this.#raftHttp(leader)
      }/v1/cluster/transfer-leadership`,
      {
        method: "POST",
        body: JSON.stringify(to === undefined ? {} : { to }),
        headers: this.#kv,
      },
      TransferAnswerSchema,
      8000,
      this.#client,
    );
    this.#wake?.();
    return out.leader;
  }

  /** Writes `key` through `node` (default: the leader). */
  async writeKey(
    key: string,
    value: string,
    node?: number,
  ): Promise<WriteResult> {
    const target = node ?? this.#leader() ??
      RAFT_IDS.find((id) => this.#raftProcess(id) === "up");
    if (target === undefined) {
      throw new PlaygroundError("unavailable", "every raft node is down");
    }
    if (this.#raftProcess(target) !== "up") {
      throw new PlaygroundError(
        "conflict",
        `node ${target} is ${
          this.#raftProcess(target)
        }; write through a running node`,
      );
    }
    const http = this.#raftHttp(target)!;
    const writeId = this.#nextWriteId++;
    const flow = this.#follows.get(key)?.flow;
    const t0 = performance.now();
    flow?.record({ type: "proposed", writeId, node: target, value, atMs: t0 });
    try {
      const out = await callNode(
        `${this.#scheme}://${http}/v1/kv/${encodeURIComponent(key)}`,
        { method: "PUT", body: JSON.stringify({ value }), headers: this.#kv },
        KvPutAnswerSchema,
        8000,
        this.#client,
      );
      const tookMs = performance.now() - t0;
      const status = await getJson(
        `${this.#scheme}://${http}/v1/status`,
        RaftStatusSchema,
        1000,
        this.#kv,
        this.#client,
      );
      const term = status?.term ?? this.#latest.raft.term ?? 0;
      flow?.record({
        type: "committed",
        writeId,
        index: out.revision,
        term,
        atMs: t0 + tookMs,
      });
      this.#wake?.();
      return {
        key,
        node: target,
        revision: out.revision,
        term,
        tookMs: Math.round(tookMs * 100) / 100,
      };
    } catch (e) {
      flow?.record({
        type: "failed",
        writeId,
        message: e instanceof Error ? e.message : String(e),
        atMs: performance.now(),
      });
      throw e;
    }
  }

  /** Starts following `key`, dropping the oldest followed key beyond the limit. */
  follow(key: string): void {
    const existing = this.#follows.get(key);
    if (existing) {
      // Most recently followed last, so the oldest is dropped first.
      this.#follows.delete(key);
      this.#follows.set(key, existing);
      return;
    }
    while (this.#follows.size >= this.#maxFollowed) {
      const [oldest, f] = this.#follows.entries().next().value!;
      f.abort.abort();
      this.#follows.delete(oldest);
    }
    // Watches start from the commit index seen now, not "from now" on each
    // node: a node that is down, or catches up before its watch connects,
    // still reports applying every write made since.
    const committed = Math.max(
      0,
      ...this.#latest.raft.nodes.map((n) => n.commitIndex ?? 0),
    );
    const f: Followed = {
      flow: new KeyFlow(key),
      abort: new AbortController(),
      fromRevision: committed + 1,
    };
    this.#follows.set(key, f);
    for (const id of RAFT_IDS) {
      this.#watchNode(key, id, f).catch(() => {});
    }
  }

  /** Streams `/v1/watch` of one node for `key`, reconnecting across kills and restarts. */
  async #watchNode(key: string, id: number, f: Followed): Promise<void> {
    const signal = f.abort.signal;
    let next: number | undefined = f.fromRevision;
    while (!signal.aborted && !this.#closed) {
      const http = this.#raftHttp(id);
      if (!http || this.#raftProcess(id) === "killed") {
        await sleep(300, signal);
        continue;
      }
      const from = next !== undefined ? `&from=${next}` : "";
      try {
        const res = await fetch(
          `${this.#scheme}://${http}/v1/watch?prefix=${
            encodeURIComponent(key)
          }${from}`,
          {
            signal,
            headers: this.#kv,
            ...(this.#client ? { client: this.#client } : {}),
          },
        );
        if (res.status === 410) {
          // The node no longer has that history (restarted from a
          // snapshot): follow from now on.
          await res.body?.cancel();
          next = undefined;
          continue;
        }
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          await sleep(500, signal);
          continue;
        }
        const parser = new SseParser();
        for await (
          const chunk of res.body.pipeThrough(new TextDecoderStream())
        ) {
          for (const ev of parser.push(chunk)) {
            if (ev.event !== "put" && ev.event !== "delete") continue;
            let raw: unknown;
            try {
              raw = JSON.parse(ev.data);
            } catch {
              continue;
            }
            const parsed = WatchEventSchema.safeParse(raw);
            if (!parsed.success) continue;
            const e = parsed.data;
            next = e.revision + 1;
            if (e.key !== key) continue;
            f.flow.record({
              type: "applied",
              node: id,
              index: e.revision,
              op: ev.event,
              value: e.value,
              atMs: performance.now(),
            });
          }
        }
      } catch {
        // Killed node, paused node timing out, or we stopped following.
      }
      await sleep(300, signal);
    }
  }

  // ---- gfs actions

  /** Number of chunkservers. */
  chunkserverCount(): number {
    return this.#pg.gfs.chunkservers.length;
  }

  /** SIGKILL or start again chunkserver `index`. */
  chunkserverAction(index: number, action: "kill" | "restart"): Promise<void> {
    return this.#processAction(
      `chunkserver ${index}`,
      this.#killedChunkservers,
      index,
      action,
      () => this.#pg.gfs.chunkservers[index]!.stop(true),
      () => this.#pg.gfs.restartChunkserver(index),
    );
  }

  /** Number of GFS master replicas. */
  masterCount(): number {
    return this.#pg.gfs.masterUrls.length;
  }

  /** SIGKILL or start again (on its data) GFS master `index`. */
  masterAction(index: number, action: "kill" | "restart"): Promise<void> {
    return this.#processAction(
      `master ${index}`,
      this.#killedMasters,
      index,
      action,
      () => this.#pg.gfs.masters[index]!.stop(true),
      // Same ports and data directory: it rejoins as a follower and
      // catches up from the leader's log.
      () => this.#pg.gfs.startMaster(index),
    );
  }

  /**
   * Kills or starts again one GFS process, one action at a time per
   * process (a second click while the first runs is a 409, not a race).
   */
  async #processAction(
    name: string,
    killed: Set<number>,
    index: number,
    action: "kill" | "restart",
    kill: () => Promise<void>,
    restart: () => Promise<unknown>,
  ): Promise<void> {
    if (this.#busy.has(name)) {
      throw new PlaygroundError(
        "conflict",
        `${name} is being killed or restarted; wait a moment`,
      );
    }
    if (action === "kill" && killed.has(index)) {
      throw new PlaygroundError("conflict", `${name} is already killed`);
    }
    if (action === "restart" && !killed.has(index)) {
      throw new PlaygroundError(
        "conflict",
        `${name} is running; kill it first`,
      );
    }
    this.#busy.add(name);
    try {
      if (action === "kill") {
        await kill();
        killed.add(index);
      } else {
        try {
          await restart();
        } catch (e) {
          throw new PlaygroundError(
            "unavailable",
            `${name} did not come back: ${e instanceof Error ? e.message : e}`,
          );
        }
        killed.delete(index);
      }
    } finally {
      this.#busy.delete(name);
    }
    this.#wake?.();
  }

  /** Streams a file to GFS under /uploads/<name>, 2 replicas per chunk. */
  async upload(
    name: string,
    body: ReadableStream<Uint8Array>,
    _length: number | undefined,
  ): Promise<UploadResult> {
    const path = `/uploads/${name}`;
    // The body can be read only once, so wait for a leader that can place
    // chunks before reading it: right after an election the new leader
    // knows no chunkserver until their next heartbeats.
    await this.#waitForPlacement(UPLOAD_REPLICATION, 10_000);
    try {
      // Two replicas on three chunkservers: killing one leaves a server
      // to re-replicate onto, so the repair is visible.
      const r = await this.#gfsClient.upload(path, body, {
        replication: UPLOAD_REPLICATION,
      });
      this.#tick = 0; // the next snapshot lists the file
      this.#wake?.();
      return { path, length: r.length, chunks: r.chunks };
    } catch (e) {
      throw fromGfsError(e);
    }
  }

  /** Resolves once the serving master sees `replicas` live chunkservers. */
  async #waitForPlacement(replicas: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = "no GFS master leads right now (election in progress?)";
    for (;;) {
      const master = await this.gfsMasterUrl().catch(() => null);
      if (master !== null) {
        const list = await getJson(
          `${master}/v1/chunkservers`,
          ChunkserverListSchema,
          1500,
          this.#gfsAuth,
          this.#client,
        );
        const alive = list?.chunkservers.filter((c) => c.alive).length ?? 0;
        if (alive >= replicas) return;
        why =
          `the GFS master sees ${alive} live chunkservers; ${replicas} are needed`;
      }
      if (Date.now() > deadline) throw new PlaygroundError("unavailable", why);
      await sleep(250);
    }
  }

  // ---- search

  /** Runs a search for the top `size` hits on the coordinator. */
  async search(query: string, size: number): Promise<SearchResult> {
    const out = await callNode(
      `${this.#pg.search.url}/v1/search?q=${
        encodeURIComponent(query)
      }&size=${size}`,
      { method: "GET", headers: this.#searchAuth },
      SearchAnswerSchema,
      15_000,
      this.#client,
    );
    return {
      query,
      tookMs: out.took_ms,
      mergeMs: out.merge_ms ?? null,
      partial: out.partial,
      shards: out.shards ?? [],
      hits: out.hits.map((h) => ({
        id: h.id,
        score: h.score,
        name: h.name,
        snippet: h.snippet,
      })),
    };
  }
}

/** The GFS view while no master answers: what is known of the processes, no counts. */
function unreachableGfs(
  error: string,
  known: Partial<
    Pick<GfsView, "masters" | "leaderIndex" | "chunkservers" | "uploads">
  > = {},
): GfsView {
  return {
    masterUrl: null,
    masters: [],
    leaderIndex: null,
    reachable: false,
    error,
    chunkservers: [],
    chunks: 0,
    underReplicated: 0,
    lost: 0,
    files: 0,
    clonesInFlight: 0,
    clonesDone: 0,
    uploads: [],
    ...known,
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/** GETs `url` and checks the answer; null when it fails, times out or does not fit `schema`. */
async function getJson<T extends z.ZodType>(
  url: string,
  schema: T,
  timeoutMs: number,
  headers: Record<string, string>,
  client: Deno.HttpClient | undefined,
): Promise<z.output<T> | null> {
  try {
    const res = await fetch(url, {
      ...(client ? { client } : {}),
      signal: AbortSignal.timeout(timeoutMs),
      headers,
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    const parsed = schema.safeParse(await res.json());
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

async function getText(
  url: string,
  timeoutMs: number,
  headers: Record<string, string>,
  client: Deno.HttpClient | undefined,
): Promise<string | null> {
  try {
    const res = await fetch(url, {
      ...(client ? { client } : {}),
      signal: AbortSignal.timeout(timeoutMs),
      headers,
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.text();
  } catch {
    return null;
  }
}

const CODE_BY_GFS: Partial<Record<GfsErrorCode, PlaygroundErrorCode>> = {
  bad_request: "bad_request",
  not_found: "not_found",
  conflict: "conflict",
  too_large: "too_large",
};

/** A gfs client failure as the dashboard reports it (the rest: `unavailable`). */
function fromGfsError(e: unknown): PlaygroundError {
  if (e instanceof PlaygroundError) return e;
  if (isGfsError(e)) {
    return new PlaygroundError(CODE_BY_GFS[e.code] ?? "unavailable", e.message);
  }
  return new PlaygroundError(
    "unavailable",
    e instanceof Error ? e.message : String(e),
  );
}

/**
 * Calls a node and returns its JSON; a JSON error answer becomes a
 * {@link PlaygroundError} carrying the node's message, a network failure
 * or timeout an `unavailable`/`timeout` one.
 */
async function callNode<T extends z.ZodType>(
  url: string,
  init: RequestInit,
  schema: T,
  timeoutMs: number,
  client: Deno.HttpClient | undefined,
): Promise<z.output<T>> {
  let res: Response;
  try {
    res = await fetch(url, {
      ...init,
      ...(client ? { client } : {}),
      headers: { "content-type": "application/json", ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "TimeoutError") {
      throw new PlaygroundError(
        "timeout",
        `${new URL(url).host} did not answer within ${timeoutMs} ms`,
      );
    }
    throw new PlaygroundError(
      "unavailable",
      `${new URL(url).host} is unreachable`,
    );
  }
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  if (!res.ok) {
    const err = (body as { error?: { code?: string; message?: string } })
      ?.error;
    const code = CODE_BY_STATUS[res.status] ??
      (res.status >= 500 ? "unavailable" : "bad_request");
    throw new PlaygroundError(
      code,
      err?.message ?? `${new URL(url).host} answered HTTP ${res.status}`,
    );
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new PlaygroundError(
      "unavailable",
      `${new URL(url).host} answered something unexpected: ${
        parsed.error.issues[0]?.message ?? "invalid"
      }`,
    );
  }
  return parsed.data;
}
