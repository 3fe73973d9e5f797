import { GfsError } from "../shared/gfs_error.ts";
import { parseTrashPath } from "../shared/gfs_path.ts";
import { LeaseTable } from "./leases.ts";
import type { MasterOp, MasterState } from "./master_state.ts";
import type { FileRecord } from "./namespace.ts";
import {
  choosePlacement,
  DEFAULT_PLACEMENT,
  type ServerLoad,
} from "./placement.ts";
import { type MoveTask, planRebalance } from "./rebalancer.ts";
import {
  type ChunkReplicas,
  type CloneTask,
  planReplication,
} from "./replication_planner.ts";

/** Tunables of the master core (all times in ms, sizes in bytes). */
export interface ChunkMasterOptions {
  /** Chunk size, bytes. */
  chunkBytes: number;
  /** A server silent this long is dead. */
  deadAfterMs: number;
  /** Lease length. */
  leaseMs: number;
  /** Trashed files are purged this long after deletion (undelete until then). */
  gcDelayMs: number;
  /** A pending upload untouched this long is abandoned and collected. */
  pendingTimeoutMs: number;
  /** Window of "recent" chunk creations per server. */
  recentWindowMs: number;
  /** Creations per server per window before placement avoids it. */
  maxRecentCreations: number;
  /** Concurrent clones per server. */
  maxClonesPerServer: number;
  /** New clones per tick. */
  maxNewClones: number;
  /** Rebalancing: over-full threshold over the mean fraction used. */
  rebalanceThreshold: number;
  /** Rebalancing moves per tick (0 disables rebalancing). */
  maxMovesPerTick: number;
  /** A location missing from a report is kept this long after it was added. */
  locationGraceMs: number;
}

/** Defaults of {@link ChunkMasterOptions}. */
export const DEFAULT_MASTER_OPTIONS: ChunkMasterOptions = {
  chunkBytes: 64 * 2 ** 20,
  deadAfterMs: 10_000,
  leaseMs: 60_000,
  gcDelayMs: 3 * 24 * 3600_000,
  pendingTimeoutMs: 10 * 60_000,
  recentWindowMs: 60_000,
  maxRecentCreations: DEFAULT_PLACEMENT.maxRecentCreations,
  maxClonesPerServer: 2,
  maxNewClones: 32,
  rebalanceThreshold: 0.1,
  maxMovesPerTick: 2,
  locationGraceMs: 5_000,
};

/** A chunkserver as the master sees it (soft state). */
export interface ServerInfo {
  /** Stable id. */
  id: string;
  /** Base URL of its HTTP API. */
  url: string;
  /** Rack name, "" if none. */
  rack: string;
  /** Capacity for chunks, bytes. */
  capacityBytes: number;
  /** Used bytes as last reported. */
  usedBytes: number;
  /** Load as last reported (requests in flight). */
  load: number;
  /** Last heartbeat, ms. */
  lastHeartbeat: number;
  /** False once silent past the timeout (until it heartbeats again). */
  alive: boolean;
  /** Times of recent chunk creations placed on it. */
  creations: number[];
  /** Bytes placed on it recently (not yet surely in `usedBytes`). */
  reservedBytes: number;
  /** The placements behind `reservedBytes`: time and bytes. */
  reservations: { at: number; bytes: number }[];
}

/** One replica location (soft state). */
export interface Location {
  /** Version the replica reported. */
  version: number;
  /** Length it reported, bytes. */
  length: number;
  /** When the master learned of it, ms. */
  addedAt: number;
}

/** A heartbeat from a chunkserver. */
export interface HeartbeatReport {
  /** The chunkserver's stable id. */
  id: string;
  /** Its base URL. */
  url: string;
  /** Its rack ("" = racks not configured). */
  rack: string;
  /** Capacity offered for chunks, bytes. */
  capacityBytes: number;
  /** Bytes its chunks take. */
  usedBytes: number;
  /** Requests it is serving now. */
  load: number;
  /** Every chunk it holds: [handle, version, length]. */
  chunks: [number, number, number][];
  /** Chunks it is primary for and still mutating: please extend. */
  extend: number[];
}

