import { Hono } from "hono";
import type { Context } from "hono";
import { GroupCommit } from "@strata/storage";
import { z } from "zod";
import { settleChunkBytes } from "../shared/cell_config_file.ts";
import { ChunkStore } from "./chunk_store.ts";
import { GfsError, gfsToEdgeError, isGfsError } from "../shared/gfs_error.ts";
import {
  authHeaders,
  installErrorHandlers,
  readBytes,
  readJson,
  readQuery,
  tlsServeOptions,
} from "@strata/edge";
import {
  AccessConfigFields,
  need,
  resolveGfsAccess,
} from "../shared/access.ts";
import {
  fetchJson,
  MasterEndpoints,
  parseResponse,
  promLine,
  refuseFormBody,
  requestBody,
  throwIfFailed,
} from "../shared/http_json.ts";
import {
  ApplyBytesQuerySchema,
  ApplySchema,
  CloneSchema,
  HeartbeatReplySchema,
  OkSchema,
  PushedSchema,
  RecordsQuerySchema,
  SetVersionSchema,
  WriteSchema,
} from "../shared/messages.ts";

/** Configuration of a chunkserver process. */
export const ChunkserverConfigSchema = z.object({
  /** Stable id (default: kept in `<dataDir>/id`). */
  id: z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/).optional(),
  /** Where chunks live. */
  dataDir: z.string().min(1),
  /** Master base URL, or every master's, comma-separated. */
  master: z.string().refine(
    (v) =>
      v.split(",").every((u) => z.string().url().safeParse(u.trim()).success),
    "expected a URL or comma-separated URLs",
  ),
  /** Rack name ("" = racks not configured). */
  rack: z.string().max(64).default(""),
  /** Capacity offered for chunks, bytes. */
  capacityBytes: z.number().int().min(1).default(100 * 2 ** 30),
  /**
   * Chunk size, bytes (must match the master's): fixed when the data
   * directory is created (cell_config_file.ts); unset means "what the data
   * says", or for a new directory the size the masters report.
   */
  chunkBytes: z.number().int().min(64 * 1024).max(1024 * 2 ** 20).optional(),
  /** Heartbeat interval, ms. */
  heartbeatMs: z.number().int().min(10).default(1000),
  /** Pause between scrubbing two chunks, ms (0 disables the scrubber). */
  scrubPauseMs: z.number().int().min(0).default(200),
  /** Bind host. */
  host: z.string().default("127.0.0.1"),
  /** Bind port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(0),
  ...AccessConfigFields,
});

/** Chunkserver configuration (parsed). */
export type ChunkserverConfig = z.infer<typeof ChunkserverConfigSchema>;

/** A running chunkserver. */
export interface RunningChunkserver {
  /** The chunkserver's stable id. */
  id: string;
  /** Base URL it serves on. */
  url: string;
  /** Its chunk store. */
  store: ChunkStore;
  /** Stops serving and closes the store. */
  close(): Promise<void>;
}

const HandleParam = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const DataId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
const STAGING_TTL_MS = 120_000;
/**
 * A primary asks the master to extend a lease only while the chunk was
 * mutated this recently: an idle chunk's lease then lapses soon, and a
 * leased chunk is not re-replicated (see chunk_master.ts).
 */
const EXTEND_IF_MUTATED_WITHIN_MS = 10_000;
/** Reads up to this size are answered as one buffer, larger ones streamed. */
const SMALL_READ_BYTES = 256 * 1024;

/**
 * Starts a chunkserver: the chunk store, its HTTP API, heartbeats to the
 * master and the background scrubber.
 *
 * Write path (GFS): the client pushes data along a chain of replicas
 * (`POST /v1/push/:dataId?chain=…`, each server forwarding the stream to the
 * next while it receives it), then asks the primary to apply it. The
 * primary orders mutations per chunk (one at a time), applies locally, and
 * forwards the same mutation at the same offset to the secondaries.
 */
export async function startChunkserver(
  input: z.input<typeof ChunkserverConfigSchema>,
): Promise<RunningChunkserver> {
  const parsed = ChunkserverConfigSchema.parse(input);
  await Deno.mkdir(parsed.dataDir, { recursive: true });
  // Users' tokens for client calls; the peer secret to and from the
  // masters and the other chunkservers.
  const access = await resolveGfsAccess(parsed);
  const peerToken = access.peerToken;
  const client = access.client;
  const cfg = {
    ...parsed,
    chunkBytes: await settleChunkBytes(
      parsed.dataDir,
      parsed.chunkBytes,
      // A new chunkserver without --chunk-bytes joins the cell at its size.
      async () =>
        (await new MasterEndpoints(parsed.master, 30_000, peerToken, client)
          .call(
            "/v1/master",
            z.object({ chunkBytes: z.number().int() }),
            { timeoutMs: 5000 },
          )).chunkBytes,
    ),
  };
  // Heartbeats keep coming anyway: a short failover window per call.
  const masters = new MasterEndpoints(
    cfg.master,
    Math.max(1000, cfg.heartbeatMs * 3),
    peerToken,
    client,
  );
  await Deno.mkdir(cfg.dataDir, { recursive: true });
  const id = cfg.id ?? await loadOrMakeId(cfg.dataDir);
  const store = await ChunkStore.open(cfg.dataDir, {
    chunkBytes: cfg.chunkBytes,
  });
  const staging = new Map<string, { data: Uint8Array; at: number }>();
  const leases = new Map<number, { version: number; expiresAt: number }>();
  const lastMutation = new Map<number, number>();
  const mutex = new Map<number, Promise<unknown>>();
  const stats = {
    reads: 0,
    readBytes: 0,
    writes: 0,
    writeBytes: 0,
    corrupt: 0,
    inflight: 0,
  };
  let url = "";
  let stopped = false;
  // Ends a heartbeat still retrying unreachable masters when we close, so
  // close() never waits out the failover window.
  const closing = new AbortController();

  // Peers this chunkserver may contact (SSRF guard): the origins of the
  // chunkservers registered with the master, from every heartbeat reply and,
  // for a name not seen yet (a server that just joined), one fresh lookup.
  let registered = new Set<string>();
  const setPeers = (urls: string[]) => {
    registered = new Set(urls.flatMap((u) => {
      const o = originOf(u);
      return o === null ? [] : [o];
    }));
  };
  const peerLookup = new MasterEndpoints(cfg.master, 2000, peerToken, client);
  let lookingUp: Promise<void> | null = null;
  const lookUpPeers = () =>
    lookingUp ??= peerLookup.call(
      "/v1/chunkservers",
      z.object({ chunkservers: z.array(z.object({ url: z.string() })) }),
      { timeoutMs: 2000, signal: closing.signal },
    ).then((r) => setPeers(r.chunkservers.map((s) => s.url)), () => {})
      .finally(() => lookingUp = null);
  /**
   * The origins of `urls` when every one is a registered chunkserver.
   * @throws GfsError `bad_request` (not an http URL), `forbidden` (not
   *   registered with the master).
   */
  const peerOrigins = async (urls: string[], what: string) => {
    const origins = urls.map((u) => {
      const o = originOf(u);
      if (o === null) {
        throw new GfsError("bad_request", `${what} ${u} is not an http URL`);
      }
      return o;
    });
    if (origins.some((o) => !registered.has(o))) await lookUpPeers();
    const stranger = origins.find((o) => !registered.has(o));
    if (stranger !== undefined) {
      throw new GfsError(
        "forbidden",
        `${what} ${stranger} is not a chunkserver registered with the master`,
      );
    }
    return origins;
  };

  const serial = <T>(handle: number, fn: () => Promise<T>): Promise<T> => {
    const prev = mutex.get(handle) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    mutex.set(handle, tail);
    tail.then(() => {
      if (mutex.get(handle) === tail) mutex.delete(handle);
    });
    return next;
  };

  const reportCorrupt = async (handle: number) => {
    stats.corrupt++;
    await store.delete(handle).catch(() => {});
    await masters.call(`/v1/report-corrupt`, OkSchema, {
      body: { id, handle },
      timeoutMs: 5000,
    }).catch(() => {});
  };

  const staged = (dataId: string): Uint8Array => {
    const s = staging.get(dataId);
    if (s === undefined) {
      throw new GfsError(
        "not_found",
        `no pushed data ${dataId}; push it again`,
      );
    }
    return s.data;
  };

  const checkLease = (handle: number, version: number) => {
    const l = leases.get(handle);
    if (l === undefined || l.expiresAt <= Date.now() || l.version !== version) {
      throw new GfsError(
        "no_lease",
        `no valid lease on chunk ${handle} v${version} at ${id} (${
          l === undefined
            ? "none"
            : `v${l.version}, ${l.expiresAt - Date.now()} ms left`
        })`,
      );
    }
    lastMutation.set(handle, Date.now());
  };

  const forward = async (
    secondaries: string[],
    handle: number,
    body: z.input<typeof ApplySchema>,
    signal?: AbortSignal,
  ) => {
    return await fanOut(secondaries, async (s) => {
      await fetchJson(`${s}/v1/chunks/${handle}/apply`, OkSchema, {
        body,
        timeoutMs: 60_000,
        token: peerToken,
        client,
        signal,
      });
    });
  };

  // Record-append batches being forwarded, per chunk. A new version (the
  // master is granting a new lease, after this one's appends failed) ends
  // them: they can no longer be acknowledged, and a batch stuck on a
  // partitioned secondary would otherwise hold the chunk's queue, and so
  // the version change, for up to the forward timeout; the master would
  // then leave this server out of the new version.
  const forwarding = new Map<number, Set<AbortController>>();
  const abortForwards = (handle: number) => {
    for (const ctl of forwarding.get(handle) ?? []) {
      ctl.abort(new GfsError("stale", `chunk ${handle} has a new version`));
    }
  };

  // Mutation order: the primary numbers the mutations of each chunk
  // version; secondaries apply them in that order (GFS serial numbers), so
  // the primary can apply the next piece while secondaries finish the last.
  const primarySeq = new Map<string, number>();
  const takeSeq = (handle: number, version: number): number => {
    const k = `${handle}:${version}`;
    const n = (primarySeq.get(k) ?? 0) + 1;
    primarySeq.set(k, n);
    return n;
  };
  const order = new Map<
    string,
    { last: number; waiters: Map<number, () => void> }
  >();
  const orderOf = (handle: number, version: number) => {
    const k = `${handle}:${version}`;
    let o = order.get(k);
    if (o === undefined) {
      o = { last: 0, waiters: new Map() };
      order.set(k, o);
    }
    return o;
  };
  const waitTurn = (handle: number, version: number, seq: number) => {
    const o = orderOf(handle, version);
    if (o.last >= seq - 1) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        o.waiters.delete(seq);
        reject(
          new GfsError(
            "unavailable",
            `mutation ${seq} of chunk ${handle} still waits for ${o.last + 1}`,
          ),
        );
      }, 15_000);
      o.waiters.set(seq, () => {
        clearTimeout(t);
        resolve();
      });
    });
  };
  const markApplied = (handle: number, version: number, seq: number) => {
    const o = orderOf(handle, version);
    o.last = Math.max(o.last, seq);
    const next = o.waiters.get(o.last + 1);
    if (next) {
      o.waiters.delete(o.last + 1);
      next();
    }
  };
  const forgetOrder = (handle: number) => {
    for (const m of [primarySeq, order]) {
      for (const k of [...m.keys()]) {
        if (k.startsWith(`${handle}:`)) m.delete(k);
      }
    }
  };

  // Record appends (small, many, concurrent): per chunk, the records that
  // arrive while one batch is being made durable wait and go together in
  // the next: one write and one fsync on the primary and on each secondary
  // for the whole batch, offsets assigned back to back in arrival order.
  // A record is acknowledged only when its batch is durable on every
  // replica of the lease.
  const appenders = new Map<number, GroupCommit<PendingRecord, RecordResult>>();
  const appenderOf = (handle: number) => {
    let g = appenders.get(handle);
    if (g === undefined) {
      g = new GroupCommit<PendingRecord, RecordResult>(
        (items) => serial(handle, () => commitRecords(handle, items)),
        1024,
      );
      appenders.set(handle, g);
    }
    return g;
  };
  const forgetAppender = (handle: number) => {
    const g = appenders.get(handle);
    if (g !== undefined && g.pending === 0) appenders.delete(handle);
  };

  /** Sends bytes to secondaries to apply at `offset` as mutation `seq`. */
  const forwardBytes = async (
    secondaries: string[],
    handle: number,
    q: { version: number; offset: number; seq: number },
    data: Uint8Array,
    signal?: AbortSignal,
  ) => {
    return await fanOut(secondaries, async (s) => {
      const u =
        `${s}/v1/chunks/${handle}/apply-bytes?version=${q.version}&offset=${q.offset}&seq=${q.seq}`;
      const res = await fetch(u, {
        method: "POST",
        headers: {
          ...authHeaders(peerToken),
          "content-type": "application/octet-stream",
        },
        client,
        body: data as Uint8Array<ArrayBuffer>,
        signal: signal === undefined
          ? AbortSignal.timeout(60_000)
          : AbortSignal.any([signal, AbortSignal.timeout(60_000)]),
      });
      await parseResponse(res, OkSchema, u);
    });
  };

  /** One group commit of a chunk's records: runs of the same lease in order. */
  const commitRecords = async (
    handle: number,
    items: PendingRecord[],
  ): Promise<RecordResult[]> => {
    const results: RecordResult[] = new Array(items.length);
    for (let i = 0; i < items.length;) {
      const key = (r: PendingRecord) => `${r.version}|${r.secondaries}`;
      let j = i + 1;
      while (j < items.length && key(items[j]!) === key(items[i]!)) j++;
      await commitRun(handle, items.slice(i, j), results, i);
      i = j;
    }
    return results;
  };

  const commitRun = async (
    handle: number,
    run: PendingRecord[],
    results: RecordResult[],
    base: number,
  ) => {
    const { version, secondaries } = run[0]!;
    let n = 0;
    const ctl = new AbortController();
    let mine = forwarding.get(handle);
    if (mine === undefined) forwarding.set(handle, mine = new Set());
    mine.add(ctl);
    try {
      checkLease(handle, version);
      // An empty write checks the version and waits out queued writes.
      const length = await store.write(handle, version, 0, new Uint8Array(0));
      let bytes = 0;
      while (
        n < run.length && length + bytes + run[n]!.data.length <= cfg.chunkBytes
      ) bytes += run[n++]!.data.length;
      if (n > 0) {
        const data = new Uint8Array(bytes);
        for (let k = 0, o = 0; k < n; o += run[k]!.data.length, k++) {
          data.set(run[k]!.data, o);
        }
        const seq = takeSeq(handle, version);
        const [, f] = await Promise.all([
          store.write(handle, version, length, data),
          forwardBytes(
            secondaries,
            handle,
            { version, offset: length, seq },
            data,
            ctl.signal,
          ),
        ]);
        if (f.failed.length > 0) {
          throw new GfsError(
            "unavailable",
            `append failed on ${f.failed.join(", ")}; retry`,
          );
        }
        for (let k = 0, o = length; k < n; o += run[k]!.data.length, k++) {
          results[base + k] = { offset: o };
        }
        stats.writes += n;
        stats.writeBytes += bytes;
      }
      if (n < run.length) {
        // Pad every replica to the full chunk so the rest go wholly to the next.
        const seq = takeSeq(handle, version);
        await Promise.all([
          store.write(handle, version, cfg.chunkBytes, new Uint8Array(0)),
          forward(secondaries, handle, {
            version,
            offset: 0,
            padTo: cfg.chunkBytes,
            seq,
          }, ctl.signal),
        ]);
        throw new GfsError(
          "chunk_full",
          `chunk ${handle} is full; append to the next chunk`,
        );
      }
    } catch (e) {
      const err = e instanceof GfsError
        ? e
        : new GfsError("unavailable", `append failed: ${String(e)}; retry`);
      for (let k = n; k < run.length; k++) results[base + k] = { error: err };
      // The records of a failed batch are not acknowledged either.
      if (!isGfsError(err, "chunk_full")) {
        for (let k = 0; k < n; k++) results[base + k] = { error: err };
      }
    } finally {
      mine.delete(ctl);
      if (mine.size === 0 && forwarding.get(handle) === mine) {
        forwarding.delete(handle);
      }
    }
  };

  /**
   * The whole request body, at most `max` bytes (form encodings refused:
   * they would store the encoding, not the bytes).
   * @throws GfsError `unsupported_media_type`; EdgeError `too_large`,
   *   `bad_request` (cut short).
   */
  const readRawBytes = (c: Context, max: number): Promise<Uint8Array> => {
    refuseFormBody(c);
    return readBytes(c, max);
  };

  // Built once: a zod schema built per request costs more than the read.
  const readQuerySchema = z.object({
    version: z.coerce.number().int().min(1).optional(),
    offset: z.coerce.number().int().min(0).default(0),
    length: z.coerce.number().int().min(0).max(cfg.chunkBytes).default(
      cfg.chunkBytes,
    ),
  });

  const app = new Hono();
  installErrorHandlers(app, { name: "gfs-chunkserver", map: gfsToEdgeError });
  app.use("*", access.guard);
  app.use("*", async (_c, next) => {
    stats.inflight++;
    try {
      await next();
    } finally {
      stats.inflight--;
    }
  });

  app.post("/v1/push/:dataId", need.write, async (c) => {
    const dataId = DataId.parse(c.req.param("dataId"));
    const chainRaw = c.req.query("chain") ?? "";
    const chain = chainRaw === "" ? [] : await peerOrigins(
      z.array(z.string().url()).max(15).parse(chainRaw.split(",")),
      "push chain member",
    );
    const body = requestBody(c);
    if (body === null) throw new GfsError("bad_request", "push needs a body");
    // Pipelined as in GFS: bytes go on to the next server in the chain while
    // they are still arriving here. The same chunks are handed on (no
    // ReadableStream.tee, which clones every chunk).
    let forward: ReadableStreamDefaultController<Uint8Array> | null = null;
    let downstream: Promise<string[]> = Promise.resolve([]);
    if (chain.length > 0) {
      const out = new ReadableStream<Uint8Array>({
        start(ctl) {
          forward = ctl;
        },
        cancel() {
          forward = null;
        },
      });
      const rest = chain.slice(1).join(",");
      downstream = fetch(
        `${chain[0]}/v1/push/${dataId}?chain=${encodeURIComponent(rest)}`,
        {
          method: "POST",
          headers: authHeaders(peerToken),
          client,
          body: out,
          duplex: "half",
          signal: AbortSignal.timeout(120_000),
        } as RequestInit,
      ).then(async (res) => PushedSchema.parse(await res.json()).received)
        .catch(() => {
          forward = null;
          return [];
        });
    }
    const hand = (
      f: (ctl: ReadableStreamDefaultController<Uint8Array>) => void,
    ) => {
      const ctl = forward as ReadableStreamDefaultController<Uint8Array> | null;
      if (ctl === null) return;
      try {
        f(ctl);
      } catch {
        forward = null; // the next hop went away; keep receiving here
      }
    };
    const parts: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const part of body) {
        total += part.length;
        if (total > cfg.chunkBytes) {
          throw new GfsError(
            "too_large",
            `push larger than a chunk (${cfg.chunkBytes} bytes)`,
          );
        }
        parts.push(part);
        hand((ctl) => ctl.enqueue(part));
      }
      hand((ctl) => ctl.close());
    } catch (e) {
      hand((ctl) => ctl.error(e));
      throw e;
    }
    const data = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
    staging.set(dataId, { data, at: Date.now() });
    return c.json({ received: [url, ...(await downstream)] });
  });

  app.post("/v1/chunks/:handle/write", need.write, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const w = await readJson(c, WriteSchema);
    w.secondaries = await peerOrigins(w.secondaries, "secondary");
    const data = staged(w.dataId);
    checkLease(handle, w.version);
    // Numbered and queued locally in one synchronous step, so the local
    // order is the numbering; secondaries follow the numbers.
    const seq = takeSeq(handle, w.version);
    const [length, f] = await Promise.all([
      store.write(handle, w.version, w.offset, data),
      forward(w.secondaries, handle, {
        version: w.version,
        offset: w.offset,
        dataId: w.dataId,
        seq,
      }),
    ]);
    const out = { ok: [url, ...f.ok], failed: f.failed, length };
    staging.delete(w.dataId);
    stats.writes++;
    stats.writeBytes += data.length;
    return c.json(out);
  });

  app.post("/v1/chunks/:handle/records", need.write, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, RecordsQuerySchema);
    const secondaries = await peerOrigins(
      q.secondaries === "" ? [] : q.secondaries.split(","),
      "secondary",
    );
    const data = await readRawBytes(c, cfg.chunkBytes / 4);
    if (data.length === 0) {
      throw new GfsError("bad_request", "a record append needs a body");
    }
    checkLease(handle, q.version);
    const r = await appenderOf(handle).submit({
      version: q.version,
      secondaries,
      data,
    });
    if ("error" in r) throw r.error;
    return c.json({ offset: r.offset });
  });

  app.post("/v1/chunks/:handle/apply-bytes", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, ApplyBytesQuerySchema);
    // The whole body first: waiting for our turn must not hold the sender.
    const data = await readRawBytes(c, cfg.chunkBytes);
    if (q.seq !== undefined) await waitTurn(handle, q.version, q.seq);
    let applied: Promise<number>;
    try {
      applied = store.write(handle, q.version, q.offset, data);
    } finally {
      if (q.seq !== undefined) markApplied(handle, q.version, q.seq);
    }
    await applied;
    return c.json({ ok: true });
  });

  app.post("/v1/chunks/:handle/apply", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const a = await readJson(c, ApplySchema);
    if (a.padTo === undefined && a.dataId === undefined) {
      throw new GfsError("bad_request", "apply needs dataId or padTo");
    }
    if (a.seq !== undefined) await waitTurn(handle, a.version, a.seq);
    let applied: Promise<number>;
    try {
      applied = a.padTo !== undefined
        ? store.write(handle, a.version, a.padTo, new Uint8Array(0))
        : store.write(handle, a.version, a.offset, staged(a.dataId!));
    } finally {
      // Queued in the store in number order: the next may queue now.
      if (a.seq !== undefined) markApplied(handle, a.version, a.seq);
    }
    await applied;
    if (a.dataId) staging.delete(a.dataId);
    return c.json({ ok: true });
  });

  app.post("/v1/chunks/:handle/version", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const v = await readJson(c, SetVersionSchema);
    const had = store.meta(handle)?.version;
    if (had !== undefined && v.version > had) abortForwards(handle);
    await serial(handle, () => store.setVersion(handle, v.version, v.create));
    if (v.leaseUntil !== undefined) {
      leases.set(handle, { version: v.version, expiresAt: v.leaseUntil });
    } else if ((leases.get(handle)?.version ?? v.version) < v.version) {
      leases.delete(handle);
    }
    return c.json({ ok: true });
  });

  app.get("/v1/chunks/:handle", need.read, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, readQuerySchema);
    try {
      // Every block is verified before the first byte goes out (so a bad
      // one is still an error status), then the blocks are sent as they
      // are: copying them into one buffer cost more than the HTTP stream.
      const parts = await store.readParts(
        handle,
        q.offset,
        q.length,
        q.version,
      );
      let bytes = 0;
      for (const p of parts) bytes += p.length;
      stats.reads++;
      stats.readBytes += bytes;
      const headers = {
        "content-type": "application/octet-stream",
        "content-length": String(bytes),
        "x-chunk-length": String(store.meta(handle)?.length ?? 0),
      };
      // A small read (a random block read: one or two 64 KiB blocks) goes
      // out as one buffer: a stream body costs more event-loop turns than
      // the copy, which matters for latency; large reads stream their blocks.
      if (bytes <= SMALL_READ_BYTES) {
        if (parts.length === 1) {
          return c.body(parts[0]! as Uint8Array<ArrayBuffer>, 200, headers);
        }
        const one = new Uint8Array(bytes);
        for (let k = 0, o = 0; k < parts.length; o += parts[k]!.length, k++) {
          one.set(parts[k]!, o);
        }
        return c.body(one, 200, headers);
      }
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(ctl) {
          if (i < parts.length) ctl.enqueue(parts[i++]!);
          else ctl.close();
        },
      });
      return c.body(body, 200, headers);
    } catch (e) {
      if (isGfsError(e, "corrupt")) reportCorrupt(handle);
      throw e;
    }
  });

  app.post("/v1/chunks/:handle/clone", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const cl = await readJson(c, CloneSchema);
    const [source] = await peerOrigins([cl.source], "clone source");
    const src = `${source}/v1/chunks/${handle}?version=${cl.version}`;
    const res = await fetch(src, {
      headers: authHeaders(peerToken),
      client,
      signal: AbortSignal.timeout(120_000),
    })
      .catch((e) => {
        throw new GfsError("unavailable", `cannot reach ${cl.source}: ${e}`);
      });
    await throwIfFailed(res, src);
    const data = new Uint8Array(await res.arrayBuffer());
    const length = await serial(handle, async () => {
      const m = store.meta(handle);
      if (m !== undefined) await store.delete(handle);
      await store.setVersion(handle, cl.version, true);
      return await store.write(handle, cl.version, 0, data);
    });
    return c.json({ length });
  });

  app.delete("/v1/chunks/:handle", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    await serial(handle, () => store.delete(handle));
    leases.delete(handle);
    forgetOrder(handle);
    forgetAppender(handle);
    return c.json({ ok: true });
  });

  app.get("/v1/health", need.read, (c) =>
    c.json({
      status: "ok",
      id,
      chunks: store.list().length,
      usedBytes: store.usedBytes,
      capacityBytes: cfg.capacityBytes,
    }));

  app.get("/metrics", need.read, (c) =>
    c.text(
      [
        "# TYPE gfs_chunkserver_chunks gauge",
        promLine("gfs_chunkserver_chunks", store.list().length, { id }),
        promLine("gfs_chunkserver_used_bytes", store.usedBytes, { id }),
        promLine("gfs_chunkserver_capacity_bytes", cfg.capacityBytes, { id }),
        "# TYPE gfs_chunkserver_reads_total counter",
        promLine("gfs_chunkserver_reads_total", stats.reads, { id }),
        promLine("gfs_chunkserver_read_bytes_total", stats.readBytes, { id }),
        promLine("gfs_chunkserver_writes_total", stats.writes, { id }),
        promLine("gfs_chunkserver_write_bytes_total", stats.writeBytes, { id }),
        promLine("gfs_chunkserver_corrupt_replicas_total", stats.corrupt, {
          id,
        }),
      ].join("\n") + "\n",
      200,
      { "content-type": "text/plain; version=0.0.4" },
    ));

  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    onListen: () => {},
    ...tlsServeOptions(access.tls),
  }, app.fetch);
  url = `${access.scheme}://${cfg.host}:${server.addr.port}`;

  /** Chunks whose deletion (asked by the master) is queued. */
  const deleting = new Set<number>();
  const heartbeat = async () => {
    const now = Date.now();
    const extend: number[] = [];
    for (const [h, l] of leases) {
      if (l.expiresAt <= now) {
        leases.delete(h);
        continue;
      }
      const last = lastMutation.get(h) ?? 0;
      if (last > now - EXTEND_IF_MUTATED_WITHIN_MS) extend.push(h);
    }
    const reply = await masters.call(
      `/v1/heartbeat`,
      HeartbeatReplySchema,
      {
        body: {
          id,
          url,
          rack: cfg.rack,
          capacityBytes: cfg.capacityBytes,
          usedBytes: store.usedBytes,
          load: stats.inflight,
          chunks: store.list(),
          extend,
          chunkBytes: cfg.chunkBytes,
        },
        timeoutMs: Math.max(2000, cfg.heartbeatMs * 3),
        signal: closing.signal,
      },
    );
    if (reply.peers !== undefined) setPeers(reply.peers);
    for (const h of reply.delete) {
      leases.delete(h);
      forgetOrder(h);
      forgetAppender(h);
      // Not awaited: the chunk's queue may hold a mutation waiting on a
      // partitioned peer for up to a minute, and a heartbeat loop stuck
      // behind it would get this server declared dead (found by
      // gfs_partition_test.ts). Asked again meanwhile, it is queued once.
      if (deleting.has(h)) continue;
      deleting.add(h);
      serial(h, () => store.delete(h)).catch(() => {}).finally(() =>
        deleting.delete(h)
      );
    }
    for (const l of reply.leases) {
      // The reply may predate a newer grant (version bump) made meanwhile:
      // only extend the lease it was about.
      const cur = leases.get(l.handle);
      if (cur !== undefined && cur.version === l.version) {
        cur.expiresAt = Math.max(cur.expiresAt, l.expiresAt);
      }
    }
    for (const [k, s] of staging) {
      if (s.at < now - STAGING_TTL_MS) staging.delete(k);
    }
  };

  const loops: Promise<void>[] = [];
  loops.push((async () => {
    let refused = "";
    while (!stopped) {
      await heartbeat().then(() => refused = "", (e) => {
        // An unreachable master is routine (restarts, elections); a
        // refusal is a misconfiguration, said once on stderr.
        // (`unauthorized`: another cell's peer secret, i.e. another --auth-dir.)
        const refusal = isGfsError(e, "conflict") ||
          isGfsError(e, "unauthorized");
        if (refusal && e.message !== refused) {
          refused = e.message;
          console.error(
            `chunkserver ${id}: the master refuses it: ${e.message}${
              isGfsError(e, "unauthorized")
                ? " (this chunkserver's peer secret is not the cell's: start every process of the cell with the same --auth-dir)"
                : ""
            }`,
          );
        }
      });
      await sleep(cfg.heartbeatMs, () => stopped);
    }
  })());
  if (cfg.scrubPauseMs > 0) {
    loops.push((async () => {
      while (!stopped) {
        for (const [h] of store.list()) {
          if (stopped) break;
          try {
            await store.verify(h);
          } catch (e) {
            if (isGfsError(e, "corrupt")) await reportCorrupt(h);
          }
          await sleep(cfg.scrubPauseMs, () => stopped);
        }
        await store.maybeCompact().catch(() => false);
        await sleep(Math.max(cfg.scrubPauseMs, 1000), () => stopped);
      }
    })());
  }

  return {
    id,
    url,
    store,
    async close() {
      stopped = true;
      closing.abort();
      await server.shutdown();
      await Promise.allSettled(loops);
      await store.close();
      client?.close();
    },
  };
}

