import type { ChunkMaster, ChunkMasterOptions } from "./chunk_master.ts";
import { ChunkMaster as Core } from "./chunk_master.ts";
import { GfsError, isGfsError } from "../shared/gfs_error.ts";
import { fetchJson } from "../shared/http_json.ts";
import type { ApplyResult, MasterOp } from "./master_state.ts";
import type { MetadataStore } from "./metadata_store.ts";
import {
  type FileInfo,
  OkSchema,
  type WriteTarget,
} from "../shared/messages.ts";
import type { FileRecord } from "./namespace.ts";
import { PathLocks } from "./path_locks.ts";
import { writeQuorum } from "./placement.ts";
import type { CloneTask } from "./replication_planner.ts";
import { signGrant } from "../shared/write_grant.ts";

export type { MetadataStore } from "./metadata_store.ts";

/** The settings the master's parts read (the parsed configuration). */
export interface MasterSettings {
  chunkBytes: number;
  replication: number;
  maxFileBytes: number;
  deadAfterMs: number;
  leaseMs: number;
  tickMs: number;
  /** What the master sends chunkservers as its token: the cell's peer secret (undefined: auth off). */
  peerToken?: string;
  /** Its fetch client for chunkservers (trusting the cell's TLS certificate). */
  httpClient?: Deno.HttpClient;
  /** "https" when the cell serves TLS (its chunkservers then have no bulk port). */
  scheme?: "http" | "https";
}

/**
 * The master's core as one object: the durable metadata store, the soft
 * state of the current term (locations, leases), path locks, and the
 * operations every route module shares (propose an op, place a new chunk,
 * grant a lease). The route modules (chunkserver protocol, client RPCs,
 * file gateway, status) and the maintenance loop work on it; nothing here
 * knows HTTP routes.
 */
export class MasterService {
  /** Base URL the master serves on (set once it listens). */
  url = "";
  /** When the current term's soft state started (a start or a takeover). */
  takeoverAt = Date.now();
  /** Per-path reader/writer locks. */
  readonly locks = new PathLocks();
  /** Counters for /metrics. */
  readonly stats = {
    heartbeats: 0,
    clones: 0,
    cloneFailures: 0,
    uploads: 0,
    uploadBytes: 0,
    downloads: 0,
    downloadBytes: 0,
    ops: 0,
  };
  readonly #chunkMutex = new Map<number, Promise<unknown>>();
  #core: ChunkMaster;

  /**
   * @param cfg the master's settings; @param store its metadata store;
   * @param coreOptions options of the soft-state core, rebuilt on takeover.
   */
  constructor(
    readonly cfg: MasterSettings,
    readonly store: MetadataStore,
    coreOptions: Partial<ChunkMasterOptions>,
  ) {
    // Locations, leases and server liveness are soft state: a master that
    // takes over (a new Raft term) starts them afresh and re-learns them
    // from heartbeats, exactly as a restarted master does.
    const fresh = () => {
      const core = new Core(store.state, coreOptions);
      // Leases granted before (by this master's previous run, or by the
      // leader it replaces) may still be held: no copy of a chunk that may
      // be mutated under one until they have surely expired.
      core.leases.assumeAllHeldUntil(Date.now() + cfg.leaseMs);
      return core;
    };
    this.#core = fresh();
    store.onTakeover(() => {
      this.#core = fresh();
      this.takeoverAt = Date.now();
    });
  }

  /** The soft state (locations, leases) of the current term. */
  get core(): ChunkMaster {
    return this.#core;
  }

  /** Proposes an op to the metadata store; forgets the chunks it drops. */
  async propose(op: MasterOp): Promise<ApplyResult> {
    this.stats.ops++;
    const r = await this.store.propose(op);
    if (r.t === "abandon" || r.t === "purge") this.core.forgetChunks(r.chunks);
    if (r.t === "allocate" && r.replaced !== null) {
      this.core.forgetChunks([r.replaced]);
    }
    return r;
  }

  /** Runs `fn` after every earlier call for the same chunk. */
  serial<T>(handle: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chunkMutex.get(handle) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#chunkMutex.set(handle, tail);
    tail.then(() => {
      if (this.#chunkMutex.get(handle) === tail) {
        this.#chunkMutex.delete(handle);
      }
    });
    return next;
  }

  /** Tells a chunkserver a chunk's version (and lease); false if it failed. */
  async setVersion(
    server: string,
    handle: number,
    version: number,
    create: boolean,
    leaseUntil?: number,
  ): Promise<boolean> {
    try {
      await fetchJson(`${server}/v1/chunks/${handle}/version`, OkSchema, {
        body: { version, create, leaseUntil },
        timeoutMs: 10_000,
        token: this.cfg.peerToken,
        client: this.cfg.httpClient,
      });
      return true;
    } catch {
      return false;
    }
  }