/** The master's answer to a heartbeat. */
export interface HeartbeatReply {
  /** Chunks to delete (orphans, stale or surplus replicas). */
  delete: number[];
  /** Leases extended. */
  leases: { handle: number; version: number; expiresAt: number }[];
}

/** A readable chunk of a file. */
export interface ChunkLocation {
  /** The chunk's handle. */
  handle: number;
  /** Its current version. */
  version: number;
  /** Bytes in the chunk. */
  length: number;
  /** Replica URLs, least loaded first. */
  replicas: string[];
}

/** What a periodic {@link ChunkMaster.tick} wants done. */
export interface TickPlan {
  /** Servers declared dead now. */
  dead: string[];
  /** Durable operations to propose (GC). */
  ops: MasterOp[];
  /** Clones to run (already counted as in flight). */
  clones: CloneTask[];
  /** Rebalancing moves (their clones are counted as in flight). */
  moves: MoveTask[];
}

/**
 * The master's core: durable {@link MasterState} plus soft state — live
 * servers, replica locations, leases, clones in flight, deletions owed to
 * servers. Pure: time comes in as `now`, durable changes go out as
 * {@link MasterOp}s for the caller to log and apply; RPCs are the caller's.
 */
export class ChunkMaster {
  /** Effective options (defaults filled in). */
  readonly options: ChunkMasterOptions;
  /** Live chunkservers, by id. */
  readonly servers: Map<string, ServerInfo> = new Map<string, ServerInfo>();
  /** Replica locations learned from heartbeats: handle → server id → location. */
  readonly locations: Map<number, Map<string, Location>> = new Map<
    number,
    Map<string, Location>
  >();
  /** Primary leases by chunk handle. */
  readonly leases: LeaseTable;
  /** Clones in flight (`startedAt` in ms; `move` = part of a rebalancing move). */
  readonly inflight: (CloneTask & { startedAt: number; move: boolean })[] = [];
  readonly #owedDeletes = new Map<string, Set<number>>();

  /**
   * Creates the core over durable `state`; missing options take
   * {@link DEFAULT_MASTER_OPTIONS}.
   */
  constructor(
    /** The durable metadata. */
    readonly state: MasterState,
    options: Partial<ChunkMasterOptions> = {},
  ) {
    this.options = { ...DEFAULT_MASTER_OPTIONS, ...options };
    this.leases = new LeaseTable(this.options.leaseMs);
  }

  /** Live server by id, or undefined. */
  liveServer(id: string): ServerInfo | undefined {
    const s = this.servers.get(id);
    return s?.alive ? s : undefined;
  }

  /**
   * Takes a heartbeat: updates the server, reconciles its chunk report
   * with the master's state (orphans, stale versions and wrong lengths are
   * deleted; a newer version is adopted, as in GFS), and extends leases.
   * @returns the reply and any operations to log (version adoptions).
   */
  /** Servers left out of a chunk version they did not confirm. */
  readonly #excluded = new Map<number, Map<string, number>>();
  /** Chunks whose version is being changed now (placement, lease grant). */
  readonly #changing = new Map<number, number>();

  /**
   * Marks `handle` as having its version changed (a new chunk placed, or a
   * version bump for a new lease) until {@link endVersionChange}: its
   * replicas then report versions the master has not recorded yet, which
   * are neither adopted nor judged, and it is not re-replicated.
   */
  beginVersionChange(handle: number): void {
    this.#changing.set(handle, (this.#changing.get(handle) ?? 0) + 1);
  }

