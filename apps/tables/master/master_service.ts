/**
 * The tables master: campaigns on the kv lock `tables/master`; once it
 * holds it (with its fencing token), it keeps the tablet map in kv, hands
 * the tablets of dead servers to live ones, and orders the servers to open
 * and close tablets. Every kv write it makes is a transaction that
 * compares the lock's create revision with its token, so a deposed master
 * changes nothing; every order to a tablet server carries the token, and a
 * server refuses orders older than one it has seen.
 *
 * Reconciling is level triggered but event driven: a full pass reads the
 * whole state from kv and each live server's open tablets, then plans and
 * sends what differs. It runs at once when anything under `tables/`
 * changes (seen through `KvClient.watch`) or on a kick, and at the next
 * tick (`reconcileMs`) while the last pass had work or failed; otherwise
 * ticks are skipped until the safety-net period (`fullPassMs`) is up (see
 * `pass_schedule.ts`). METADATA is read only when the rows it should hold
 * changed, or on that period.
 */
import { Buffer } from "node:buffer";
import { type KvClient, KvClientError, type KvSession } from "@strata/kv";
import { callJson, EdgeError } from "@strata/edge";
import { TablesError } from "../shared/tables_error.ts";
import { z } from "zod";
import {
  MASTER_ADDRESS_KEY,
  MASTER_LOCK,
  MASTER_LOCK_KEY,
  RETIRED_PREFIX,
  retiredKey,
  retireOp,
  SCHEMA_PREFIX,
  schemaKey,
  SERVER_PREFIX,
  type ServerRecord,
  serverRecordSchema,
  storageNameSchema,
  TABLES_PREFIX,
  TABLET_PREFIX,
  tabletKey,
  type TabletRecord,
  tabletRecordSchema,
} from "../shared/kv_layout.ts";
import { type TableSchemaJson, tableSchemaJson } from "../shared/wire.ts";
import {
  isRootTablet,
  META_SCHEMA,
  META_TABLE,
  ROOT_END,
} from "../shared/metadata_layout.ts";
import { desiredMetaRows, MetaStore, planMetaSync } from "./metadata_sync.ts";
import {
  type CrdtRangeView,
  createCrdtRange,
  deleteCrdtRange,
  getCrdtRange,
  listCrdtRanges,
} from "../crdt/crdt_ranges.ts";
import {
  planOrders,
  planReassignments,
  planRebalance,
} from "./assignment_plan.ts";
import { fullPassPeriod, needsFullPass } from "./pass_schedule.ts";
import {
  DEFAULT_LOAD_POLICY,
  type LoadPolicy,
  planLoadMove,
  planLoadSplits,
  planMerge,
  sustained,
  type TabletLoad,
} from "./load_plan.ts";

/** Options of {@link MasterService}. */
export interface MasterOptions {
  id: string;
  /** This master's URL (published when it becomes active). */
  url: string;
  kv: KvClient;
  /** TTL of the master's kv session, ms. */
  ttlMs: number;
  /** The tables admin token the servers accept (undefined: no auth). */
  serverToken?: string;
  /** Fetch client for the tablet servers (trusting their TLS certificate). */
  httpClient?: Deno.HttpClient;
  /** Period of the reconcile tick, ms (default 1000). */
  reconcileMs?: number;
  /**
   * A full pass (kv, the servers' reports, METADATA) runs at least this
   * often even when nothing changed, ms (default: `fullPassPeriod`).
   */
  fullPassMs?: number;
  /** Split a tablet whose server reports more than this many bytes (0: never). */
  splitBytes?: number;
  /** Sweep retired tablets' stores at most this often, ms (default 30000). */
  sweepMs?: number;
  /**
   * Wait at most this long for a dead server's log split before
   * reassigning its tablets, ms (default 5000). The split goes on in the
   * background; owners that open before it is done read the log whole.
   */
  logSplitWaitMs?: number;
  /** Split-by-load, merge and load-balancing thresholds (defaults: {@link DEFAULT_LOAD_POLICY}). */
  loadPolicy?: Partial<LoadPolicy>;
  log: (line: string) => void;
}

/** A tablet with where it is served. */
export interface TabletView extends TabletRecord {
  url: string | null;
  /** Approximate bytes, as the server last reported (active master only). */
  bytes?: number;
  /** Writes and reads per second, as the server last reported (active master only). */
  load?: TabletLoad;
}

/** One decision of the master about a tablet (splits, merges, moves). */
export interface MasterDecision {
  /** Wall-clock time, ISO 8601 (for people; never used to measure time). */
  at: string;
  kind: "split" | "merge" | "move" | "assign";
  tablet: string;
  text: string;
}

const dec = new TextDecoder();
const parseJson = <S extends z.ZodType>(schema: S, bytes: Uint8Array) => {
  const r = schema.safeParse(JSON.parse(dec.decode(bytes)));
  return r.success ? r.data as z.output<S> : undefined;
};

const reportSchema = z.object({
  server: z.string(),
  serving: z.boolean(),
  tablets: z.array(z.object({
    id: z.string(),
    bytes: z.number(),
    frozen: z.boolean(),
    load: z.object({
      writesPerSec: z.number(),
      readsPerSec: z.number(),
      splitKey: z.string().optional(),
    }).optional(),
  })),
});

/** The state of the tables in kv, read in one pass. */
export interface KvState {
  schemas: Map<string, TableSchemaJson>;
  tablets: TabletRecord[];
  servers: Map<string, ServerRecord>;
}

/** Reads schemas, tablets and live servers from kv (any master may). */
export async function readKvState(kv: KvClient): Promise<KvState> {
  const schemas = new Map<string, TableSchemaJson>();
  for await (const e of kv.scan(SCHEMA_PREFIX)) {
    const s = parseJson(tableSchemaJson, e.value);
    if (s) schemas.set(s.name, s);
  }
  const tablets: TabletRecord[] = [];
  for await (const e of kv.scan(TABLET_PREFIX)) {
    const t = parseJson(tabletRecordSchema, e.value);
    if (t) tablets.push(t);
  }
  const servers = new Map<string, ServerRecord>();
  for await (const e of kv.scan(SERVER_PREFIX)) {
    const s = parseJson(serverRecordSchema, e.value);
    if (s) servers.set(s.id, s);
  }
  return { schemas, tablets, servers };
}

