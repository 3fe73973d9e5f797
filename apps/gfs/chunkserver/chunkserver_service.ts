import { GfsError } from "../shared/gfs_error.ts";
import { MasterEndpoints } from "../shared/http_json.ts";
import { OkSchema } from "../shared/messages.ts";
import type { ChunkStore } from "./chunk_store.ts";
import { MutationOrder } from "./mutation_order.ts";
import { PeerRegistry } from "./peer_registry.ts";
import { RecordAppender } from "./record_appender.ts";
import { Secondaries } from "./secondaries.ts";
import { checkGrant, type WriteGrant } from "../shared/write_grant.ts";

/** The settings the chunkserver's parts read (the parsed configuration). */
export interface ChunkserverSettings {
  /** Master base URL, or every master's, comma-separated. */
  master: string;
  rack: string;
  capacityBytes: number;
  /** The cell's chunk size (settled at start). */
  chunkBytes: number;
  heartbeatMs: number;
  scrubPauseMs: number;
  /** A scrub pass starts at most this often, ms (chunkserver.ts). */
  scrubEveryMs?: number;
}

/** A chunk lease as this server (its primary) was told by the master. */
export interface ChunkLease {
  version: number;
  /** Wall-clock ms, the master's clock (as GFS: leases assume bounded skew). */
  expiresAt: number;
}

/** Pushed data waiting to be applied, by data id. */
interface Staged {
  data: Uint8Array;
  /** When it arrived (for the heartbeat's expiry of forgotten pushes). */
  at: number;
}

/**
 * The chunkserver's core as one object: the chunk store, the leases it
 * holds as a primary, pushed data waiting to be applied, the per-chunk
 * serial queue, the mutation numbering, record-append group commits, its
 * calls to secondaries and masters, and its peers (the SSRF guard). The
 * route modules (client data, peer data, master commands, status), the
 * heartbeat and the scrubber work on it; nothing here knows HTTP routes.
 */
export class ChunkserverService {
  /** Base URL it serves on (set once it listens). */
  url = "";
  /** Its data port (set once it listens; null: none, clients use HTTP). */
  dataPort: number | null = null;
  /** Its bulk port (set once it listens; null: none, clients use HTTP). */
  bulkPort: number | null = null;
  /** Counters for /metrics (`inflight` is the load sent in heartbeats). */
  readonly stats = {
    reads: 0,
    readBytes: 0,
    writes: 0,
    writeBytes: 0,
    corrupt: 0,
    inflight: 0,
    /** Calls answered on the data port (reads, appends, forwarded batches). */
    dataPortCalls: 0,
    /** Record-append batches applied here as a secondary, by the data port. */
    dataPortApplies: 0,
    /** Exchanges on the bulk port (large reads, chunk writes, forwards). */
    bulkCalls: 0,
    /** Chunks created here from a master's write grant (not its create call). */
    grantedCreates: 0,
  };
  /** Pushed data by id, until applied (or forgotten after a while). */
  readonly staging = new Map<string, Staged>();
  /** Leases held as a primary, per chunk handle. */
  readonly leases = new Map<number, ChunkLease>();
  /** When each leased chunk was last mutated (the heartbeat extends only those). */
  readonly lastMutation = new Map<number, number>();
  /** Serial numbers of mutations per chunk version. */
  readonly order = new MutationOrder();
  /** Calls to secondaries. */
  readonly secondaries: Secondaries;
  /** Record appends, group-committed per chunk. */
  readonly appends: RecordAppender;
  /** The masters, for heartbeats and corruption reports (failover per call). */
  readonly masters: MasterEndpoints;
  /** Chunkservers this one may contact. */
  readonly peers: PeerRegistry;
  /** Aborted on close: ends calls still retrying unreachable masters. */
  readonly closing = new AbortController();
  readonly #mutex = new Map<number, Promise<unknown>>();

  /**
   * @param cfg settings; @param id this server's stable id; @param store its chunks;
   * @param peerToken the cell's peer secret (undefined: auth off);
   * @param client fetch client (the cell's TLS roots).
   */
  constructor(
    readonly cfg: ChunkserverSettings,
    readonly id: string,
    readonly store: ChunkStore,
    readonly peerToken: string | undefined,
    readonly client: Deno.HttpClient | undefined,
  ) {
    // Heartbeats keep coming anyway: a short failover window per call.
    this.masters = new MasterEndpoints(
      cfg.master,
      Math.max(1000, cfg.heartbeatMs * 3),
      peerToken,
      client,
    );
    this.peers = new PeerRegistry(
      new MasterEndpoints(cfg.master, 2000, peerToken, client),
      this.closing.signal,
    );
    this.secondaries = new Secondaries(peerToken, client);
    this.appends = new RecordAppender(this);
  }