  /** Ends a {@link beginVersionChange}. */
  endVersionChange(handle: number): void {
    const n = (this.#changing.get(handle) ?? 1) - 1;
    if (n > 0) this.#changing.set(handle, n);
    else this.#changing.delete(handle);
  }

  /**
   * Whether `handle` may be mutated at `now`: a lease on it may be held
   * (granted, even if revoked since, or by an earlier master while the
   * chunk is not sealed) or is being granted. A copy made now could miss
   * mutations acknowledged after it.
   */
  mayMutate(handle: number, now: number): boolean {
    if (this.#changing.has(handle)) return true;
    if (this.leases.get(handle, now) !== undefined) return true;
    const rec = this.state.chunks.get(handle);
    return rec !== undefined && rec.length === null &&
      this.leases.mayBeHeld(handle, now);
  }

  /**
   * Records that `serverId` did not confirm `version` of `handle` (it was
   * left out of the lease): a later report of that version or older from
   * it is stale, even if it took the version late.
   */
  exclude(handle: number, serverId: string, version: number): void {
    let m = this.#excluded.get(handle);
    if (m === undefined) this.#excluded.set(handle, m = new Map());
    m.set(serverId, Math.max(m.get(serverId) ?? 0, version));
    this.#dropLocation(handle, serverId);
  }

  heartbeat(
    r: HeartbeatReport,
    now: number,
  ): { reply: HeartbeatReply; ops: MasterOp[] } {
    const prev = this.servers.get(r.id);
    const s: ServerInfo = {
      id: r.id,
      url: r.url,
      rack: r.rack,
      capacityBytes: r.capacityBytes,
      usedBytes: r.usedBytes,
      load: r.load,
      lastHeartbeat: now,
      alive: true,
      creations: (prev?.creations ?? []).filter((t) =>
        t > now - this.options.recentWindowMs
      ),
      reservedBytes: 0,
      // A placement made before the previous report has landed in this one.
      reservations: (prev?.reservations ?? []).filter((x) =>
        x.at >= (prev?.lastHeartbeat ?? 0)
      ),
    };
    s.reservedBytes = s.reservations.reduce((n, x) => n + x.bytes, 0);
    this.servers.set(r.id, s);
    const del = new Set(this.#owedDeletes.get(r.id) ?? []);
    this.#owedDeletes.delete(r.id);
    const ops: MasterOp[] = [];
    const reported = new Set<number>();
    // Copies being made onto this server: its report of one may come
    // between the clone's version and its data, or before the copy joins
    // the replica set; judged now, it would be deleted once complete.
    const cloning = new Set(
      this.inflight.filter((t) => t.target === r.id).map((t) => t.handle),
    );
    for (const [handle, version, length] of r.chunks) {
      reported.add(handle);
      if (del.has(handle) || cloning.has(handle)) continue;
      const rec = this.state.chunks.get(handle);
      if (rec === undefined) {
        del.add(handle); // orphan: its file is gone
        continue;
      }
      const changing = this.#changing.has(handle);
      if (version > rec.version && changing) continue; // not recorded yet
      const excluded = this.#excluded.get(handle)?.get(r.id);
      if (excluded !== undefined && version <= excluded) {
        // It never confirmed that version (a timeout, say) but may have
        // taken it late: it missed the mutations made without it.
        del.add(handle);
        this.#dropLocation(handle, r.id);
        continue;
      }
      if (version < rec.version) {
        del.add(handle); // stale: missed a mutation
        this.#dropLocation(handle, r.id);
        continue;
      }
      if (version > rec.version) {
        // The master failed after telling replicas a new version (before it
        // recorded it, so before any lease at it): adopt it.
        ops.push({ t: "bumpVersion", handle, version });
      } else if (
        rec.replicas != null && !rec.replicas.includes(r.id)
      ) {
        // Not one of the replicas this version was made on or admitted to:
        // it took the version late (or a copy was made while the chunk was
        // mutated) and misses mutations of the version. Left alone while
        // the version is being changed (the set is not recorded yet).
        if (changing) continue;
        del.add(handle);
        this.#dropLocation(handle, r.id);
        continue;
      } else if (rec.length !== null && length !== rec.length) {
        del.add(handle); // incomplete copy of a sealed chunk
        this.#dropLocation(handle, r.id);
        continue;
      }
      const locs = this.#locs(handle);
      const old = locs.get(r.id);
      locs.set(r.id, { version, length, addedAt: old?.addedAt ?? now });
    }
    // Replicas it no longer reports are gone (unless just added: the report
    // may predate the creation).
    for (const [handle, locs] of this.locations) {
      const l = locs.get(r.id);
      if (
        l !== undefined && !reported.has(handle) &&
        l.addedAt < now - this.options.locationGraceMs
      ) this.#dropLocation(handle, r.id);
    }
    const leases: HeartbeatReply["leases"] = [];
    for (const h of r.extend) {
      const l = this.leases.extend(h, r.id, now);
      if (l) {
        leases.push({
          handle: h,
          version: l.version,
          expiresAt: l.expiresAt,
        });
      }
    }
    return { reply: { delete: [...del], leases }, ops };
  }

  /**
   * Chooses servers for a new chunk of a file with `replication` replicas
   * and reserves the space. Servers whose URL is in `avoid` (a client's
   * write through them just failed: a server cut off is declared dead only
   * after `deadAfterMs`) are left out while enough others fit, else they
   * fill the set last, never ahead of another server (so never the
   * primary while another fits).
   * @throws GfsError `unavailable` when fewer than a write quorum fit.
   */
  placeChunk(
    replication: number,
    now: number,
    bytes?: number,
    avoid: readonly string[] = [],
  ): ServerInfo[] {
    const loads = this.#loads(now);
    const options = {
      chunkBytes: bytes ?? this.options.chunkBytes,
      maxRecentCreations: this.options.maxRecentCreations,
      loadWeight: DEFAULT_PLACEMENT.loadWeight,
    };
    const avoided = new Set<string>();
    for (const s of this.servers.values()) {
      if (avoid.includes(s.url)) avoided.add(s.id);
    }
    let ids = choosePlacement(loads, replication, options, avoided);
    if (ids.length < replication && avoided.size > 0) {
      const racks = ids.map((id) => this.servers.get(id)!.rack);
      const rest = choosePlacement(
        loads,
        replication - ids.length,
        options,
        new Set(ids),
        new Set(racks.filter((r) => r !== "")),
      );
      ids = [...ids, ...rest];
    }
    if (ids.length < Math.floor(replication / 2) + 1) {
      throw new GfsError(
        "unavailable",
        `only ${ids.length} chunkservers can take a chunk; need ${
          Math.floor(replication / 2) + 1
        }`,
      );
    }
    return ids.map((id) => {
      const s = this.servers.get(id)!;
      s.creations.push(now);
      s.reservedBytes += bytes ?? this.options.chunkBytes;
      s.reservations.push({ at: now, bytes: bytes ?? this.options.chunkBytes });
      return s;
    });
  }

  /** Records that `server` holds `handle` at `version`. */
  addLocation(
    handle: number,
    server: string,
    version: number,
    length: number,
    now: number,
  ): void {
    this.#locs(handle).set(server, { version, length, addedAt: now });
    // A deletion owed from an earlier (corrupt or surplus) copy must not
    // remove this new one.
    this.#owedDeletes.get(server)?.delete(handle);
  }

  /** Forgets one replica and asks its server to delete it. */
  dropReplica(handle: number, server: string): void {
    this.#dropLocation(handle, server);
    this.#owe(server, handle);
  }

  /**
   * Forgets chunks that left the state (abandoned, purged, replaced) and
   * asks their holders to delete them.
   */
  forgetChunks(handles: readonly number[]): void {
    for (const h of handles) {
      for (const server of this.locations.get(h)?.keys() ?? []) {
        this.#owe(server, h);
      }
      this.locations.delete(h);
      this.leases.forget(h);
    }
  }

  /** Live servers holding the current version of `handle`, least loaded first. */
  liveReplicas(handle: number): ServerInfo[] {
    const rec = this.state.chunks.get(handle);
    const locs = this.locations.get(handle);
    if (rec === undefined || locs === undefined) return [];
    const out: ServerInfo[] = [];
    for (const [id, l] of locs) {
      const s = this.servers.get(id);
      if (s?.alive && l.version === rec.version) out.push(s);
    }
    return out.sort((a, b) => a.load - b.load || (a.id < b.id ? -1 : 1));
  }

  /** Length of a chunk: sealed length, else the longest live replica's. */
  chunkLength(handle: number): number {
    const rec = this.state.chunks.get(handle);
    if (rec?.length != null) return rec.length;
    let max = 0;
    for (const s of this.liveReplicas(handle)) {
      max = Math.max(max, this.locations.get(handle)!.get(s.id)!.length);
    }
    return max;
  }

  /** Length of a file, bytes. */
  fileLength(f: FileRecord): number {
    if (f.mode === "upload" && f.state === "complete") return f.length;
    return f.chunks.reduce((n, h) => n + this.chunkLength(h), 0);
  }

  /**
   * Where to read a visible file.
   * @throws GfsError `not_found` when it does not exist or is pending.
   */
  locate(path: string): { file: FileRecord; chunks: ChunkLocation[] } {
    const file = this.state.visibleFile(path);
    if (file === undefined) {
      throw new GfsError("not_found", `${path} not found`);
    }
    const chunks = file.chunks.map((handle) => ({
      handle,
      version: this.state.chunks.get(handle)!.version,
      length: this.chunkLength(handle),
      replicas: this.liveReplicas(handle).map((s) => s.url),
    }));
    return { file, chunks };
  }

  /** Records a replica as corrupt: forgotten and deleted, to be re-replicated. */
  reportCorrupt(server: string, handle: number): void {
    this.dropReplica(handle, server);
    if (
      this.leases.get(handle, Number.MAX_SAFE_INTEGER - 1)?.primary === server
    ) {
      this.leases.revoke(handle);
    }
  }

  /**
   * A clone or move finished (or failed): account for it.
   * @returns `admit` when the copy must first join the chunk version's
   *   durable replica set: the caller logs a `replicas` op, then calls
   *   {@link cloneAdmitted} with `move` (or, if that failed, this again
   *   with `ok` false); the clone counts as in flight until then.
   */
  cloneDone(
    task: CloneTask,
    ok: boolean,
    version: number,
    length: number,
    now: number,
  ): { admit: boolean; move: boolean } {
    const i = this.inflight.findIndex((t) =>
      t.handle === task.handle && t.target === task.target
    );
    const move = i >= 0 && this.inflight[i]!.move;
    const rec = this.state.chunks.get(task.handle);
    if (
      ok && rec?.version === version && !this.mayMutate(task.handle, now) &&
      rec.replicas != null && !rec.replicas.includes(task.target)
    ) return { admit: true, move };
    if (i >= 0) this.inflight.splice(i, 1);
    if (!ok) return { admit: false, move };
    if (
      rec === undefined || rec.version !== version ||
      this.mayMutate(task.handle, now)
    ) {
      // Deleted or bumped meanwhile, or a lease may be held again: the
      // copy may miss mutations.
      this.#owe(task.target, task.handle);
      return { admit: false, move };
    }
    this.cloneAdmitted(task, version, length, now, move);
    return { admit: false, move };
  }

  /** Lists a finished clone (admitted to the replica set if tracked). */
  cloneAdmitted(
    task: CloneTask,
    version: number,
    length: number,
    now: number,
    move = false,
  ): void {
    const i = this.inflight.findIndex((t) =>
      t.handle === task.handle && t.target === task.target
    );
    if (i >= 0) this.inflight.splice(i, 1);
    const rec = this.state.chunks.get(task.handle);
    if (rec === undefined || rec.version !== version) {
      this.#owe(task.target, task.handle);
      return;
    }
    // A fresh copy of the current version: an exclusion of the target
    // from this version (its old copy missed mutations) is void now, or its
    // next report would have the copy deleted, and cloned again, forever.
    this.#excluded.get(task.handle)?.delete(task.target);
    this.addLocation(task.handle, task.target, version, length, now);
    if (move) this.dropReplica(task.handle, task.source);
  }

  /** Chunk replication health over live (non-pending) files. */
  health(): {
    chunks: number;
    underReplicated: number;
    lost: number;
    liveServers: number;
    deadServers: number;
  } {
    let under = 0, lost = 0, chunks = 0;
    for (const c of this.#replicaView()) {
      chunks++;
      if (c.holders.length === 0) lost++;
      else if (c.holders.length < c.goal) under++;
    }
    let live = 0, dead = 0;
    for (const s of this.servers.values()) s.alive ? live++ : dead++;
    return {
      chunks,
      underReplicated: under,
      lost,
      liveServers: live,
      deadServers: dead,
    };
  }

  /**
   * Periodic work: declares silent servers dead (dropping their replicas
   * and leases), collects garbage (purges trash past the delay, abandons
   * stale pending uploads), plans re-replication and rebalancing, and
   * times out clones stuck in flight.
   */
  tick(now: number): TickPlan {
    this.leases.prune(now);
    const dead: string[] = [];
    for (const s of this.servers.values()) {
      if (s.alive && s.lastHeartbeat < now - this.options.deadAfterMs) {
        s.alive = false;
        dead.push(s.id);
        this.leases.revokeServer(s.id);
        for (const [h, locs] of this.locations) {
          if (locs.delete(s.id) && locs.size === 0) this.locations.delete(h);
        }
      }
    }
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const t = this.inflight[i]!;
      const stuck = t.startedAt < now - 5 * 60_000;
      if (stuck || !this.liveServer(t.target)) this.inflight.splice(i, 1);
    }
    const ops: MasterOp[] = [];
    for (const [path, f] of this.state.namespace.entries()) {
      const trash = parseTrashPath(path);
      if (trash && trash.deletedAtMs + this.options.gcDelayMs <= now) {
        ops.push({ t: "purge", path });
      } else if (
        f.state === "pending" && f.mtime + this.options.pendingTimeoutMs <= now
      ) {
        ops.push({ t: "abandon", path, fileId: f.id });
      }
    }
    const loads = this.#loads(now);
    // A chunk that may be mutated (record appends under a lease, one
    // being granted, or one revoked here that its primary still holds):
    // a copy made now would miss the mutations after it. It is
    // re-replicated once no lease can be held (the appenders moved on to
    // the next chunk).
    const view = this.#replicaView().filter((c) =>
      !this.mayMutate(c.handle, now)
    );
    const plan = planReplication(view, loads, this.inflight, {
      chunkBytes: this.options.chunkBytes,
      maxRecentCreations: Number.MAX_SAFE_INTEGER,
      loadWeight: DEFAULT_PLACEMENT.loadWeight,
      maxClonesPerServer: this.options.maxClonesPerServer,
      maxNewClones: this.options.maxNewClones,
    });
    for (const d of plan.deletions) this.dropReplica(d.handle, d.server);
    for (const c of plan.clones) {
      this.inflight.push({ ...c, startedAt: now, move: false });
    }
    let moves: MoveTask[] = [];
    if (
      this.options.maxMovesPerTick > 0 && plan.clones.length === 0 &&
      this.inflight.length === 0 && plan.underReplicated === 0
    ) {
      const holdings = new Map<number, { holders: string[]; bytes: number }>();
      for (const c of view) {
        if (c.holders.length >= c.goal) {
          holdings.set(c.handle, {
            holders: [...c.holders],
            bytes: Math.max(1, this.chunkLength(c.handle)),
          });
        }
      }
      moves = planRebalance(loads, holdings, {
        threshold: this.options.rebalanceThreshold,
        maxMoves: this.options.maxMovesPerTick,
      });
      for (const m of moves) {
        this.inflight.push({
          handle: m.handle,
          source: m.from,
          target: m.to,
          startedAt: now,
          move: true,
        });
      }
    }
    return { dead, ops, clones: plan.clones, moves };
  }

  #replicaView(): ChunkReplicas[] {
    const out: ChunkReplicas[] = [];
    for (const [, f] of this.state.namespace.entries()) {
      if (f.state === "pending") continue;
      for (const h of f.chunks) {
        out.push({
          handle: h,
          goal: f.replication,
          holders: this.liveReplicas(h).map((s) => s.id),
          bytes: Math.max(1, this.chunkLength(h)),
        });
      }
    }
    return out;
  }

  #loads(now: number): ServerLoad[] {
    const out: ServerLoad[] = [];
    for (const s of this.servers.values()) {
      if (!s.alive) continue;
      s.creations = s.creations.filter((t) =>
        t > now - this.options.recentWindowMs
      );
      out.push({
        id: s.id,
        rack: s.rack,
        capacityBytes: s.capacityBytes,
        usedBytes: s.usedBytes + s.reservedBytes,
        load: s.load,
        recentCreations: s.creations.length,
      });
    }
    return out;
  }

  #locs(handle: number): Map<string, Location> {
    let l = this.locations.get(handle);
    if (l === undefined) {
      l = new Map();
      this.locations.set(handle, l);
    }
    return l;
  }

  #dropLocation(handle: number, server: string): void {
    const l = this.locations.get(handle);
    if (l === undefined) return;
    l.delete(server);
    if (l.size === 0) this.locations.delete(handle);
  }

  #owe(server: string, handle: number): void {
    let s = this.#owedDeletes.get(server);
    if (s === undefined) {
      s = new Set();
      this.#owedDeletes.set(server, s);
    }
    s.add(handle);
  }
}