/** The lost-the-lock signal inside the active loop. */
class Deposed extends Error {}

/** One master process's role: standby or active. */
export class MasterService {
  #role: "standby" | "active" = "standby";
  #token = 0;
  #session?: KvSession;
  #stopped = false;
  #kick = Promise.withResolvers<void>();
  #sizes = new Map<string, number>();
  #loop?: Promise<void>;
  /** Tablets this master is splitting or merging now. */
  #splitting = new Set<string>();
  /**
   * Per tablet: the server whose latest report had it open (until it
   * reports otherwise or closes it on order). A tablet moved elsewhere is
   * opened on its new server only once its old server has let it go: a
   * handoff, as BigTable's master has the source unload first.
   */
  #openOn = new Map<string, string>();
  /** Per tablet: its last reported load (rebuilt every pass). */
  #loads = new Map<string, TabletLoad>();
  /** Since when (monotonic ms) each tablet has been hot, and cold. */
  #hotSince = new Map<string, number>();
  #coldSince = new Map<string, number>();
  #decisions: MasterDecision[] = [];
  /** When (performance.now()) retired stores were last swept. */
  #sweptAt = 0;
  #sweeping: Promise<void> | undefined;
  /** Log splits the reassignment stopped waiting for (awaited on stop). */
  readonly #splitsInFlight = new Set<Promise<unknown>>();
  /** Stores of new tablets a split or merge of this master is making now. */
  #pending = new Set<string>();
  readonly #policy: LoadPolicy;
  readonly #meta: MetaStore;
  /** Something may have changed since the last full pass began. */
  #changed = true;
  /** The last full pass had nothing to do and nothing failed. */
  #quiet = false;
  /** The watch on `tables/` runs without a gap. */
  #watching = false;
  /** When (performance.now()) the last full pass began. */
  #fullAt = -Infinity;
  /** The METADATA rows (fingerprint) last found or made in METADATA. */
  #metaSynced: string | undefined;
  /** When (performance.now()) METADATA was last read. */
  #metaReadAt = -Infinity;
  readonly #passes = { full: 0, skipped: 0, metaReads: 0 };
  readonly #fullPassMs: number;