  /** The write target of a chunk. */
  target(
    handle: number,
    version: number,
    primary: string,
    all: string[],
  ): WriteTarget {
    return {
      handle,
      version,
      primary,
      secondaries: all.filter((u) => u !== primary),
      chunkBytes: this.cfg.chunkBytes,
    };
  }

  /** Creates a new chunk's replicas at version 1 and leases it to the first. */
  async placeNew(
    handle: number,
    replication: number,
    avoid: readonly string[] = [],
  ): Promise<WriteTarget> {
    this.core.beginVersionChange(handle);
    const core = this.core;
    try {
      return await this.#placeNew(handle, replication, avoid);
    } finally {
      core.endVersionChange(handle);
    }
  }

  async #placeNew(
    handle: number,
    replication: number,
    avoid: readonly string[],
  ): Promise<WriteTarget> {
    const now = Date.now();
    const servers = this.core.placeChunk(replication, now, undefined, avoid);
    const leaseUntil = now + this.cfg.leaseMs;
    const oks = await Promise.all(
      servers.map((s, i) =>
        this.setVersion(
          s.url,
          handle,
          1,
          true,
          i === 0 ? leaseUntil : undefined,
        )
      ),
    );
    const good = servers.filter((_, i) => oks[i]);
    servers.forEach((s, i) => {
      if (!oks[i]) this.core.exclude(handle, s.id, 1);
    });
    // The primary is the first server that answered: one that died since
    // its last heartbeat never stalls a write (it then costs one more RPC).
    const primary = good[0];
    if (
      primary === undefined || good.length < writeQuorum(replication) ||
      (primary !== servers[0] &&
        !(await this.setVersion(primary.url, handle, 1, false, leaseUntil)))
    ) {
      for (const s of good) this.core.dropReplica(handle, s.id);
      throw new GfsError(
        "unavailable",
        `could not create chunk ${handle} on enough servers`,
      );
    }
    if (this.#tracksReplicas(handle)) {
      // Record which servers hold version 1 before any append can land:
      // one that took it late is then stale, also for a later master.
      try {
        await this.propose({
          t: "replicas",
          handle,
          version: 1,
          servers: good.map((s) => s.id),
          add: false,
        });
      } catch (e) {
        for (const s of good) this.core.dropReplica(handle, s.id);
        throw isGfsError(e) ? e : new GfsError(
          "unavailable",
          `could not record chunk ${handle}'s replicas: ${String(e)}`,
        );
      }
    }
    for (const s of good) this.core.addLocation(handle, s.id, 1, 0, now);
    this.core.leases.grant(
      handle,
      primary.id,
      1,
      now,
      good.map((s) => s.id),
    );
    return this.target(handle, 1, primary.url, good.map((s) => s.url));
  }

  /**
   * Whether new upload chunks may be placed with a write grant: the cell
   * has a peer secret to sign it and bulk ports to carry it (not TLS).
   */
  get grants(): boolean {
    return this.cfg.peerToken !== undefined && this.cfg.scheme !== "https";
  }

  /**
   * Places a new upload chunk of file `fileId` at version 1 without calling
   * its chunkservers: records the locations and the lease (soft state, as
   * {@link placeNew} does once they answered) and answers the target with
   * a grant the bulk write carries, from which each replica creates the
   * chunk (the first also takes the lease). A server that is down only
   * drops out of the write (a dead primary fails it, and the client
   * allocates again); `complete` keeps the replicas that acknowledged it.
   * Append files keep {@link placeNew}: their replica set is logged before
   * any append lands.
   * @throws GfsError `unavailable` (fewer live servers than a write quorum).
   */
  placeGranted(
    handle: number,
    replication: number,
    fileId: number,
    avoid: readonly string[] = [],
  ): WriteTarget {
    const now = Date.now();
    const servers = this.core.placeChunk(replication, now, undefined, avoid);
    const primary = servers[0]!;
    const expiresAt = now + this.cfg.leaseMs;
    for (const s of servers) this.core.addLocation(handle, s.id, 1, 0, now);
    this.core.leases.grant(
      handle,
      primary.id,
      1,
      now,
      servers.map((s) => s.id),
    );
    const urls = servers.map((s) => s.url);
    return {
      ...this.target(handle, 1, primary.url, urls),
      grant: signGrant(this.cfg.peerToken!, {
        handle,
        version: 1,
        fileId,
        primary: primary.url,
        replicas: urls,
        expiresAt,
      }),
    };
  }

  /**
   * Whether `handle`'s replica set is kept durably: chunks of append files
   * are never sealed, so a short copy at the current version is caught
   * only by the set (an upload chunk's sealed length catches it).
   */
  #tracksReplicas(handle: number): boolean {
    const st = this.store.state;
    const rec = st.chunks.get(handle);
    const path = rec === undefined ? undefined : st.pathOf(rec.fileId);
    return path !== undefined && st.namespace.get(path)?.mode === "append";
  }

  /** A valid lease on `handle`: the current one, or a new one after a version bump. */
  leaseFor(handle: number): Promise<WriteTarget> {
    return this.serial(handle, async () => {
      const now = Date.now();
      const rec = this.store.state.chunks.get(handle);
      if (rec === undefined) {
        throw new GfsError("not_found", `chunk ${handle} not found`);
      }
      const lease = this.core.leases.get(handle, now + 5000);
      if (
        lease && this.core.liveServer(lease.primary) &&
        lease.version === rec.version
      ) {
        const primary = this.core.liveServer(lease.primary)!;
        // The lease's own replica set, dead members included: a mutation
        // acknowledged without one would be missing on it, yet it holds
        // this version. A dead member fails the mutations, and the client
        // then asks for a new lease, which leaves it out.
        const members = lease.replicas.map((id) =>
          this.core.servers.get(id)?.url
        );
        // Re-send the lease (idempotent): a primary that lost it, e.g. by a
        // restart, would otherwise refuse every mutation until it expired.
        if (
          await this.setVersion(
            primary.url,
            handle,
            rec.version,
            false,
            lease.expiresAt,
          )
        ) {
          return this.target(
            handle,
            rec.version,
            primary.url,
            members.filter((u): u is string => u !== undefined),
          );
        }
        this.core.leases.revoke(handle);
      }
      this.core.beginVersionChange(handle);
      const core = this.core;
      try {
        return await this.#newLease(handle, now);
      } finally {
        core.endVersionChange(handle);
      }
    });
  }

  /** A new lease on `handle` at the next version (see {@link leaseFor}). */
  async #newLease(handle: number, now: number): Promise<WriteTarget> {
    const rec = this.store.state.chunks.get(handle);
    if (rec === undefined) {
      throw new GfsError("not_found", `chunk ${handle} not found`);
    }
    const replicas = this.core.liveReplicas(handle);
    if (replicas.length === 0) {
      throw new GfsError(
        "unavailable",
        `chunk ${handle} has no live replica`,
      );
    }
    const version = rec.version + 1;
    const oks = await Promise.all(
      replicas.map((s) => this.setVersion(s.url, handle, version, false)),
    );
    const good = replicas.filter((_, i) => oks[i]);
    replicas.forEach((s, i) => {
      if (!oks[i]) this.core.exclude(handle, s.id, version);
    });
    if (good.length === 0) {
      throw new GfsError(
        "unavailable",
        `no replica of chunk ${handle} took version ${version}`,
      );
    }
    // The servers that took the version are its replica set, durably:
    // one that takes it late (its RPC timed out) missed what is appended
    // without it, and stays stale for this master and any later one.
    await this.propose({
      t: "bumpVersion",
      handle,
      version,
      replicas: good.map((s) => s.id),
    });
    const primary = good[0]!;
    const expiresAt = Date.now() + this.cfg.leaseMs;
    if (
      !(await this.setVersion(primary.url, handle, version, false, expiresAt))
    ) {
      throw new GfsError(
        "unavailable",
        `primary for chunk ${handle} did not take its lease`,
      );
    }
    for (const s of good) {
      const l = this.core.locations.get(handle)?.get(s.id);
      this.core.addLocation(
        handle,
        s.id,
        version,
        l?.length ?? 0,
        l?.addedAt ?? now,
      );
    }
    this.core.leases.grant(
      handle,
      primary.id,
      version,
      Date.now(),
      good.map((s) => s.id),
    );
    return this.target(handle, version, primary.url, good.map((s) => s.url));
  }

  /** A clone or move finished (or failed): account for it. */
  async cloneFinished(
    task: CloneTask,
    ok: boolean,
    version: number,
    length: number,
    now: number,
  ): Promise<void> {
    const core = this.core;
    const { admit, move } = core.cloneDone(task, ok, version, length, now);
    if (!admit) return;
    // A copy of a chunk with a tracked replica set serves only once the
    // set durably names it (else the next master would judge it stale).
    try {
      await this.propose({
        t: "replicas",
        handle: task.handle,
        version,
        servers: [task.target],
        add: true,
      });
    } catch {
      core.cloneDone(task, false, version, length, Date.now());
      core.dropReplica(task.handle, task.target);
      return;
    }
    core.cloneAdmitted(task, version, length, Date.now(), move);
  }

  /** A file's public metadata. */
  info(path: string, f: FileRecord): FileInfo {
    return {
      path,
      length: this.core.fileLength(f),
      mode: f.mode,
      replication: f.replication,
      chunks: f.chunks.length,
      createdAt: f.createdAt,
      mtime: f.mtime,
    };
  }

  /** Chunkserver ids by URL. */
  urlToId(): Map<string, string> {
    return new Map([...this.core.servers.values()].map((s) => [s.url, s.id]));
  }
}
