import { Hono } from "hono";
import { z } from "zod";
import {
  type ChunkMaster,
  ChunkMaster as Core,
  type ChunkMasterOptions,
} from "./chunk_master.ts";
import { settleChunkBytes } from "./cell_config_file.ts";
import { GfsClient } from "./client.ts";
import { GfsError, isGfsError } from "./gfs_error.ts";
import { parsePath, parsePrefix, parseTrashPath } from "./gfs_path.ts";
import {
  errorResponse,
  fetchJson,
  promLine,
  readJson,
  readQuery,
} from "./http_json.ts";
import type { MasterOp } from "./master_state.ts";
import { MasterStore } from "./master_store.ts";
import { ReplicatedMasterStore } from "./replicated_master_store.ts";
import { parsePeerList, splitHostPort } from "@strata/replication";
import {
  AbandonSchema,
  AllocateSchema,
  AppendTargetSchema,
  ClonedSchema,
  CompleteSchema,
  CorruptReportSchema,
  CreateSchema,
  type FileInfo,
  HeartbeatSchema,
  OkSchema,
  type WriteTarget,
} from "./messages.ts";
import type { FileRecord } from "./namespace.ts";
import { PathLocks } from "./path_locks.ts";
import { writeQuorum } from "./placement.ts";
import { parseRange } from "./range_header.ts";
import type { CloneTask } from "./replication_planner.ts";

/** Configuration of a master process (times in ms, sizes in bytes). */
export const MasterConfigSchema = z.object({
  /** Where the op log and checkpoints live. */
  dataDir: z.string().min(1),
  host: z.string().default("127.0.0.1"),
  /** Bind port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(0),
  /**
   * Chunk size, bytes: fixed when the cell's data is created (see
   * cell_config_file.ts); unset means "what the data says", 64 MiB for a new cell.
   */
  chunkBytes: z.number().int().min(64 * 1024).max(1024 * 2 ** 20).optional(),
  /** Default replication factor of new files. */
  replication: z.number().int().min(1).max(16).default(3),
  /** Largest file a PUT accepts. */
  maxFileBytes: z.number().int().min(0).default(2 ** 40),
  deadAfterMs: z.number().int().min(100).default(10_000),
  leaseMs: z.number().int().min(100).default(60_000),
  gcDelayMs: z.number().int().min(0).default(3 * 24 * 3600_000),
  pendingTimeoutMs: z.number().int().min(100).default(10 * 60_000),
  /** Period of dead-server detection, GC and re-replication planning. */
  tickMs: z.number().int().min(10).default(1000),
  maxClonesPerServer: z.number().int().min(1).default(2),
  /** Rebalancing moves per tick (0 disables). */
  maxMovesPerTick: z.number().int().min(0).default(2),
  checkpointEvery: z.number().int().min(1).default(10_000),
  /** This master's id in a replicated group (with `peers`). */
  id: z.number().int().min(1).default(1),
  /**
   * Every master of a replicated group, `1=raftHost:port/httpHost:port,...`
   * (this one included). Without it the master runs alone on a local op log.
   */
  peers: z.string().optional(),
  /** Milliseconds per raft tick of a replicated master. */
  raftTickMs: z.number().int().min(5).default(100),
  /** Raft ticks without a leader before a replicated master campaigns. */
  electionTicks: z.number().int().min(3).default(10),
});

/** Master configuration (parsed). */
export type MasterConfig = z.infer<typeof MasterConfigSchema>;

/** Where the master's metadata lives: a local op log, or a Raft group. */
export type MetadataStore = MasterStore | ReplicatedMasterStore;

/** A running master. */
export interface RunningMaster {
  /** Base URL it serves on. */
  url: string;
  /** The soft state (locations, leases) of the current term. */
  readonly core: ChunkMaster;
  /** Where its metadata lives: a local op log, or a Raft group. */
  store: MetadataStore;
  /** Stops serving and closes the metadata store. */
  close(): Promise<void>;
}