  /** @param o options. */
  constructor(private readonly o: MasterOptions) {
    this.#policy = { ...DEFAULT_LOAD_POLICY, ...o.loadPolicy };
    this.#meta = new MetaStore(o);
    this.#fullPassMs = o.fullPassMs ??
      fullPassPeriod(o.reconcileMs ?? 1000, this.#policy, o.splitBytes ?? 0);
  }

  /**
   * Reconcile ticks of this master so far: full passes, skipped ones
   * (nothing changed), and METADATA reads.
   */
  get passes(): { full: number; skipped: number; metaReads: number } {
    return { ...this.#passes };
  }

  /** The safety-net period of the full pass, ms. */
  get fullPassMs(): number {
    return this.#fullPassMs;
  }

  /** The split-by-load, merge and balancing thresholds in force. */
  get loadPolicy(): LoadPolicy {
    return this.#policy;
  }

  /** The latest decisions about tablets (splits, merges, moves), oldest first. */
  get decisions(): MasterDecision[] {
    return [...this.#decisions];
  }

  /** Logs a decision and keeps the last 100 for `/v1/status`. */
  #decide(kind: MasterDecision["kind"], tablet: string, text: string): void {
    this.o.log(`tablet ${tablet}: ${text}`);
    this.#decisions.push({ at: new Date().toISOString(), kind, tablet, text });
    if (this.#decisions.length > 100) this.#decisions.shift();
  }

  /** `standby` or `active`. */
  get role(): "standby" | "active" {
    return this.#role;
  }

  /** The fencing token while active (0 otherwise). */
  get token(): number {
    return this.#role === "active" ? this.#token : 0;
  }

  /** Starts campaigning in the background. */
  start(): void {
    this.#loop = this.#run();
  }

  /** Stops: leaves the lock (if held) and closes the session. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#kick.resolve();
    await this.#session?.close().catch(() => {});
    await this.#loop?.catch(() => {});
    await this.#sweeping;
    await Promise.all(this.#splitsInFlight);
  }

  /** The active master's URL as published in kv, if any. */
  async leaderUrl(): Promise<string | undefined> {
    const e = await this.o.kv.get(MASTER_ADDRESS_KEY).catch(() => undefined);
    return e ? dec.decode(e.value) : undefined;
  }

  /** Runs a full reconcile pass soon. */
  kick(): void {
    this.#changed = true;
    this.#kick.resolve();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        this.#session = await this.o.kv.openSession(this.o.ttlMs);
        const session = this.#session;
        let token: number | undefined;
        while (!this.#stopped && token === undefined && !session.lost) {
          token = await this.o.kv.lock(
            MASTER_LOCK,
            session.id,
            Math.min(4000, this.o.ttlMs),
          );
        }
        if (token === undefined) {
          await session.close().catch(() => {}); // stops its keep-alives
          continue;
        }
        this.#token = token;
        this.#role = "active";
        this.o.log(`active with fencing token ${token}`);
        const revision = await this.o.kv.put(MASTER_ADDRESS_KEY, this.o.url, {
          session: session.id,
        });
        await this.#active(session, revision);
      } catch (e) {
        if (this.#stopped) break;
        this.o.log(
          `${e instanceof Deposed ? "deposed" : "error"}: ${
            e instanceof Error ? e.message : e
          }; campaigning again`,
        );
        await this.#session?.close().catch(() => {});
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        this.#role = "standby";
      }
    }
  }

  async #active(session: KvSession, revision: number): Promise<void> {
    const watchAbort = new AbortController();
    const watching = this.#watchTables(revision, watchAbort.signal);
    // Nothing carries over from an earlier term: another master may have
    // changed anything since.
    this.#changed = true;
    this.#quiet = false;
    this.#metaSynced = undefined;
    try {
      while (!this.#stopped) {
        if (session.lost) throw new Deposed("the kv session was lost");
        const full = needsFullPass({
          changed: this.#changed,
          quiet: this.#quiet,
          watching: this.#watching,
          sinceFullMs: performance.now() - this.#fullAt,
          sweepDue: this.#sweepDue(),
        }, this.#fullPassMs);
        if (full) {
          this.#passes.full++;
          this.#changed = false;
          this.#quiet = false;
          this.#fullAt = performance.now();
          try {
            this.#quiet = await this.#reconcile();
          } catch (e) {
            if (e instanceof Deposed || this.#role !== "active") throw e;
            // kv or a server did not answer: the next tick tries again.
            this.o.log(`reconcile: ${e instanceof Error ? e.message : e}`);
          }
        } else this.#passes.skipped++;
        await Promise.race([
          this.#kick.promise,
          new Promise((r) => setTimeout(r, this.o.reconcileMs ?? 1000)),
        ]);
        this.#kick = Promise.withResolvers<void>();
      }
    } finally {
      watchAbort.abort();
      this.#watching = false;
      await watching.catch(() => {});
    }
  }

  /**
   * Marks a change (and kicks a pass) on every change under `tables/`:
   * tablet records, schemas, servers coming and going. It watches from
   * `revision`, the revision of a write made before the first full pass
   * read anything, so no change between that read and the watch is
   * missed. A broken watch resumes after the last revision it delivered;
   * when that is compacted, from kv's current revision (an empty
   * transaction's), with a full pass after it. Meanwhile every tick runs a
   * full pass.
   */
  async #watchTables(revision: number, signal: AbortSignal): Promise<void> {
    let from: number | undefined = revision;
    while (!signal.aborted) {
      try {
        if (from === undefined) {
          const r = await this.o.kv.txn({
            compare: [],
            success: [],
            failure: [],
          });
          from = r.revision as number;
        }
        this.#watching = true;
        this.kick();
        for await (const e of this.o.kv.watch(TABLES_PREFIX, from, signal)) {
          from = e.revision + 1;
          if (e.type === "delete" && e.key.startsWith(SERVER_PREFIX)) {
            this.o.log(
              `tablet server ${e.key.slice(SERVER_PREFIX.length)} is gone`,
            );
          }
          this.kick();
        }
      } catch (e) {
        // kv unreachable: resume where the watch was. Compacted or
        // lagging: from now on, after a full pass.
        if (
          e instanceof KvClientError &&
          (e.code === "compacted" || e.code === "lagging")
        ) from = undefined;
      }
      this.#watching = false;
      if (!signal.aborted) {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Throws {@link Deposed} unless this master still holds the lock with its token. */
  async #checkLock(): Promise<void> {
    const lock = await this.o.kv.get(MASTER_LOCK_KEY);
    if (!lock || lock.createRevision !== this.#token) {
      throw new Deposed(`the lock ${MASTER_LOCK} is no longer ours`);
    }
  }

  /**
   * Applies kv writes only while this master holds the lock.
   * @throws Deposed when the compare fails.
   */
  async fencedWrite(
    ops: Array<
      { op: "put"; key: string; value: string } | { op: "delete"; key: string }
    >,
    extraCompare: Array<Record<string, unknown>> = [],
  ): Promise<boolean> {
    if (this.#role !== "active") {
      throw new EdgeError("no_leader", "this master is not active");
    }
    const r = await this.o.kv.txn({
      compare: [
        {
          key: MASTER_LOCK_KEY,
          target: "createRevision",
          op: "==",
          value: this.#token,
        },
        ...extraCompare,
      ],
      success: ops,
      failure: [{ op: "get", key: MASTER_LOCK_KEY }],
    });
    if (r.succeeded) return true;
    const results = r.results as Array<{ kv?: { createRevision: number } }>;
    if (results[0]?.kv?.createRevision !== this.#token) {
      this.#role = "standby";
      this.kick();
      throw new EdgeError("no_leader", "this master lost the master lock");
    }
    return false;
  }

  /** No sweep runs and `sweepMs` has passed since the last one began. */
  #sweepDue(): boolean {
    return this.#sweeping === undefined &&
      performance.now() - this.#sweptAt >= (this.o.sweepMs ?? 30_000);
  }

  /**
   * One full pass. @returns whether it was quiet: no order sent, nothing
   * written, nothing failed, no split or merge running.
   */
  async #reconcile(): Promise<boolean> {
    await this.#checkLock();
    let quiet = true;
    const state = await readKvState(this.o.kv);
    await this.#bootstrapMeta(state);
    // The root tablet first, then METADATA's other tablets: no user
    // tablet can be found without them.
    const rank = (t: TabletRecord) =>
      isRootTablet(t) ? 0 : t.table === META_TABLE ? 1 : 2;
    state.tablets.sort((a, b) => rank(a) - rank(b));
    const live = new Set(state.servers.keys());
    const reassign = planReassignments(state.tablets, live);
    // A dead server's commit logs are sorted by tablet first, so each new
    // owner reads only its tablets' part.
    // The reassignment waits for the splits a bounded time only: reading
    // an unsplit log whole gives the same records (log_sources.ts), so a
    // slow split costs the new owners reading time, never correctness.
    const dead = [...new Set(reassign.flatMap((r) => r.from ?? []))];
    if (reassign.length > 0) quiet = false;
    if (dead.length > 0) {
      const splits = Promise.all(
        dead.map((s, i) => this.#splitLogs(s, state, i)),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waitMs = this.o.logSplitWaitMs ?? 5_000;
      const waited = await Promise.race([
        splits.then(() => true),
        new Promise<false>((r) => timer = setTimeout(() => r(false), waitMs)),
      ]);
      clearTimeout(timer);
      if (!waited) {
        this.o.log(
          `the split of ${
            dead.join(", ")
          }'s commit logs takes over ${waitMs} ms: reassigning now (owners that open before it is done read the logs whole)`,
        );
        this.#splitsInFlight.add(splits);
        void splits.finally(() => this.#splitsInFlight.delete(splits));
      }
    }
    for (const r of reassign) {
      await this.fencedWrite([{
        op: "put",
        key: tabletKey(r.tablet.table, r.tablet.id),
        value: JSON.stringify(r.tablet),
      }]);
      this.#decide(
        "assign",
        r.tablet.id,
        `of ${r.tablet.table}: assigned to ${r.to}${
          r.from ? ` (was on ${r.from}, which is gone)` : ""
        }`,
      );
      const i = state.tablets.findIndex((t) => t.id === r.tablet.id);
      state.tablets[i] = r.tablet;
    }
    // Balancing moves user tablets only: METADATA's stay where they were
    // assigned, so clients' cached locations of them stay good.
    const user = state.tablets.filter((t) => t.table !== META_TABLE);
    const byCount = this.#splitting.size === 0
      ? planRebalance(user, live)
      : undefined;
    const move = byCount ??
      (this.#splitting.size === 0
        ? planLoadMove(user, this.#loads, live, this.#policy)
        : undefined);
    if (move) {
      quiet = false;
      await this.fencedWrite([{
        op: "put",
        key: tabletKey(move.tablet.table, move.tablet.id),
        value: JSON.stringify(move.tablet),
      }]);
      const ops = (id: string) => {
        const l = this.#loads.get(id);
        return l ? Math.round(l.writesPerSec + l.readsPerSec) : 0;
      };
      this.#decide(
        "move",
        move.tablet.id,
        byCount
          ? `moving from ${move.from} to ${move.to} to even the load`
          : `moving from ${move.from} to ${move.to} to even the load (${
            ops(move.tablet.id)
          } ops/s)`,
      );
      const i = state.tablets.findIndex((t) => t.id === move.tablet.id);
      state.tablets[i] = move.tablet;
    }
    const loads = new Map<string, TabletLoad>();
    const ordered = await Promise.all(
      [...state.servers.values()].map((s) =>
        this.#orderServer(s, state, loads).catch((e) => {
          this.o.log(`server ${s.id}: ${e instanceof Error ? e.message : e}`);
          return true;
        })
      ),
    );
    if (ordered.includes(true)) quiet = false;
    this.#loads = loads;
    const synced = await this.#syncMeta(state).catch((e) => {
      this.o.log(`METADATA: ${e instanceof Error ? e.message : e}`);
      return false;
    });
    if (!synced) quiet = false;
    this.#planByLoad(state, live);
    if (this.#splitting.size > 0) quiet = false;
    if (this.#sweepDue()) {
      // In the background, one at a time: reading manifests and deleting
      // files must not hold up the passes that assign tablets.
      this.#sweptAt = performance.now();
      this.#sweeping = this.#sweep(state).catch((e) =>
        this.o.log(`sweep: ${e instanceof Error ? e.message : e}`)
      ).finally(() => this.#sweeping = undefined);
    }
    return quiet;
  }

  /**
   * Has a live server split the commit logs of dead server `dead` by
   * tablet (`../storage/log_split.ts`). A failure only costs speed: the
   * tablets' new owners then read the dead server's logs whole.
   */
  async #splitLogs(dead: string, state: KvState, i: number): Promise<void> {
    const servers = [...state.servers.values()];
    const server = servers[i % servers.length];
    if (server === undefined) return;
    try {
      const r = await callJson(
        `${server.url}/v1/logs/split`,
        z.object({
          logs: z.array(z.object({ tablets: z.number(), entries: z.number() })),
          ms: z.number(),
        }),
        {
          body: { token: this.#token, server: dead },
          ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
          client: this.o.httpClient,
          timeoutMs: 60_000,
        },
      );
      if (r.logs.length > 0) {
        const n = (f: "tablets" | "entries") =>
          r.logs.reduce((a, l) => a + l[f], 0);
        this.o.log(
          `${dead}'s commit logs: ${r.logs.length} split by ${server.id} in ${r.ms} ms (${
            n("entries")
          } entries of ${n("tablets")} tablets)`,
        );
      }
    } catch (e) {
      if (e instanceof EdgeError && e.code === "bad_request") return; // no GFS
      this.o.log(
        `${dead}'s commit logs were not split (${
          e instanceof Error ? e.message : e
        }): its tablets' new owners read them whole`,
      );
    }
  }

  /**
   * Lists the stores a split or merge is about to make (`ids` of `table`)
   * as retired before the order goes out, so that if it never commits
   * (a failure, a crash of this master) the sweep deletes them; the
   * commit drops the keys. While this master makes them, its sweeps skip
   * them (`#pending`; the caller removes them when it is done).
   */
  async #intend(table: string, ids: string[]): Promise<void> {
    for (const id of ids) this.#pending.add(`${table}/${id}`);
    await this.fencedWrite(
      ids.map((id) => retireOp({ table, id, dir: `${table}/${id}` })),
    );
  }