/** A record waiting for its chunk's next group commit. */
interface PendingRecord {
  version: number;
  /** Origins of the secondaries, as the lease holder was told. */
  secondaries: string[];
  /** The framed record. */
  data: Uint8Array;
}

/** Where a record landed, or why it did not. */
type RecordResult = { offset: number } | { error: GfsError };

/** `scheme://host:port` of an http(s) URL, or null for anything else. */
function originOf(u: string): string | null {
  try {
    const url = new URL(u);
    return url.protocol === "http:" || url.protocol === "https:"
      ? url.origin
      : null;
  } catch {
    return null;
  }
}

async function loadOrMakeId(dir: string): Promise<string> {
  const path = `${dir}/id`;
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (/^[A-Za-z0-9._-]+$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = `cs-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(path, id);
  return id;
}

/** Sleeps up to `ms`, waking early (every 50 ms check) once `stop()` is true. */
async function sleep(ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!stop() && Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(50, end - Date.now())));
  }
}

/**
 * Runs `send` against every secondary at once and splits them by outcome
 * (a primary reports the failed ones instead of failing the mutation).
 */
async function fanOut(
  secondaries: readonly string[],
  send: (s: string) => Promise<void>,
): Promise<{ ok: string[]; failed: string[] }> {
  const results = await Promise.all(secondaries.map(async (s) => {
    try {
      await send(s);
      return { s, ok: true };
    } catch {
      return { s, ok: false };
    }
  }));
  return {
    ok: results.filter((r) => r.ok).map((r) => r.s),
    failed: results.filter((r) => !r.ok).map((r) => r.s),
  };
}