  /**
   * Runs `fn` after every earlier call for the same chunk has settled: one
   * change of a chunk's version, content or existence at a time.
   */
  serial<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#mutex.get(handle) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#mutex.set(handle, tail);
    tail.then(() => {
      if (this.#mutex.get(handle) === tail) this.#mutex.delete(handle);
    });
    return next;
  }

  /**
   * Pushed data by id.
   * @throws GfsError `not_found` when it never came or was forgotten.
   */
  staged(dataId: string): Uint8Array {
    const s = this.staging.get(dataId);
    if (s === undefined) {
      throw new GfsError(
        "not_found",
        `no pushed data ${dataId}; push it again`,
      );
    }
    return s.data;
  }

  /**
   * Checks that this server holds a valid lease on `handle` at `version`
   * and notes the mutation (so the heartbeat asks to extend the lease).
   * @throws GfsError `no_lease`.
   */
  checkLease(handle: number, version: number): void {
    const l = this.leases.get(handle);
    if (l === undefined || l.expiresAt <= Date.now() || l.version !== version) {
      throw new GfsError(
        "no_lease",
        `no valid lease on chunk ${handle} v${version} at ${this.id} (${
          l === undefined
            ? "none"
            : `v${l.version}, ${l.expiresAt - Date.now()} ms left`
        })`,
      );
    }
    this.lastMutation.set(handle, Date.now());
  }

  /**
   * Checks the master's grant a bulk write carries (see
   * `shared/write_grant.ts`) against this write and this server, before
   * its bytes are taken.
   * @throws GfsError `forbidden` (forged, for another chunk or server, or
   *   no peer secret to check it with), `no_lease` (expired).
   */
  checkGrant(
    g: WriteGrant,
    m: { handle: number; version: number; chain: string[] },
    primary: boolean,
  ): void {
    if (this.peerToken === undefined) {
      throw new GfsError(
        "forbidden",
        "this chunkserver has no peer secret to check a write grant with (auth is off)",
      );
    }
    checkGrant(this.peerToken, g, {
      handle: m.handle,
      version: m.version,
      self: this.url,
      chain: m.chain,
      primary,
      now: Date.now(),
      held: this.store.meta(m.handle)?.version === g.version,
    });
  }

  /**
   * Acts on a checked grant: creates its chunk here at the granted
   * version if this server does not hold it yet (in memory until the
   * write's metadata record, as the master's create does), and on the
   * primary takes the lease it grants (unless a newer one is held). A
   * replica already at a newer version keeps it, and the write then fails
   * as `stale`.
   */
  async admitGrant(g: WriteGrant, primary: boolean): Promise<void> {
    if (this.store.meta(g.handle) === undefined) {
      await this.serial(g.handle, async () => {
        if (this.store.meta(g.handle) !== undefined) return;
        await this.store.setVersion(g.handle, g.version, true);
        this.stats.grantedCreates++;
      });
    }
    if (!primary) return;
    const l = this.leases.get(g.handle);
    if (
      l === undefined || l.version < g.version ||
      (l.version === g.version && l.expiresAt < g.expiresAt)
    ) {
      this.leases.set(g.handle, {
        version: g.version,
        expiresAt: g.expiresAt,
      });
    }
  }

  /**
   * Applies a batch its primary forwarded (`data` at `offset`, as mutation
   * `seq` of the chunk's version) in its number's turn: the HTTP route and
   * the data port both end here.
   * @returns the chunk's length after it.
   */
  async applyBytes(
    handle: number,
    q: { version: number; offset: number; seq?: number | null },
    data: Uint8Array,
  ): Promise<number> {
    const { order, store } = this;
    const seq = q.seq ?? undefined;
    if (seq !== undefined) await order.waitTurn(handle, q.version, seq);
    let applied: Promise<number>;
    try {
      applied = store.write(handle, q.version, q.offset, data);
    } finally {
      // Queued in the store in number order: the next may queue now.
      if (seq !== undefined) order.markApplied(handle, q.version, seq);
    }
    return await applied;
  }

  /** A replica failed its checksums: delete it here and tell the master. */
  async reportCorrupt(handle: number): Promise<void> {
    this.stats.corrupt++;
    await this.store.delete(handle).catch(() => {});
    await this.masters.call(`/v1/report-corrupt`, OkSchema, {
      body: { id: this.id, handle },
      timeoutMs: 5000,
    }).catch(() => {});
  }

  /** Drops the soft state of a chunk that is being deleted (lease, numbering, appender). */
  forget(handle: number): void {
    this.leases.delete(handle);
    this.order.forget(handle);
    this.appends.forget(handle);
  }
}