  /**
   * Has a live server delete the stores of retired tablets that no live
   * tablet's manifest names any more, then drops their kv keys. `state`
   * (the live tablets) was read before: see ../storage/store_sweep.ts for
   * why that order makes it safe beside running splits.
   */
  async #sweep(state: KvState): Promise<void> {
    await this.#sweepLogs(state).catch((e) =>
      this.o.log(`log sweep: ${e instanceof Error ? e.message : e}`)
    );
    const retired = new Map<string, string>();
    for await (const e of this.o.kv.scan(RETIRED_PREFIX)) {
      const r = parseJson(z.object({ dir: storageNameSchema }), e.value);
      // A store a split or merge is making now is not garbage (yet).
      if (r && !this.#pending.has(r.dir)) retired.set(r.dir, e.key);
    }
    const server = [...state.servers.values()][0];
    if (retired.size === 0 || server === undefined) return;
    // References never cross tables: only the live tablets of tables with
    // retired stores are read.
    const tables = new Set([...retired.keys()].map((d) => d.split("/")[0]));
    const live = state.tablets.filter((t) => tables.has(t.table)).map((t) =>
      t.dir
    );
    const r = await callJson(
      `${server.url}/v1/stores/sweep`,
      z.object({ removed: z.array(z.string()) }),
      {
        body: { token: this.#token, live, retired: [...retired.keys()] },
        ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
        client: this.o.httpClient,
        timeoutMs: 60_000,
      },
    );
    const keys = r.removed.flatMap((d) => retired.get(d) ?? []);
    if (keys.length === 0) return;
    await this.fencedWrite(keys.map((key) => ({ op: "delete", key })));
    this.o.log(`sweep: deleted the stores of ${r.removed.join(", ")}`);
  }

  /**
   * Has a live server delete the commit logs of dead servers (and of
   * servers' previous kv sessions) that no tablet's recovery can read
   * again: every tablet that wrote to one was recovered elsewhere and
   * raised its log floor past it (../storage/log_sweep.ts).
   */
  async #sweepLogs(state: KvState): Promise<void> {
    const server = [...state.servers.values()][0];
    if (server === undefined) return;
    let r;
    try {
      r = await callJson(
        `${server.url}/v1/logs/sweep`,
        z.object({
          removed: z.array(z.string()),
          kept: z.array(z.string()),
          files: z.number(),
          ms: z.number(),
        }),
        {
          body: { token: this.#token },
          ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
          client: this.o.httpClient,
          timeoutMs: 60_000,
        },
      );
    } catch (e) {
      if (e instanceof EdgeError && e.code === "bad_request") return; // no GFS
      throw e;
    }
    if (r.removed.length > 0) {
      this.o.log(
        `log sweep: deleted ${r.removed.length} dead commit logs (${r.files} files) in ${r.ms} ms; ${r.kept.length} kept for recoveries`,
      );
    }
  }

  /**
   * Creates the METADATA table in kv if it is missing: the root tablet
   * ["", 0x01) and one METADATA tablet [0x01, +∞).
   */
  async #bootstrapMeta(state: KvState): Promise<void> {
    if (state.schemas.has(META_TABLE)) return;
    const root = Buffer.from(ROOT_END).toString("base64");
    const tablets: TabletRecord[] = [["", root], [root, null] as const].map(
      ([start, end]) => {
        const id = `${META_TABLE}-${crypto.randomUUID().slice(0, 8)}`;
        return {
          id,
          table: META_TABLE,
          start,
          end,
          dir: `${META_TABLE}/${id}`,
          server: null,
        };
      },
    );
    const ok = await this.fencedWrite(
      [
        {
          op: "put",
          key: schemaKey(META_TABLE),
          value: JSON.stringify(META_SCHEMA),
        },
        ...tablets.map((t) => ({
          op: "put" as const,
          key: tabletKey(META_TABLE, t.id),
          value: JSON.stringify(t),
        })),
      ],
      [{ key: schemaKey(META_TABLE), target: "exists", op: "==", value: 0 }],
    );
    if (!ok) return; // created meanwhile: the next pass reads it
    this.o.log(
      `created the METADATA table: root tablet ${
        tablets[0]!.id
      }, METADATA tablet ${tablets[1]!.id}`,
    );
    state.schemas.set(META_TABLE, META_SCHEMA);
    state.tablets.push(...tablets);
  }

  /**
   * Makes the METADATA rows say what kv says about every tablet but the
   * root: reads them from the METADATA tablets and writes the difference,
   * each write fenced with this master's token. The read is skipped when
   * the rows METADATA should hold are those it held (or was given) last
   * time, until the safety-net period is up: only the active master
   * writes METADATA, and a late write of a deposed one is put right then.
   * @returns whether METADATA was already right (nothing written).
   */
  async #syncMeta(state: KvState): Promise<boolean> {
    const tablets = state.tablets.filter((t) => t.table === META_TABLE).map(
      (t) => ({
        ...t,
        url: t.server === null
          ? null
          : state.servers.get(t.server)?.url ?? null,
      }),
    );
    const desired = desiredMetaRows(state);
    const fingerprint = JSON.stringify([...desired].sort());
    if (
      fingerprint === this.#metaSynced &&
      performance.now() - this.#metaReadAt < this.#fullPassMs
    ) return true;
    this.#metaSynced = undefined; // until the writes below all succeed
    this.#metaReadAt = performance.now();
    this.#passes.metaReads++;
    const plan = planMetaSync(desired, await this.#meta.read(tablets));
    for (const [key, value] of plan.put) {
      await this.#meta.write(tablets, key, value, this.#token);
    }
    for (const key of plan.del) {
      await this.#meta.write(tablets, key, null, this.#token);
    }
    this.#metaSynced = fingerprint;
    return plan.put.length === 0 && plan.del.length === 0;
  }

  /**
   * Splits the tablets that stayed hot (at the key the server chose from
   * its recent keys) and merges a pair of adjacent tablets that stayed
   * small and cold; both run in the background like size splits.
   */
  #planByLoad(state: KvState, live: ReadonlySet<string>): void {
    const now = performance.now();
    const p = this.#policy;
    const ops = (l: TabletLoad) => l.writesPerSec + l.readsPerSec;
    this.#hotSince = sustained(
      this.#hotSince,
      this.#loads,
      (l) => p.splitOps > 0 && ops(l) >= p.splitOps,
      now,
    );
    this.#coldSince = sustained(
      this.#coldSince,
      this.#loads,
      (l) => ops(l) < p.mergeOps,
      now,
    );
    for (
      const s of planLoadSplits(
        state.tablets,
        this.#loads,
        this.#hotSince,
        now,
        p,
      )
    ) {
      if (this.#splitting.has(s.tablet.id)) continue;
      this.#hotSince.delete(s.tablet.id);
      this.#decide(
        "split",
        s.tablet.id,
        `${Math.round(s.opsPerSec)} ops/s >= ${p.splitOps} for ${
          p.splitAfterMs / 1000
        } s: splitting by load at ${
          JSON.stringify(Buffer.from(s.key, "base64").toString("latin1"))
        }`,
      );
      this.splitTablet(
        s.tablet.id,
        new Uint8Array(Buffer.from(s.key, "base64")),
      )
        .catch((e) =>
          this.o.log(
            `tablet ${s.tablet.id}: split failed: ${
              e instanceof Error ? e.message : e
            }`,
          )
        );
    }
    if (this.#splitting.size > 0) return;
    const m = planMerge(
      state.tablets.filter((t) => !isRootTablet(t)),
      this.#loads,
      this.#coldSince,
      live,
      now,
      p,
    );
    if (!m) return;
    this.#coldSince.delete(m.left.id);
    this.#coldSince.delete(m.right.id);
    this.#decide(
      "merge",
      m.left.id,
      `and ${m.right.id} of ${m.left.table}: ${m.bytes} bytes <= ${p.mergeBytes}, under ${p.mergeOps} ops/s for ${
        p.mergeAfterMs / 1000
      } s: merging`,
    );
    this.mergeTablets(m.left.id, m.right.id).catch((e) =>
      this.o.log(
        `tablets ${m.left.id} + ${m.right.id}: merge failed: ${
          e instanceof Error ? e.message : e
        }`,
      )
    );
  }

  /**
   * Reads a server's report, sends it the orders that make it serve what
   * the tablet map says, and starts size splits.
   * @returns whether there was anything to do (orders, a split, a server
   *   not serving yet).
   */
  async #orderServer(
    server: ServerRecord,
    state: KvState,
    loads: Map<string, TabletLoad>,
  ): Promise<boolean> {
    const call = <S extends z.ZodType>(
      path: string,
      schema: S,
      body?: unknown,
    ) =>
      callJson(server.url + path, schema, {
        ...(body === undefined ? {} : { body }),
        ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
        client: this.o.httpClient,
        timeoutMs: 5000,
      });
    const report = await this.#report(server.url);
    this.#noteOpen(server.id, report.tablets.map((t) => t.id));
    if (!report.serving) return true; // it registers again; orders then
    for (const t of report.tablets) {
      this.#sizes.set(t.id, t.bytes);
      const assigned = state.tablets.find((x) => x.id === t.id);
      if (t.load && !t.frozen && assigned?.server === server.id) {
        loads.set(t.id, { bytes: t.bytes, ...t.load });
      }
    }
    const orders = planOrders(
      server.id,
      state.tablets,
      new Set(report.tablets.map((t) => t.id)),
    );
    // A tablet left frozen by a split that never committed (its master
    // died, or the copy failed) is closed; the next pass opens it afresh.
    for (const t of report.tablets) {
      if (
        t.frozen && !this.#splitting.has(t.id) && !orders.close.includes(t.id)
      ) {
        orders.close.push(t.id);
        this.o.log(
          `tablet ${t.id}: frozen by an unfinished split; reopening it`,
        );
      }
    }
    for (const id of orders.close) {
      await call("/v1/tablets/close", z.object({ closed: z.boolean() }), {
        id,
        token: this.#token,
      });
      // The server has let it go (its writes in flight included): the
      // new owner may open it.
      if (this.#openOn.get(id) === server.id) this.#openOn.delete(id);
      this.o.log(`tablet ${id}: closed on ${server.id}`);
    }
    // A moved tablet still open on its old (live) server waits for that
    // server's close, ordered in this pass or the next: opening it here
    // first would claim it while the old one still has writes in flight,
    // which would then end with an unknown outcome.
    const handoff = orders.open.filter((t) => {
      const holder = this.#openOn.get(t.id);
      if (holder === undefined || holder === server.id) return false;
      if (state.servers.has(holder)) return true;
      this.#openOn.delete(t.id); // its holder is gone: nothing to wait for
      return false;
    });
    const opening = orders.open.filter((t) => !handoff.includes(t));
    await Promise.all(opening.map(async (t) => {
      const schema = state.schemas.get(t.table);
      if (!schema) return;
      const started = performance.now();
      await call("/v1/tablets/open", z.object({ opened: z.string() }), {
        tablet: t,
        schema,
        token: this.#token,
      });
      this.o.log(
        `tablet ${t.id}: opened on ${server.id} in ${
          Math.round(performance.now() - started)
        } ms`,
      );
    }));
    const limit = this.o.splitBytes ?? 0;
    for (const t of report.tablets) {
      const assigned = state.tablets.find((x) => x.id === t.id);
      if (
        limit > 0 && t.bytes > limit && !t.frozen &&
        assigned?.server === server.id &&
        !this.#splitting.has(t.id)
      ) {
        this.o.log(`tablet ${t.id}: ${t.bytes} bytes > ${limit}: splitting`);
        this.splitTablet(t.id).catch((e) =>
          this.o.log(
            `tablet ${t.id}: split failed: ${
              e instanceof Error ? e.message : e
            }`,
          )
        );
      }
    }
    return orders.close.length + orders.open.length > 0;
  }

  /** Records the tablets `server` reports open (and forgets the others it held). */
  #noteOpen(server: string, open: readonly string[]): void {
    const now = new Set(open);
    for (const [id, holder] of this.#openOn) {
      if (holder === server && !now.has(id)) this.#openOn.delete(id);
    }
    for (const id of open) this.#openOn.set(id, server);
  }

  /**
   * Splits tablet `id` at `key` (default: the tablet's middle key): the
   * server freezes the tablet's writes and copies it into two new tablets;
   * then the tablet map swaps the old record for the two new ones in one
   * fenced kv transaction, and the next pass opens them.
   * @throws EdgeError `not_found`, `conflict` (cannot split), `no_leader`.
   */
  async splitTablet(id: string, key?: Uint8Array): Promise<TabletRecord[]> {
    if (this.#role !== "active") {
      throw new EdgeError("no_leader", "this master is not active");
    }
    if (this.#splitting.has(id)) {
      throw new EdgeError("conflict", `tablet ${id} is being split`);
    }
    this.#splitting.add(id);
    const made: string[] = [];
    const state = await readKvState(this.o.kv).catch((e) => {
      this.#splitting.delete(id);
      throw e;
    });
    const t = state.tablets.find((x) => x.id === id);
    const server = t?.server ? state.servers.get(t.server) : undefined;
    try {
      if (!t) throw new EdgeError("not_found", `no tablet ${id}`);
      if (isRootTablet(t)) {
        throw new EdgeError("conflict", "the root tablet is never split");
      }
      if (!server) {
        // Nothing was sent to a server: the client may safely ask again.
        throw new TablesError(
          "not_serving",
          503,
          `tablet ${id} is not served now (its server is re-registering or dead); try again`,
        );
      }
      const newId = () => `${t.table}-${crypto.randomUUID().slice(0, 8)}`;
      const [leftId, rightId] = [newId(), newId()];
      for (const x of [leftId, rightId]) made.push(`${t.table}/${x}`);
      await this.#intend(t.table, [leftId, rightId]);
      const started = performance.now();
      const r = await callJson(
        `${server.url}/v1/tablets/split`,
        z.object({
          key: z.string(),
          entries: z.number(),
          tables: z.number().default(0),
        }),
        {
          body: {
            id,
            token: this.#token,
            left: `${t.table}/${leftId}`,
            right: `${t.table}/${rightId}`,
            ...(key ? { key: Buffer.from(key).toString("base64") } : {}),
          },
          ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
          client: this.o.httpClient,
          timeoutMs: 120_000,
        },
      );
      const left: TabletRecord = {
        ...t,
        id: leftId,
        end: r.key,
        dir: `${t.table}/${leftId}`,
      };
      const right: TabletRecord = {
        ...t,
        id: rightId,
        start: r.key,
        dir: `${t.table}/${rightId}`,
      };
      const ok = await this.fencedWrite(
        [
          { op: "delete", key: tabletKey(t.table, t.id) },
          retireOp(t),
          { op: "delete", key: retiredKey(t.table, leftId) },
          { op: "delete", key: retiredKey(t.table, rightId) },
          ...[left, right].map((x) => ({
            op: "put" as const,
            key: tabletKey(x.table, x.id),
            value: JSON.stringify(x),
          })),
        ],
        [{
          key: tabletKey(t.table, t.id),
          target: "exists",
          op: "==",
          value: 1,
        }],
      );
      if (!ok) {
        throw new EdgeError(
          "conflict",
          `tablet ${id} went away during the split`,
        );
      }
      this.#decide(
        "split",
        id,
        `split into ${leftId} and ${rightId} (${r.tables} SSTables shared, ${r.entries} entries copied) in ${
          Math.round(performance.now() - started)
        } ms`,
      );
      this.kick();
      return [left, right];
    } finally {
      for (const d of made) this.#pending.delete(d);
      this.#splitting.delete(id);
      this.kick();
    }
  }

  /** A live server's report of its open tablets. */
  async #report(url: string): Promise<z.output<typeof reportSchema>> {
    return await callJson(url + "/v1/tablets", reportSchema, {
      ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
      client: this.o.httpClient, // trusts the servers' TLS certificate
      timeoutMs: 5000,
    });
  }

  /**
   * Merges tablet `leftId` with `rightId`, the tablet right after it:
   * moves the right one to the left one's server when they are apart
   * (and waits, at most 30 s, until it is open there), has that server
   * freeze both and copy them into one new tablet, then swaps the two
   * records for the merged one in one fenced kv transaction (which
   * compares that both still exist), as a split does.
   * @throws EdgeError `not_found`, `bad_request` (not adjacent),
   *   `conflict` (being split or merged), `no_leader`; TablesError
   *   `not_serving` when the tablets are not served now.
   */
  async mergeTablets(leftId: string, rightId: string): Promise<TabletRecord> {
    if (this.#role !== "active") {
      throw new EdgeError("no_leader", "this master is not active");
    }
    if (this.#splitting.has(leftId) || this.#splitting.has(rightId)) {
      throw new EdgeError("conflict", "a tablet is being split or merged");
    }
    this.#splitting.add(leftId);
    this.#splitting.add(rightId);
    const made: string[] = [];
    try {
      let state = await readKvState(this.o.kv);
      let left = state.tablets.find((x) => x.id === leftId);
      let right = state.tablets.find((x) => x.id === rightId);
      if (!left || !right) {
        throw new EdgeError(
          "not_found",
          `no tablet ${left ? rightId : leftId}`,
        );
      }
      if (isRootTablet(left)) {
        throw new EdgeError("bad_request", "the root tablet is never merged");
      }
      if (left.table !== right.table || left.end !== right.start) {
        throw new EdgeError(
          "bad_request",
          `tablet ${rightId} does not start where ${leftId} ends`,
        );
      }
      const server = left.server ? state.servers.get(left.server) : undefined;
      if (!server) {
        throw new TablesError(
          "not_serving",
          503,
          `tablet ${leftId} is not served now; try again`,
        );
      }
      const started = performance.now();
      if (right.server !== server.id) {
        const moved = { ...right, server: server.id };
        await this.fencedWrite([{
          op: "put",
          key: tabletKey(right.table, right.id),
          value: JSON.stringify(moved),
        }]);
        this.#decide(
          "move",
          rightId,
          `moving from ${right.server} to ${server.id} to merge with ${leftId}`,
        );
        this.kick();
      }
      // Both open there (a moved or just assigned tablet opens on the next pass).
      const until = performance.now() + 30_000;
      for (;;) {
        const open = await this.#report(server.url).then(
          (r) => new Set(r.tablets.filter((t) => !t.frozen).map((t) => t.id)),
          () => new Set<string>(),
        );
        if (open.has(leftId) && open.has(rightId)) break;
        if (performance.now() > until) {
          throw new TablesError(
            "not_serving",
            503,
            `tablets ${leftId} and ${rightId} are not both open on ${server.id} after 30 s; try again`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      state = await readKvState(this.o.kv);
      left = state.tablets.find((x) => x.id === leftId);
      right = state.tablets.find((x) => x.id === rightId);
      if (!left || !right || left.server !== right.server) {
        throw new EdgeError("conflict", "the tablets changed meanwhile");
      }
      const id = `${left.table}-${crypto.randomUUID().slice(0, 8)}`;
      made.push(`${left.table}/${id}`);
      await this.#intend(left.table, [id]);
      const r = await callJson(
        `${server.url}/v1/tablets/merge`,
        z.object({ entries: z.number(), tables: z.number().default(0) }),
        {
          body: {
            left: leftId,
            right: rightId,
            token: this.#token,
            into: `${left.table}/${id}`,
          },
          ...(this.o.serverToken ? { token: this.o.serverToken } : {}),
          client: this.o.httpClient,
          timeoutMs: 120_000,
        },
      );
      const merged: TabletRecord = {
        ...left,
        id,
        end: right.end,
        dir: `${left.table}/${id}`,
      };
      const exists = (t: TabletRecord) => ({
        key: tabletKey(t.table, t.id),
        target: "exists",
        op: "==",
        value: 1,
      });
      const ok = await this.fencedWrite(
        [
          { op: "delete", key: tabletKey(left.table, leftId) },
          { op: "delete", key: tabletKey(right.table, rightId) },
          retireOp(left),
          retireOp(right),
          { op: "delete", key: retiredKey(left.table, id) },
          {
            op: "put",
            key: tabletKey(merged.table, id),
            value: JSON.stringify(merged),
          },
        ],
        [exists(left), exists(right)],
      );
      if (!ok) {
        throw new EdgeError("conflict", "a tablet went away during the merge");
      }
      this.#decide(
        "merge",
        id,
        `merged from ${leftId} and ${rightId} (${r.tables} SSTables shared, ${r.entries} entries copied) in ${
          Math.round(performance.now() - started)
        } ms`,
      );
      return merged;
    } finally {
      for (const d of made) this.#pending.delete(d);
      this.#splitting.delete(leftId);
      this.#splitting.delete(rightId);
      this.kick();
    }
  }

  /** Tablet locations of `table` (or every table), from kv (or `state`). */
  async tablets(table?: string, read?: KvState): Promise<TabletView[]> {
    const state = read ?? await readKvState(this.o.kv);
    return state.tablets
      .filter((t) => table === undefined || t.table === table)
      .sort((a, b) =>
        a.table === b.table
          ? Buffer.compare(
            Buffer.from(a.start, "base64"),
            Buffer.from(b.start, "base64"),
          )
          : a.table < b.table
          ? -1
          : 1
      )
      .map((t) => ({
        ...t,
        url: t.server !== null
          ? state.servers.get(t.server)?.url ?? null
          : null,
        ...(this.#sizes.has(t.id) ? { bytes: this.#sizes.get(t.id)! } : {}),
        ...(this.#loads.has(t.id) ? { load: this.#loads.get(t.id)! } : {}),
      }));
  }

  /**
   * The root tablet's location, from kv (any master may answer): where a
   * client starts looking a row up. @throws EdgeError `unavailable` (503,
   * which clients retry) before the first active master created it.
   */
  async root(): Promise<TabletView> {
    const root = (await this.tablets(META_TABLE)).find(isRootTablet);
    if (!root) {
      throw new EdgeError(
        "unavailable",
        "no root tablet yet: the active master creates METADATA on its first pass",
      );
    }
    return root;
  }

  /** Every schema, from kv. */
  async schemas(): Promise<TableSchemaJson[]> {
    return [...(await readKvState(this.o.kv)).schemas.values()];
  }

  /** One table's schema and tablets, from one read of kv. @throws EdgeError `not_found`. */
  async table(
    name: string,
  ): Promise<{ schema: TableSchemaJson; tablets: TabletView[] }> {
    const state = await readKvState(this.o.kv);
    const schema = state.schemas.get(name);
    if (!schema) {
      throw new EdgeError("not_found", `table ${name} does not exist`);
    }
    return { schema, tablets: await this.tablets(name, state) };
  }

  /**
   * Creates a table with tablets split at `splits` (sorted, distinct).
   * @throws EdgeError `conflict` when it exists, `no_leader` when not active.
   */
  async createTable(
    schema: TableSchemaJson,
    splits: Uint8Array[],
  ): Promise<TabletRecord[]> {
    reserved(schema.name);
    const bounds = [new Uint8Array(0), ...splits];
    const tablets: TabletRecord[] = bounds.map((start, i) => {
      const id = `${schema.name}-${crypto.randomUUID().slice(0, 8)}`;
      const end = bounds[i + 1];
      return {
        id,
        table: schema.name,
        start: Buffer.from(start).toString("base64"),
        end: end === undefined ? null : Buffer.from(end).toString("base64"),
        dir: `${schema.name}/${id}`,
        server: null,
      };
    });
    const ok = await this.fencedWrite(
      [
        {
          op: "put",
          key: schemaKey(schema.name),
          value: JSON.stringify(schema),
        },
        ...tablets.map((t) => ({
          op: "put" as const,
          key: tabletKey(t.table, t.id),
          value: JSON.stringify(t),
        })),
      ],
      [{ key: schemaKey(schema.name), target: "exists", op: "==", value: 0 }],
    );
    if (!ok) throw new EdgeError("conflict", `table ${schema.name} exists`);
    this.kick();
    return tablets;
  }

  /** Deletes a table's schema and tablets. @throws EdgeError `not_found`. */
  async deleteTable(name: string): Promise<void> {
    reserved(name);
    const state = await readKvState(this.o.kv);
    if (!state.schemas.has(name)) {
      throw new EdgeError("not_found", `table ${name} does not exist`);
    }
    await this.fencedWrite([
      { op: "delete", key: schemaKey(name) },
      ...state.tablets.filter((t) => t.table === name).flatMap((t) => [
        { op: "delete" as const, key: tabletKey(t.table, t.id) },
        retireOp(t),
      ]),
    ]);
    this.kick();
  }

  /** CRDT range declarations with their replicas' URLs (any master). */
  crdtRanges(): Promise<CrdtRangeView[]> {
    return listCrdtRanges(this.o.kv);
  }

  /** One CRDT range. @throws EdgeError `not_found`. */
  crdtRange(name: string): Promise<CrdtRangeView> {
    return getCrdtRange(this.o.kv, name);
  }

  /** Declares a CRDT range on `replicas` live servers (fenced). */
  createCrdtRange(name: string, replicas: number): Promise<CrdtRangeView> {
    return createCrdtRange(
      this.o.kv,
      (ops, cmp) => this.fencedWrite(ops, cmp),
      name,
      replicas,
    );
  }

  /** Deletes a CRDT range (fenced). @throws EdgeError `not_found`. */
  deleteCrdtRange(name: string): Promise<void> {
    return deleteCrdtRange(
      (ops, cmp) => this.fencedWrite(ops, cmp),
      name,
    );
  }

  /** Moves tablet `id` to server `to`. @throws EdgeError `not_found`. */
  async moveTablet(id: string, to: string): Promise<TabletRecord> {
    const state = await readKvState(this.o.kv);
    const t = state.tablets.find((x) => x.id === id);
    if (!t) throw new EdgeError("not_found", `no tablet ${id}`);
    if (!state.servers.has(to)) {
      throw new EdgeError("bad_request", `no live tablet server ${to}`);
    }
    const moved = { ...t, server: to };
    await this.fencedWrite([{
      op: "put",
      key: tabletKey(t.table, t.id),
      value: JSON.stringify(moved),
    }]);
    this.kick();
    return moved;
  }
}

/** @throws EdgeError `bad_request` for the METADATA table's name. */
function reserved(name: string): void {
  if (name === META_TABLE) {
    throw new EdgeError(
      "bad_request",
      `${META_TABLE} is the tablet map's own table: it cannot be created or deleted`,
    );
  }
}