/**
 * Starts the master: recovers its state from the op log and checkpoints,
 * serves the HTTP API (client protocol, heartbeats, and the public
 * file API acting as a gateway), and runs the periodic tick that detects
 * dead servers, collects garbage and drives re-replication and
 * rebalancing. Locations are re-learned from heartbeats after a restart.
 */
export async function startMaster(
  input: z.input<typeof MasterConfigSchema>,
): Promise<RunningMaster> {
  const parsed = MasterConfigSchema.parse(input);
  await Deno.mkdir(parsed.dataDir, { recursive: true });
  const cfg = {
    ...parsed,
    chunkBytes: await settleChunkBytes(parsed.dataDir, parsed.chunkBytes),
  };
  let store: MetadataStore;
  if (cfg.peers !== undefined) {
    const members = parsePeerList(cfg.peers);
    const self = members.get(cfg.id);
    if (self === undefined) {
      throw new GfsError(
        "bad_request",
        `--peers does not list this master's id ${cfg.id}`,
      );
    }
    const [hostname, port] = splitHostPort(self.peer);
    store = await ReplicatedMasterStore.open(cfg.dataDir, {
      id: cfg.id,
      members,
      listen: { hostname, port },
      tickMs: cfg.raftTickMs,
      electionTicks: cfg.electionTicks,
      checkpointEvery: cfg.checkpointEvery,
    });
  } else {
    store = await MasterStore.open(cfg.dataDir, {
      checkpointEvery: cfg.checkpointEvery,
    });
  }
  const coreOptions: Partial<ChunkMasterOptions> = {
    chunkBytes: cfg.chunkBytes,
    deadAfterMs: cfg.deadAfterMs,
    leaseMs: cfg.leaseMs,
    gcDelayMs: cfg.gcDelayMs,
    pendingTimeoutMs: cfg.pendingTimeoutMs,
    maxClonesPerServer: cfg.maxClonesPerServer,
    maxMovesPerTick: cfg.maxMovesPerTick,
  };
  // Locations, leases and server liveness are soft state: a master that
  // takes over (a new Raft term) starts them afresh and re-learns them
  // from heartbeats, exactly as a restarted master does.
  let core = new Core(store.state, coreOptions);
  let takeoverAt = Date.now();
  store.onTakeover(() => {
    core = new Core(store.state, coreOptions);
    takeoverAt = Date.now();
  });
  const locks = new PathLocks();
  const chunkMutex = new Map<number, Promise<unknown>>();
  const stats = {
    heartbeats: 0,
    clones: 0,
    cloneFailures: 0,
    uploads: 0,
    uploadBytes: 0,
    downloads: 0,
    downloadBytes: 0,
    ops: 0,
  };
  let url = "";
  let stopped = false;

  const propose = async (op: MasterOp) => {
    stats.ops++;
    const r = await store.propose(op);
    if (r.t === "abandon" || r.t === "purge") core.forgetChunks(r.chunks);
    if (r.t === "allocate" && r.replaced !== null) {
      core.forgetChunks([r.replaced]);
    }
    return r;
  };

  const serial = <T>(handle: number, fn: () => Promise<T>): Promise<T> => {
    const prev = chunkMutex.get(handle) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    chunkMutex.set(handle, tail);
    tail.then(() => {
      if (chunkMutex.get(handle) === tail) chunkMutex.delete(handle);
    });
    return next;
  };

  const setVersion = async (
    server: string,
    handle: number,
    version: number,
    create: boolean,
    leaseUntil?: number,
  ) => {
    try {
      await fetchJson(`${server}/v1/chunks/${handle}/version`, OkSchema, {
        body: { version, create, leaseUntil },
        timeoutMs: 10_000,
      });
      return true;
    } catch {
      return false;
    }
  };

  const target = (
    handle: number,
    version: number,
    primary: string,
    all: string[],
  ): WriteTarget => ({
    handle,
    version,
    primary,
    secondaries: all.filter((u) => u !== primary),
    chunkBytes: cfg.chunkBytes,
  });

  /** Creates a new chunk's replicas at version 1 and leases it to the first. */
  const placeNew = async (
    handle: number,
    replication: number,
  ): Promise<WriteTarget> => {
    const now = Date.now();
    const servers = core.placeChunk(replication, now);
    const leaseUntil = now + cfg.leaseMs;
    const oks = await Promise.all(
      servers.map((s, i) =>
        setVersion(s.url, handle, 1, true, i === 0 ? leaseUntil : undefined)
      ),
    );
    const good = servers.filter((_, i) => oks[i]);
    // The primary is the first server that answered: one that died since
    // its last heartbeat never stalls a write (it then costs one more RPC).
    const primary = good[0];
    if (
      primary === undefined || good.length < writeQuorum(replication) ||
      (primary !== servers[0] &&
        !(await setVersion(primary.url, handle, 1, false, leaseUntil)))
    ) {
      for (const s of good) core.dropReplica(handle, s.id);
      throw new GfsError(
        "unavailable",
        `could not create chunk ${handle} on enough servers`,
      );
    }
    for (const s of good) core.addLocation(handle, s.id, 1, 0, now);
    core.leases.grant(handle, primary.id, 1, now);
    return target(handle, 1, primary.url, good.map((s) => s.url));
  };

  /** A valid lease on `handle`: the current one, or a new one after a version bump. */
  const leaseFor = (handle: number): Promise<WriteTarget> =>
    serial(handle, async () => {
      const now = Date.now();
      const rec = store.state.chunks.get(handle);
      if (rec === undefined) {
        throw new GfsError("not_found", `chunk ${handle} not found`);
      }
      const replicas = core.liveReplicas(handle);
      const lease = core.leases.get(handle, now + 5000);
      if (
        lease && core.liveServer(lease.primary) && lease.version === rec.version
      ) {
        const primary = core.liveServer(lease.primary)!;
        // Re-send the lease (idempotent): a primary that lost it, e.g. by a
        // restart, would otherwise refuse every mutation until it expired.
        if (
          await setVersion(
            primary.url,
            handle,
            rec.version,
            false,
            lease.expiresAt,
          )
        ) {
          return target(
            handle,
            rec.version,
            primary.url,
            [primary.url, ...replicas.map((s) => s.url)].filter((u, i, a) =>
              a.indexOf(u) === i
            ),
          );
        }
        core.leases.revoke(handle);
      }
      if (replicas.length === 0) {
        throw new GfsError(
          "unavailable",
          `chunk ${handle} has no live replica`,
        );
      }
      const version = rec.version + 1;
      const oks = await Promise.all(
        replicas.map((s) => setVersion(s.url, handle, version, false)),
      );
      const good = replicas.filter((_, i) => oks[i]);
      if (good.length === 0) {
        throw new GfsError(
          "unavailable",
          `no replica of chunk ${handle} took version ${version}`,
        );
      }
      try {
        await propose({ t: "bumpVersion", handle, version });
      } catch (e) {
        if (!isGfsError(e, "stale")) throw e;
      }
      const primary = good[0]!;
      const expiresAt = Date.now() + cfg.leaseMs;
      if (!(await setVersion(primary.url, handle, version, false, expiresAt))) {
        throw new GfsError(
          "unavailable",
          `primary for chunk ${handle} did not take its lease`,
        );
      }
      for (const s of good) {
        const l = core.locations.get(handle)?.get(s.id);
        core.addLocation(
          handle,
          s.id,
          version,
          l?.length ?? 0,
          l?.addedAt ?? now,
        );
      }
      core.leases.grant(handle, primary.id, version, Date.now());
      return target(handle, version, primary.url, good.map((s) => s.url));
    });

  const info = (path: string, f: FileRecord): FileInfo => ({
    path,
    length: core.fileLength(f),
    mode: f.mode,
    replication: f.replication,
    chunks: f.chunks.length,
    createdAt: f.createdAt,
    mtime: f.mtime,
  });

  const urlToId = () =>
    new Map([...core.servers.values()].map((s) => [s.url, s.id]));

  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  // Only the serving master answers; the others redirect to it (307 keeps
  // the method and body), or say there is no leader yet.
  app.use("*", async (c, next) => {
    if (
      store.serving() || c.req.path === "/metrics" ||
      c.req.path === "/v1/master" ||
      // No valid lease (lapsed, voided by a pause, or refused by the clock
      // guard): a leader confirms its leadership with a ReadIndex round.
      (store instanceof ReplicatedMasterStore &&
        await store.servingConfirmed())
    ) return await next();
    const leader = store.leaderUrl();
    if (leader !== undefined) {
      const u = new URL(c.req.url);
      return c.redirect(`${leader}${u.pathname}${u.search}`, 307);
    }
    return errorResponse(
      c,
      new GfsError(
        "not_leader",
        "this master does not lead and knows no leader (election in progress); retry shortly",
      ),
    );
  });
  app.get("/v1/master", (c) => {
    const base = {
      url,
      serving: store.serving(),
      appliedIndex: store.appliedIndex,
      // Every replica answers this, so a new chunkserver can learn the
      // cell's chunk size from any of them.
      chunkBytes: cfg.chunkBytes,
    };
    if (!(store instanceof ReplicatedMasterStore)) {
      return c.json({ ...base, replicated: false, role: "leader" });
    }
    const s = store.status();
    return c.json({
      ...base,
      replicated: true,
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      leaderUrl: store.leaderUrl() ?? (s.leader === s.id ? url : null),
      commitIndex: s.commitIndex,
      members: store.node.members(),
    });
  });
  app.notFound((c) =>
    errorResponse(
      c,
      new GfsError("not_found", `no route ${c.req.method} ${c.req.path}`),
    )
  );

  // --- chunkserver protocol
  app.post("/v1/heartbeat", async (c) => {
    const hb = await readJson(c, HeartbeatSchema);
    if (hb.chunkBytes !== undefined && hb.chunkBytes !== cfg.chunkBytes) {
      // Never register it: its chunks would be cut at other offsets than
      // the files this master describes.
      throw new GfsError(
        "conflict",
        `chunkserver ${hb.id} keeps ${hb.chunkBytes}-byte chunks; this cell's are ${cfg.chunkBytes} bytes (start it with --chunk-bytes ${cfg.chunkBytes} on a new --data-dir)`,
      );
    }
    stats.heartbeats++;
    const { reply, ops } = core.heartbeat(hb, Date.now());
    for (const op of ops) {
      await propose(op).catch(() => {});
    }
    return c.json(reply);
  });

  app.post("/v1/report-corrupt", async (c) => {
    const r = await readJson(c, CorruptReportSchema);
    core.reportCorrupt(r.id, r.handle);
    return c.json({ ok: true });
  });

  // --- client protocol
  app.post("/v1/rpc/create", async (c) => {
    const b = await readJson(c, CreateSchema);
    const path = parsePath(b.path);
    if (parseTrashPath(path) || path.startsWith("/.trash")) {
      throw new GfsError("bad_request", "the trash is read-only");
    }
    const replication = b.replication ?? cfg.replication;
    const firstChunk = b.allocate === true && b.mode === "upload";
    const out = await locks.with(
      PathLocks.forPath(path, "write"),
      async () => {
        const r = await propose({
          t: "create",
          path,
          mode: b.mode,
          replication,
          now: Date.now(),
          ...(firstChunk ? { firstChunk } : {}),
        });
        const fileId = r.t === "create" ? r.fileId : 0;
        let first: WriteTarget | null = null;
        if (r.t === "create" && r.handle !== undefined) {
          // Placement failing is no reason to fail the create: the client
          // then allocates chunk 0 again itself, retrying as for any chunk.
          first = await placeNew(r.handle, replication).catch(() => null);
        }
        return { fileId, first };
      },
    );
    return c.json({
      fileId: out.fileId,
      chunkBytes: cfg.chunkBytes,
      replication,
      ...(firstChunk ? { first: out.first } : {}),
    });
  });

  app.post("/v1/rpc/allocate", async (c) => {
    const b = await readJson(c, AllocateSchema);
    const path = parsePath(b.path);
    const t = await locks.with(PathLocks.forPath(path, "write"), async () => {
      const r = await propose({
        t: "allocate",
        path,
        fileId: b.fileId,
        index: b.index,
        now: Date.now(),
      });
      if (r.t !== "allocate") throw new GfsError("internal", "allocate failed");
      const f = store.state.namespace.get(path)!;
      return await placeNew(r.handle, f.replication);
    });
    return c.json(t);
  });

  app.post("/v1/rpc/complete", async (c) => {
    const b = await readJson(c, CompleteSchema);
    const path = parsePath(b.path);
    await locks.with(PathLocks.forPath(path, "write"), async () => {
      const f = store.state.namespace.get(path);
      if (f === undefined || f.id !== b.fileId) {
        throw new GfsError("not_found", `${path} not found`);
      }
      if (
        b.chunks.length !== f.chunks.length ||
        b.chunks.some((ch, i) => ch.handle !== f.chunks[i])
      ) {
        throw new GfsError(
          "bad_request",
          "chunk list does not match the file's chunks",
        );
      }
      const ids = urlToId();
      const quorum = writeQuorum(f.replication);
      for (const ch of b.chunks) {
        const good = new Set(
          ch.servers.map((u) => ids.get(u)).filter((x): x is string =>
            x !== undefined
          ),
        );
        if (good.size < quorum) {
          throw new GfsError(
            "unavailable",
            `chunk ${ch.handle} is on ${good.size} servers; a quorum is ${quorum}`,
          );
        }
        for (const sid of [...(core.locations.get(ch.handle)?.keys() ?? [])]) {
          if (!good.has(sid)) core.dropReplica(ch.handle, sid);
        }
        const version = store.state.chunks.get(ch.handle)!.version;
        for (const sid of good) {
          core.addLocation(ch.handle, sid, version, ch.length, Date.now());
        }
      }
      await propose({
        t: "complete",
        path,
        fileId: b.fileId,
        lengths: b.chunks.map((x) => x.length),
        now: Date.now(),
      });
      for (const ch of b.chunks) core.leases.revoke(ch.handle);
    });
    return c.json({ ok: true });
  });

  app.post("/v1/rpc/abandon", async (c) => {
    const b = await readJson(c, AbandonSchema);
    const path = parsePath(b.path);
    await locks.with(
      PathLocks.forPath(path, "write"),
      () => propose({ t: "abandon", path, fileId: b.fileId }),
    );
    return c.json({ ok: true });
  });

  app.get("/v1/rpc/locate", async (c) => {
    const q = readQuery(c, z.object({ path: z.string() }));
    const path = parsePath(q.path);
    const out = await locks.with(PathLocks.forPath(path, "read"), () => {
      const { file, chunks } = core.locate(path);
      return {
        fileId: file.id,
        length: core.fileLength(file),
        mode: file.mode,
        chunkBytes: cfg.chunkBytes,
        chunks,
      };
    });
    return c.json(out);
  });

  app.post("/v1/rpc/append-target", async (c) => {
    const b = await readJson(c, AppendTargetSchema);
    const path = parsePath(b.path);
    const t = await locks.with(PathLocks.forPath(path, "write"), async () => {
      let f = store.state.namespace.get(path);
      if (f === undefined) {
        if (!b.create) throw new GfsError("not_found", `${path} not found`);
        await propose({
          t: "create",
          path,
          mode: "append",
          replication: b.replication ?? cfg.replication,
          now: Date.now(),
        });
        f = store.state.namespace.get(path)!;
      }
      if (f.mode !== "append" || f.state !== "complete") {
        throw new GfsError("conflict", `${path} is not an append file`);
      }
      const last = f.chunks[f.chunks.length - 1];
      if (last === undefined || last === b.afterHandle) {
        const r = await propose({
          t: "allocate",
          path,
          fileId: f.id,
          index: f.chunks.length,
          now: Date.now(),
        });
        if (r.t !== "allocate") {
          throw new GfsError("internal", "allocate failed");
        }
        return await placeNew(r.handle, f.replication);
      }
      if (b.renew) core.leases.revoke(last);
      return await leaseFor(last);
    });
    return c.json(t);
  });

  // --- public API
  const client = () => new GfsClient(url);

  app.put("/v1/files/*", async (c) => {
    const path = parsePath(
      decodeURIComponent(c.req.path.slice("/v1/files".length)),
    );
    const q = readQuery(
      c,
      z.object({
        replication: z.coerce.number().int().min(1).max(16).optional(),
      }),
    );
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > cfg.maxFileBytes) {
      throw new GfsError(
        "too_large",
        `upload of ${declared} bytes exceeds the limit of ${cfg.maxFileBytes}`,
      );
    }
    const body = c.req.raw.body ??
      new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    const r = await client().upload(path, body, {
      replication: q.replication,
      maxBytes: cfg.maxFileBytes,
    });
    stats.uploads++;
    stats.uploadBytes += r.length;
    return c.json({ path, length: r.length, chunks: r.chunks }, 201);
  });

  app.get("/v1/files/*", async (c) => {
    const path = parsePath(
      decodeURIComponent(c.req.path.slice("/v1/files".length)),
    );
    const located = core.locate(path);
    const length = core.fileLength(located.file);
    const range = parseRange(c.req.header("range"), length);
    const d = await client().download(path, range ?? undefined);
    stats.downloads++;
    stats.downloadBytes += d.length;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(d.length),
      "accept-ranges": "bytes",
    };
    if (range) {
      headers["content-range"] = `bytes ${range.offset}-${
        range.offset + range.length - 1
      }/${length}`;
    }
    if (range && range.length === 0) {
      headers["content-range"] = `bytes */${length}`;
    }
    return new Response(d.stream, { status: range ? 206 : 200, headers });
  });

  app.delete("/v1/files/*", async (c) => {
    const path = parsePath(
      decodeURIComponent(c.req.path.slice("/v1/files".length)),
    );
    const r = await locks.with(
      PathLocks.forPath(path, "write"),
      () => propose({ t: "delete", path, now: Date.now() }),
    );
    return c.json({ ok: true, trashPath: r.t === "delete" ? r.trashPath : "" });
  });

  app.post("/v1/undelete", async (c) => {
    const b = await readJson(
      c,
      z.object({ trashPath: z.string().min(1).max(2048) }),
    );
    const t = parsePath(b.trashPath);
    const orig = parseTrashPath(t);
    if (orig === null) {
      throw new GfsError("bad_request", `${t} is not a trash path`);
    }
    const r = await locks.with([
      ...PathLocks.forPath(t, "write"),
      ...PathLocks.forPath(orig.original, "write"),
    ], () => propose({ t: "undelete", trashPath: t, now: Date.now() }));
    return c.json({ ok: true, path: r.t === "undelete" ? r.path : "" });
  });

  app.get("/v1/ls", (c) => {
    const q = readQuery(
      c,
      z.object({ prefix: z.string().max(2048).default("/") }),
    );
    const prefix = parsePrefix(q.prefix);
    return c.json({
      files: store.state.namespace.list(prefix).map(({ path, file }) =>
        info(path, file)
      ),
    });
  });

  app.get("/v1/stat/*", (c) => {
    const path = parsePath(
      decodeURIComponent(c.req.path.slice("/v1/stat".length)),
    );
    const f = path.startsWith("/.trash/")
      ? store.state.namespace.get(path)
      : store.state.visibleFile(path);
    if (f === undefined || f.state !== "complete") {
      throw new GfsError("not_found", `${path} not found`);
    }
    return c.json(info(path, f));
  });

  app.get("/v1/chunkservers", (c) => {
    const now = Date.now();
    const counts = new Map<string, number>();
    for (const locs of core.locations.values()) {
      for (const id of locs.keys()) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return c.json({
      chunkservers: [...core.servers.values()].map((s) => ({
        id: s.id,
        url: s.url,
        rack: s.rack,
        alive: s.alive,
        capacityBytes: s.capacityBytes,
        usedBytes: s.usedBytes,
        fractionUsed: s.capacityBytes > 0 ? s.usedBytes / s.capacityBytes : 1,
        load: s.load,
        chunks: counts.get(s.id) ?? 0,
        lastHeartbeatMsAgo: now - s.lastHeartbeat,
      })),
    });
  });

  app.get("/v1/health", (c) => {
    const h = core.health();
    return c.json({
      status: h.lost > 0 || h.underReplicated > 0 ? "degraded" : "ok",
      ...h,
      files: store.state.namespace.size,
    });
  });

  app.get("/metrics", async (c) => {
    const h = core.health();
    const lines = [
      "# TYPE gfs_master_files gauge",
      promLine("gfs_master_files", store.state.namespace.size),
      "# TYPE gfs_master_chunks gauge",
      promLine("gfs_master_chunks", h.chunks),
      "# TYPE gfs_master_under_replicated_chunks gauge",
      promLine("gfs_master_under_replicated_chunks", h.underReplicated),
      "# TYPE gfs_master_lost_chunks gauge",
      promLine("gfs_master_lost_chunks", h.lost),
      "# TYPE gfs_master_chunkservers gauge",
      promLine("gfs_master_chunkservers", h.liveServers, { state: "live" }),
      promLine("gfs_master_chunkservers", h.deadServers, { state: "dead" }),
      "# TYPE gfs_master_oplog_applied_index gauge",
      promLine("gfs_master_oplog_applied_index", store.appliedIndex),
      "# TYPE gfs_master_ops_total counter",
      promLine("gfs_master_ops_total", stats.ops),
      "# TYPE gfs_master_heartbeats_total counter",
      promLine("gfs_master_heartbeats_total", stats.heartbeats),
      "# TYPE gfs_master_clones_total counter",
      promLine("gfs_master_clones_total", stats.clones, { result: "ok" }),
      promLine("gfs_master_clones_total", stats.cloneFailures, {
        result: "failed",
      }),
      "# TYPE gfs_master_gateway_bytes_total counter",
      promLine("gfs_master_gateway_bytes_total", stats.uploadBytes, {
        direction: "upload",
      }),
      promLine("gfs_master_gateway_bytes_total", stats.downloadBytes, {
        direction: "download",
      }),
      "# TYPE gfs_master_clones_in_flight gauge",
      promLine("gfs_master_clones_in_flight", core.inflight.length),
    ];
    const raft = store instanceof ReplicatedMasterStore
      ? await store.node.renderMetrics()
      : "";
    return c.text(lines.join("\n") + "\n" + raft, 200, {
      "content-type": "text/plain; version=0.0.4",
    });
  });

  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    onListen: () => {},
  }, app.fetch);
  url = `http://${cfg.host}:${server.addr.port}`;

  const runClone = async (t: CloneTask) => {
    const src = core.servers.get(t.source), dst = core.servers.get(t.target);
    const version = store.state.chunks.get(t.handle)?.version ?? 0;
    if (!src || !dst || version === 0) {
      core.cloneDone(t, false, version, 0, Date.now());
      return;
    }
    try {
      const r = await fetchJson(
        `${dst.url}/v1/chunks/${t.handle}/clone`,
        ClonedSchema,
        {
          body: { source: src.url, version },
          timeoutMs: 120_000,
        },
      );
      stats.clones++;
      core.cloneDone(t, true, version, r.length, Date.now());
    } catch {
      stats.cloneFailures++;
      core.cloneDone(t, false, version, 0, Date.now());
    }
  };

  const tickLoop = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, cfg.tickMs));
      if (stopped) break;
      // Only the serving master plans; it gives chunkservers a chance to
      // report (after a start or a takeover) before judging anything lost.
      if (!store.serving()) continue;
      if (Date.now() - takeoverAt < Math.min(cfg.deadAfterMs, 3000)) continue;
      try {
        const plan = core.tick(Date.now());
        for (const op of plan.ops) {
          const path = op.t === "purge" || op.t === "abandon" ? op.path : "/";
          await locks.with(PathLocks.forPath(path, "write"), () => propose(op))
            .catch(() => {});
        }
        for (const t of plan.clones) runClone(t);
        for (const m of plan.moves) {
          runClone({ handle: m.handle, source: m.from, target: m.to });
        }
      } catch {
        // a failed round is retried on the next tick
      }
    }
  })();

  return {
    url,
    get core() {
      return core;
    },
    store,
    async close() {
      stopped = true;
      await server.shutdown();
      await tickLoop;
      await store.close();
    },
  };
}
