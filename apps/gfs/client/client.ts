import { GfsError, isGfsError } from "../shared/gfs_error.ts";
import {
  fetchJson,
  type FetchJsonOptions,
  MasterEndpoints,
  parseResponse,
  throwIfFailed,
} from "../shared/http_json.ts";
import {
  AppendedSchema,
  CreatedSchema,
  ExistsSchema,
  type FileInfo,
  FileInfoSchema,
  ListingSchema,
  type Located,
  LocateSchema,
  OkSchema,
  PushedSchema,
  type WriteTarget,
  WriteTargetSchema,
  WrittenSchema,
} from "../shared/messages.ts";
import { writeQuorum } from "../master/placement.ts";
import type { ByteRange } from "./range_header.ts";
import {
  frameRecord,
  RECORD_HEADER_BYTES,
  scanRecords,
} from "./record_format.ts";
import { z } from "zod";
import { authHeaders, Http1Client } from "@strata/edge";
import { DataPorts } from "./data_connection.ts";
import { BulkPorts } from "./bulk_connection.ts";
import { PortDiscovery } from "./port_discovery.ts";
import {
  DATA_READ_MAX_BYTES,
  DATA_RECORD_MAX_BYTES,
} from "../shared/data_protocol.ts";

/** Bytes fetched from a chunkserver per read request. */
export const READ_PIECE_BYTES = 4 * 2 ** 20;
/** Read pieces fetched ahead of the consumer. */
export const READ_AHEAD = 3;
/** Piece buffers a client keeps between downloads (4 MiB each). */
const PIECE_POOL_MAX = READ_AHEAD + 1;

/** How a client calls the master's RPCs (HTTP with failover, or in process). */
export interface MasterCaller {
  /** The master believed to serve. */
  readonly current: string;
  /**
   * Calls `pathAndQuery` (starting with "/") and validates the answer.
   * @throws GfsError from the master, or `unavailable`.
   */
  call<S extends z.ZodType>(
    pathAndQuery: string,
    schema: S,
    options?: FetchJsonOptions,
  ): Promise<z.infer<S>>;
}

/** Options of {@link GfsClient.upload}. */
export interface UploadOptions {
  /** Replication factor (default: the master's). */
  replication?: number;
  /** Refuse (and abandon) uploads larger than this, bytes. */
  maxBytes?: number;
}

/** Result of an upload. */
export interface UploadResult {
  /** Bytes stored. */
  length: number;
  /** Chunks the file occupies. */
  chunks: number;
}

/**
 * A location cache entry: when it was asked (or learned), the answer, and
 * the answer itself once it has come.
 */
interface LocationEntry {
  at: number;
  located: Promise<Located>;
  value?: Located;
}

/** A streaming download. */
export interface Download {
  /** Bytes the stream will yield. */
  length: number;
  /**
   * The bytes, as a byte stream (BYOB readers supported); memory stays
   * within the pieces read ahead.
   */
  stream: ReadableStream<Uint8Array>;
}

/** Anything an upload can read from. */
export type ByteSource =
  | Uint8Array
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

/**
 * The GFS client: metadata from the master, data straight to and from
 * chunkservers. Uploads and downloads stream, holding at most two chunks
 * (upload) or one read piece (download) in memory.
 */
export class GfsClient {
  /** The master(s) this client talks to, with failover between them. */
  readonly masters: MasterCaller;
  /** Chunk locations by path for positioned reads (see {@link GfsClient.pread}). */
  readonly #locations = new Map<string, LocationEntry>();
  /** Connections to the chunkservers' data ports (null: HTTP only). */
  readonly #ports: DataPorts | null;
  /** Connections to the chunkservers' bulk ports (null: HTTP only). */
  readonly #bulk: BulkPorts | null;
  /** What the chunkserver calls need: token, fetch client, data ports. */
  readonly #node: NodeCall;
  /**
   * Download piece buffers kept between downloads: on this VM new memory
   * faults on first touch (~12 ms per MiB), so a BYOB reader's download
   * reuses warm buffers instead of fresh ones.
   */
  readonly #piecePool: Uint8Array[] = [];
  /** Kept-alive connections for master calls (`http1` option), else none. */
  readonly #http1: Http1Client | undefined;
  /** Record-append targets by path (see {@link GfsClient.append}). */
  readonly #appendTargets = new Map<
    string,
    { promise: Promise<WriteTarget>; value?: WriteTarget }
  >();

  /**
   * Creates a client; nothing is contacted until the first call.
   * @param master the master's base URL, or every master of a replicated
   *   group (array or comma-separated): calls fail over between them.
   * @param caller how master RPCs are made (default: HTTP to `master`,
   *   with failover); the master's own gateway answers them in process.
   */
  constructor(
    master: string | readonly string[],
    readonly options: {
      retries?: number;
      /**
       * How long {@link GfsClient.pread} trusts cached chunk locations, ms
       * (default 30 s; a failed read refreshes them at once).
       */
      locationTtlMs?: number;
      /**
       * How long one push or write of a chunk piece may take before the
       * chunk is retried on fresh servers, ms (default 120 s). A silent
       * network partition is noticed only through it.
       */
      pushTimeoutMs?: number;
      /** How long one read from one replica may take before the next is tried, ms (default 60 s). */
      readTimeoutMs?: number;
      /** How long one record append may take before it is retried, ms (default 60 s). */
      appendTimeoutMs?: number;
      /**
       * Use the chunkservers' data ports (framed TCP) for reads and record
       * appends where they have one (default true); false: HTTP only.
       */
      dataPort?: boolean;
      /**
       * Use the chunkservers' bulk ports (raw bytes on TCP) for uploads,
       * reads larger than `dataPortMaxReadBytes`, and smaller reads while a
       * pooled bulk connection to the server is free, where they have one
       * (default true); false: large reads and uploads go over HTTP, small
       * reads over the data port.
       */
      bulkPort?: boolean;
      /** Data port connections per chunkserver at most (default 2). */
      connectionsPerServer?: number;
      /**
       * Reads up to this size use the data port when no bulk connection is
       * free, larger ones the bulk port or HTTP (default 256 KiB, at most
       * 4 MiB): the transport copies a payload several times (CBOR, frame,
       * call id, CRC), which costs more for bulk bytes (see the README's
       * data port section).
       */
      dataPortMaxReadBytes?: number;
      /**
       * Bearer token for the masters and chunkservers: the cell's
       * `read.token` (reads), `write.token` or `admin.token` (see
       * `readToken` in @strata/edge).
       */
      token?: string;
      /**
       * A fetch client trusting the cell's TLS certificate, for masters and
       * chunkservers serving HTTPS with a private CA (`tlsClient(caFile)`
       * of @strata/edge).
       */
      httpClient?: Deno.HttpClient;
      /**
       * Make master calls to `http://` masters over a kept-alive HTTP/1.1
       * client (@strata/edge's `Http1Client`) instead of `fetch` (default
       * false): about a quarter of the CPU per call, for a process that
       * calls the master per write (a tablet server's commit log checks
       * its seal and fences after every block). Its connections are
       * unref'd; {@link GfsClient.close} closes them.
       */
      http1?: boolean;
    } = {},
    caller?: MasterCaller,
  ) {
    // One health call per server tells both pools their port.
    const discovery = new PortDiscovery(options.token, options.httpClient);
    this.#ports = options.dataPort === false ? null : new DataPorts({
      token: options.token,
      httpClient: options.httpClient,
      connectionsPerServer: options.connectionsPerServer,
      discovery,
    });
    this.#bulk = options.bulkPort === false ? null : new BulkPorts({
      token: options.token,
      httpClient: options.httpClient,
      discovery,
    });
    this.#node = {
      ...options,
      ports: this.#ports,
      bulk: this.#bulk,
      portReadBytes: Math.min(
        DATA_READ_MAX_BYTES,
        options.dataPortMaxReadBytes ?? 256 * 1024,
      ),
    };
    this.#http1 = options.http1 === true && caller === undefined
      ? new Http1Client()
      : undefined;
    this.masters = caller ??
      new MasterEndpoints(
        master,
        undefined,
        options.token,
        options.httpClient,
        this.#http1,
      );
  }

  /** The master currently believed to serve. */
  get master(): string {
    return this.masters.current;
  }

  /**
   * Closes the data port connections and the master connections of the
   * `http1` option (idle ones never keep a program alive; this is for
   * tests and long-lived processes that drop a client). Master calls made
   * after it go through `fetch`.
   */
  async close(): Promise<void> {
    if (this.masters instanceof MasterEndpoints) {
      this.masters.http1 = undefined;
    }
    this.#http1?.close();
    await this.#ports?.close();
    await this.#bulk?.close();
    this.#piecePool.length = 0;
  }

  /**
   * Uploads a file: creates a pending record, writes each chunk along its
   * replica chain (retrying a chunk on fresh servers if fewer than a write
   * quorum took it), then completes the file. The file is invisible to
   * readers until completion; on failure the pending file is abandoned.
   * @throws GfsError `conflict` (exists), `too_large`, `unavailable`, `bad_request`.
   */
  async upload(
    path: string,
    source: ByteSource,
    options: UploadOptions = {},
  ): Promise<UploadResult> {
    // Bytes in hand: chunk 0 certainly exists, so the master allocates it
    // with the create (one round trip and one op log write fewer).
    const allocate = source instanceof Uint8Array && source.length > 0 &&
      source.length <= (options.maxBytes ?? Infinity);
    const created = await this.masters.call(`/v1/rpc/create`, CreatedSchema, {
      body: {
        path,
        replication: options.replication,
        mode: "upload",
        allocate,
        // Over the bulk ports the write can carry a grant: the master then
        // answers without creating the chunk on the chunkservers first.
        grant: this.#bulk !== null,
      },
    });
    const quorum = writeQuorum(created.replication);
    const done: { handle: number; length: number; servers: string[] }[] = [];
    /** Each chunk's version as written (for the location cache). */
    const versions: number[] = [];
    const inflight: Promise<void>[] = [];
    let failure: unknown = null;
    let total = 0;
    let index = 0;
    try {
      for await (const piece of chunked(source, created.chunkBytes)) {
        total += piece.length;
        if (options.maxBytes !== undefined && total > options.maxBytes) {
          throw new GfsError(
            "too_large",
            `upload exceeds the limit of ${options.maxBytes} bytes`,
          );
        }
        if (failure) throw failure;
        const i = index++;
        const target = i === 0 && created.first
          ? created.first
          : await this.#allocate(path, created.fileId, i, this.#bulk !== null);
        inflight.push(
          this.#writeChunk(path, created.fileId, i, piece, target, quorum).then(
            ({ version, ...r }) => {
              done[i] = r;
              versions[i] = version;
            },
            (e) => void (failure ??= e),
          ),
        );
        if (inflight.length >= 2) await inflight.shift();
      }
      await Promise.all(inflight);
      if (failure) throw failure;
      await this.masters.call(`/v1/rpc/complete`, OkSchema, {
        body: { path, fileId: created.fileId, chunks: done },
        timeoutMs: 60_000,
      });
      // The writer knows where its chunks are: a read of the file can
      // start from these locations while the master confirms them.
      this.#remember(path, {
        fileId: created.fileId,
        length: total,
        mode: "upload",
        chunkBytes: created.chunkBytes,
        chunks: done.map((d, i) => ({
          handle: d.handle,
          version: versions[i]!,
          length: d.length,
          replicas: d.servers,
        })),
      });
      return { length: total, chunks: done.length };
    } catch (e) {
      await Promise.allSettled(inflight);
      await this.masters.call(`/v1/rpc/abandon`, OkSchema, {
        body: { path, fileId: created.fileId },
      }).catch(() => {});
      throw e;
    }
  }

  /**
   * Streams a file (or a range of it) from its chunkservers, trying each
   * replica in turn and asking the master again when all fail. The stream
   * is a byte stream: a BYOB reader (`getReader({ mode: "byob" })`) gets
   * the bytes copied into its own buffer and the client reuses its piece
   * buffers (a few kept between downloads), so a download touches no new
   * memory; a default reader gets each piece in a buffer of its own.
   * The master is asked for the locations every time; when the client
   * already knows them (its own upload, an earlier read), the first pieces
   * are fetched meanwhile and kept only if the master names the same
   * chunks (see #plan).
   * @throws GfsError `not_found`, `range_not_satisfiable`.
   */
  async download(path: string, range?: ByteRange): Promise<Download> {
    let plan = await this.#plan(path, range, Infinity, true);
    /** Piece buffers a BYOB reader has emptied, reused for the next pieces. */
    const free: Uint8Array[] = [];
    // Read-ahead: up to READ_AHEAD pieces in flight, so memory stays bounded.
    const ahead: Promise<{ bytes: Uint8Array; buf: Uint8Array }>[] = [];
    let next = 0;
    const topUp = () => {
      while (ahead.length < READ_AHEAD && next < plan.pieces.length) {
        const buf = free.pop() ?? this.#takePiece();
        const p = plan.fetch(next++, buf).then((bytes) => ({ bytes, buf }));
        p.catch(() => {}); // surfaced when awaited in order
        ahead.push(p);
      }
    };
    /** Waits out the pieces in flight and takes their buffers back. */
    const drain = async () => {
      for (const p of ahead.splice(0)) {
        await p.then(({ buf }) => free.push(buf), () => {});
      }
    };
    // From cached locations, the first pieces are fetched while the master
    // confirms them (see #plan); if it does not, they are read again.
    try {
      if (plan.speculative) topUp();
      if (!await plan.confirmed) {
        await drain();
        plan = await this.#plan(path, range);
        next = 0;
      }
    } catch (e) {
      await drain();
      for (const b of free.splice(0)) this.#givePiece(b);
      throw e;
    }
    let cur: { bytes: Uint8Array; buf: Uint8Array; at: number } | null = null;
    const giveBack = () => {
      for (const b of free.splice(0)) this.#givePiece(b);
    };
    const stream = new ReadableStream({
      type: "bytes",
      pull: async (ctl) => {
        try {
          if (cur === null) {
            topUp();
            const p = ahead.shift();
            if (p === undefined) {
              giveBack();
              ctl.close();
              ctl.byobRequest?.respond(0);
              return;
            }
            cur = { ...await p, at: 0 };
          }
          const req = ctl.byobRequest;
          if (req?.view) {
            // The reader's own buffer: copy, and reuse ours once empty.
            const view = new Uint8Array(
              req.view.buffer,
              req.view.byteOffset,
              req.view.byteLength,
            );
            const n = Math.min(view.length, cur.bytes.length - cur.at);
            view.set(cur.bytes.subarray(cur.at, cur.at + n));
            cur.at += n;
            if (cur.at === cur.bytes.length) {
              free.push(cur.buf);
              cur = null;
            }
            req.respond(n);
          } else if (cur.at === 0 && cur.bytes.length === cur.buf.length) {
            // A default reader takes a whole piece buffer as it is.
            const whole = cur.bytes;
            cur = null;
            ctl.enqueue(whole);
          } else {
            // Part of a (pooled, larger) buffer: the reader gets a copy.
            const rest = cur.bytes.slice(cur.at);
            free.push(cur.buf);
            cur = null;
            ctl.enqueue(rest);
          }
          topUp();
        } catch (e) {
          ctl.error(e);
        }
      },
      cancel: async () => {
        // Buffers come back once no read can land in them any more.
        next = plan.pieces.length;
        if (cur !== null) free.push(cur.buf);
        cur = null;
        for (const p of ahead.splice(0)) {
          await p.then(({ buf }) => free.push(buf), () => {});
        }
        giveBack();
      },
    }, { highWaterMark: 0 });
    return { length: plan.length, stream };
  }

  /** A piece buffer from the client's pool, or a new one. */
  #takePiece(): Uint8Array {
    return this.#piecePool.pop() ?? new Uint8Array(READ_PIECE_BYTES);
  }

  /** Returns a piece buffer to the pool (bounded; the rest is dropped). */
  #givePiece(buf: Uint8Array): void {
    if (
      buf.length === READ_PIECE_BYTES &&
      this.#piecePool.length < PIECE_POOL_MAX
    ) this.#piecePool.push(buf);
  }

  /**
   * Reads a file from `offset` into `into`, straight from the chunkservers'
   * sockets (no copy and no new memory where they have bulk ports), with
   * up to {@link READ_AHEAD} pieces in flight. Reads
   * `min(into.length, file length - offset)` bytes; retries as
   * {@link download}.
   * @returns the number of bytes read.
   * @throws GfsError `not_found`, `range_not_satisfiable` (offset past the
   *   end), `bad_request` (offset not a non-negative integer).
   */
  async readInto(
    path: string,
    into: Uint8Array,
    offset = 0,
  ): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new GfsError("bad_request", `bad offset ${offset}`);
    }
    let plan = await this.#plan(path, { offset }, into.length, true);
    if (!await plan.fillAll(into)) {
      plan = await this.#plan(path, { offset }, into.length);
      await plan.fillAll(into);
    }
    return plan.length;
  }

  /**
   * The pieces of `range` of `path`, and how to fetch one into a buffer.
   * The locations come fresh from the master (a path deleted and written
   * again must not read as its old chunks, which outlive the trash delay)
   * and renew the cache {@link pread} uses. With `speculate` and the
   * locations of an uploaded file in the cache, the plan is made from the
   * cache at once and the master is asked at the same time: the caller
   * may fetch pieces meanwhile, and keeps them only if `confirmed`
   * resolves true (the master names the same file, length and chunk
   * handles and versions: an uploaded file's chunks never change and a
   * handle is never reused, so those bytes are the file's). On false it
   * plans again; a rejection (`not_found`: the file is gone) is the
   * answer.
   */
  async #plan(
    path: string,
    range?: Partial<ByteRange>,
    max = Infinity,
    speculate = false,
  ) {
    const warm = speculate ? this.#warm(path) : undefined;
    const fresh = this.#located(path, true);
    if (warm !== undefined) {
      fresh.catch(() => {}); // surfaced through `confirmed`
      const offset = range?.offset ?? 0;
      const length = range?.length ??
        Math.min(max, Math.max(0, warm.length - offset));
      // (Past the cached end: the file may have changed; the master says.)
      if (offset + length <= warm.length) {
        return this.#pieces(path, warm, offset, length, fresh);
      }
    }
    const loc = await fresh;
    const offset = range?.offset ?? 0;
    const length = range?.length ??
      Math.min(max, Math.max(0, loc.length - offset));
    if (offset + length > loc.length) {
      throw new GfsError(
        "range_not_satisfiable",
        `range past the end (${loc.length} bytes)`,
      );
    }
    return this.#pieces(path, loc, offset, length, null);
  }

  /**
   * {@link #plan}'s pieces of `[offset, offset + length)` planned from
   * `planned`; `fresh`, when given, is the master's answer that must
   * confirm them.
   */
  #pieces(
    path: string,
    planned: Located,
    offset: number,
    length: number,
    fresh: Promise<Located> | null,
  ) {
    let loc = planned;
    const end = offset + length;
    // Pieces to fetch: never across a chunk boundary.
    const pieces: { ci: number; within: number; n: number; pos: number }[] = [];
    for (let pos = offset; pos < end;) {
      const ci = Math.floor(pos / loc.chunkBytes);
      const within = pos - ci * loc.chunkBytes;
      const n = Math.min(READ_PIECE_BYTES, end - pos, loc.chunkBytes - within);
      pieces.push({ ci, within, n, pos });
      pos += n;
    }
    let sure = fresh === null;
    const confirmed = fresh === null ? Promise.resolve(true) : fresh.then(
      (f) => {
        sure = sameChunks(planned, f, pieces);
        // The same chunks: later tries go to the replicas the master names
        // now (a server that held them at upload may be gone).
        if (sure) loc = f;
        return sure;
      },
    );
    confirmed.catch(() => {}); // surfaced by the caller
    /** One try of piece `k`: each replica in turn. */
    const once = async (k: number, into: Uint8Array): Promise<Uint8Array> => {
      const { ci, within, n } = pieces[k]!;
      const chunk = loc.chunks[ci];
      if (!chunk) throw new GfsError("unavailable", `no chunk ${ci}`);
      // Rotate the first replica tried, spreading pieces over replicas.
      const r = chunk.replicas;
      const rotated = {
        ...chunk,
        replicas: [
          ...r.slice(k % Math.max(1, r.length)),
          ...r.slice(0, k % Math.max(1, r.length)),
        ],
      };
      const bytes = await readPiece(
        rotated,
        within,
        n,
        this.#readTimeoutMs,
        this.#node,
        into,
      );
      if (bytes.length !== n) {
        throw new GfsError(
          "unavailable",
          `short read of chunk ${chunk.handle}`,
        );
      }
      return bytes;
    };
    /** Piece `k` into `into` (at its start). @returns the bytes, a view of `into`. */
    const fetch = async (k: number, into: Uint8Array): Promise<Uint8Array> => {
      let lastErr: unknown = null;
      if (!sure) {
        // Unconfirmed locations get one try, without the backoff: if it
        // fails and the master then confirms them, the retries follow.
        try {
          return await once(k, into);
        } catch (e) {
          lastErr = e;
          if (!await confirmed) throw e; // the caller plans again
        }
      }
      for (let attempt = 0; attempt < (this.options.retries ?? 20); attempt++) {
        try {
          return await once(k, into);
        } catch (e) {
          lastErr = e;
        }
        await new Promise((r) =>
          setTimeout(r, Math.min(2000, 100 * (attempt + 1)))
        );
        try {
          loc = await this.#located(path, true);
        } catch (e) {
          lastErr = e;
        }
      }
      throw lastErr ?? new GfsError("unavailable", "no replica answered");
    };
    /**
     * Every piece into `out` (at least `length` bytes), READ_AHEAD at a
     * time. @returns `confirmed` (false: `out` holds nothing to keep).
     */
    const fillAll = async (out: Uint8Array): Promise<boolean> => {
      let k = 0;
      const worker = async () => {
        while (k < pieces.length) {
          const i = k++;
          const at = pieces[i]!.pos - offset;
          await fetch(i, out.subarray(at, at + pieces[i]!.n));
        }
      };
      const done = await Promise.allSettled(
        Array.from({ length: Math.min(READ_AHEAD, pieces.length) }, worker),
      );
      if (!await confirmed) return false;
      for (const d of done) if (d.status === "rejected") throw d.reason;
      return true;
    };
    return { length, pieces, fetch, fillAll, confirmed, speculative: !sure };
  }

  /**
   * Positioned read (like `pread`): `length` bytes at `offset`, for random
   * block reads of large files (an SSTable's index and data blocks). The
   * chunk locations of `path` are cached (GFS clients do the same) for
   * `locationTtlMs`, so a read is one request to one chunkserver; a read
   * that fails or lies past the cached length asks the master again. A
   * file deleted meanwhile stays readable through the cache until it
   * expires (its chunks outlive the trash delay).
   * @throws GfsError `not_found`, `range_not_satisfiable` (past the end),
   *   `unavailable` after retries.
   */
  async pread(
    path: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array> {
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) ||
      offset < 0 || length < 0
    ) {
      throw new GfsError(
        "bad_request",
        `bad range: offset ${offset}, length ${length}`,
      );
    }
    let lastErr: unknown = null;
    for (let attempt = 0; attempt < (this.options.retries ?? 20); attempt++) {
      let loc: Located;
      try {
        loc = await this.#located(path, attempt > 0);
      } catch (e) {
        if (isGfsError(e, "not_found") || isGfsError(e, "bad_request")) throw e;
        lastErr = e;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
        continue;
      }
      // An append file's length at the master trails its chunkservers
      // (learned from heartbeats): the replicas decide where it ends.
      if (loc.mode === "upload" && offset + length > loc.length) {
        // The cache may be older than the file: ask the master once.
        if (attempt === 0) continue;
        throw new GfsError(
          "range_not_satisfiable",
          `range past the end (${loc.length} bytes)`,
        );
      }
      try {
        return await readRange(
          loc,
          offset,
          length,
          this.#readTimeoutMs,
          this.#node,
        );
      } catch (e) {
        lastErr = e;
        if (isGfsError(e, "range_not_satisfiable")) {
          if (attempt === 0) continue;
          throw e;
        }
        if (attempt > 0) {
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
        }
      }
    }
    throw lastErr ?? new GfsError("unavailable", "no replica answered");
  }

  /** Puts known locations of `path` in the cache (as a `locate` answer would). */
  #remember(path: string, located: Located): void {
    this.#cache(path, {
      at: performance.now(),
      located: Promise.resolve(located),
      value: located,
    });
  }

  /** Sets a location cache entry; the cache is bounded (the oldest goes). */
  #cache(
    path: string,
    entry: LocationEntry,
  ): void {
    this.#locations.set(path, entry);
    if (this.#locations.size > 4096) {
      // Map keeps insertion order.
      this.#locations.delete(this.#locations.keys().next().value!);
    }
  }

  /**
   * The cached locations of an uploaded file, when known and younger than
   * `locationTtlMs`: a read may start from them while the master confirms
   * them ({@link GfsClient.download}).
   */
  #warm(path: string): Located | undefined {
    const e = this.#locations.get(path);
    if (
      e?.value === undefined || e.value.mode !== "upload" ||
      performance.now() - e.at >= (this.options.locationTtlMs ?? 30_000)
    ) return undefined;
    return e.value;
  }

  /** Cached (or, with `fresh`, renewed) locations of `path`. */
  #located(path: string, fresh: boolean): Promise<Located> {
    const now = performance.now();
    const cached = this.#locations.get(path);
    if (
      !fresh && cached !== undefined &&
      now - cached.at < (this.options.locationTtlMs ?? 30_000)
    ) return cached.located;
    const entry: LocationEntry = {
      at: now,
      located: this.locate(path),
    };
    this.#cache(path, entry);
    entry.located.then((l) => void (entry.value = l), () => {
      if (this.#locations.get(path) === entry) this.#locations.delete(path);
    });
    return entry.located;
  }

  /**
   * Downloads a whole file (or range) into memory: one buffer of the
   * file's length, each piece read straight into its place.
   */
  async readAll(path: string, range?: ByteRange): Promise<Uint8Array> {
    let plan = await this.#plan(path, range, Infinity, true);
    let out = new Uint8Array(plan.length);
    if (!await plan.fillAll(out)) {
      plan = await this.#plan(path, range);
      out = new Uint8Array(plan.length);
      await plan.fillAll(out);
    }
    return out;
  }

  /** Where a file's chunks are. @throws GfsError `not_found`. */
  locate(path: string): Promise<Located> {
    return this.masters.call(
      `/v1/rpc/locate?path=${encodeURIComponent(path)}`,
      LocateSchema,
    );
  }

  /** Files under a prefix. */
  async ls(prefix = "/"): Promise<FileInfo[]> {
    return (await this.masters.call(
      `/v1/ls?prefix=${encodeURIComponent(prefix)}`,
      ListingSchema,
    )).files;
  }

  /** A file's metadata. @throws GfsError `not_found`. */
  stat(path: string): Promise<FileInfo> {
    return this.masters.call(`/v1/stat${encodePath(path)}`, FileInfoSchema);
  }

  /**
   * Whether each of `paths` is a file {@link stat} would find, in one
   * master call (one linearizable read, like `stat`). At most 256 paths.
   * @throws GfsError `bad_request` for a malformed path or too many.
   */
  async exists(paths: readonly string[]): Promise<boolean[]> {
    const { exists } = await this.masters.call("/v1/exists", ExistsSchema, {
      body: { paths },
    });
    if (exists.length !== paths.length) {
      throw new GfsError("internal", "the master answered for other paths");
    }
    return exists;
  }

  /** Deletes a file (moves it to the trash). @returns its trash path. */
  async remove(path: string): Promise<string> {
    const r = await this.masters.call(
      `/v1/files${encodePath(path)}`,
      z.object({ trashPath: z.string() }),
      {
        method: "DELETE",
      },
    );
    return r.trashPath;
  }

  /** Restores a file from the trash. @returns its original path. */
  async undelete(trashPath: string): Promise<string> {
    return (await this.masters.call(
      `/v1/undelete`,
      z.object({ path: z.string() }),
      { body: { trashPath } },
    )).path;
  }

  /**
   * Record append (at least once, atomic): the record lands whole at an
   * offset the primary chooses, durable on every replica of the chunk's
   * lease before the call returns, or the call retries. A record may be at
   * most a quarter of a chunk (minus 12 bytes of framing).
   *
   * Made for many small records (commit logs): the record goes inline to
   * the primary in one request; the primary groups the records that arrive
   * while it makes the last batch durable (group commit per chunk) and
   * sends the batch to the secondaries, so concurrent appenders share
   * fsyncs. The chunk's write target is cached per path (no master call
   * per record) and renewed only after a failure or a full chunk.
   * @returns the chunk and offset where it landed.
   * @throws GfsError `too_large`, `unavailable` after retries.
   */
  async append(
    path: string,
    record: Uint8Array,
    replication?: number,
  ): Promise<{ handle: number; offset: number }> {
    const framed = frameRecord(record);
    let t = await this.#currentAppendTarget(path, replication);
    if (framed.length > t.chunkBytes / 4) {
      throw new GfsError(
        "too_large",
        `a record may be at most ${
          t.chunkBytes / 4 - RECORD_HEADER_BYTES
        } bytes`,
      );
    }
    let lastErr: unknown = null;
    for (let attempt = 0; attempt < (this.options.retries ?? 20); attempt++) {
      try {
        const timeoutMs = this.options.appendTimeoutMs ?? 60_000;
        if (this.#ports !== null && framed.length <= DATA_RECORD_MAX_BYTES) {
          const r = await this.#ports.append(t.primary, {
            handle: t.handle,
            version: t.version,
            secondaries: t.secondaries,
            data: framed,
          }, timeoutMs);
          if (r !== null) return { handle: t.handle, offset: r.offset };
        }
        const url =
          `${t.primary}/v1/chunks/${t.handle}/records?version=${t.version}&secondaries=${
            encodeURIComponent(t.secondaries.join(","))
          }`;
        let res: Response;
        try {
          res = await fetch(url, {
            method: "POST",
            headers: {
              ...authHeaders(this.options.token),
              "content-type": "application/octet-stream",
            },
            client: this.options.httpClient,
            body: framed as Uint8Array<ArrayBuffer>,
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (e) {
          throw new GfsError("unavailable", `cannot reach ${t.primary}: ${e}`);
        }
        const r = await parseResponse(res, AppendedSchema, url);
        return { handle: t.handle, offset: r.offset };
      } catch (e) {
        lastErr = e;
        if (isGfsError(e, "chunk_full")) {
          t = await this.#nextAppendTarget(path, replication, t, false);
          continue;
        }
        if (
          isGfsError(e, "too_large") || isGfsError(e, "bad_request") ||
          isGfsError(e, "forbidden")
        ) throw e;
        await new Promise((r) =>
          setTimeout(r, Math.min(1000, 50 * (attempt + 1)))
        );
        // A fresh lease (version bump) restarts mutation numbering and
        // leaves out replicas that did not take it, so a dead or lagging
        // replica stops failing every append.
        t = await this.#nextAppendTarget(path, replication, t, true)
          .catch(() => t);
      }
    }
    throw lastErr;
  }

  /** The cached write target for appends to `path` (asks the master once). */
  #currentAppendTarget(
    path: string,
    replication?: number,
  ): Promise<WriteTarget> {
    const cached = this.#appendTargets.get(path);
    if (cached !== undefined) return cached.promise;
    return this.#fetchAppendTarget(path, replication, undefined, false);
  }

  /**
   * A target after `stale` failed: the one another appender already got,
   * or a new one from the master (next chunk, or a renewed lease), asked
   * once however many appenders hit the same failure at once.
   */
  #nextAppendTarget(
    path: string,
    replication: number | undefined,
    stale: WriteTarget,
    renew: boolean,
  ): Promise<WriteTarget> {
    const cached = this.#appendTargets.get(path);
    if (
      cached !== undefined &&
      (cached.value === undefined || cached.value.handle !== stale.handle ||
        cached.value.version !== stale.version)
    ) return cached.promise;
    return this.#fetchAppendTarget(
      path,
      replication,
      renew ? undefined : stale.handle,
      renew,
    );
  }

  #fetchAppendTarget(
    path: string,
    replication: number | undefined,
    afterHandle: number | undefined,
    renew: boolean,
  ): Promise<WriteTarget> {
    const entry: { promise: Promise<WriteTarget>; value?: WriteTarget } = {
      promise: this.#appendTarget(path, replication, afterHandle, renew),
    };
    this.#appendTargets.set(path, entry);
    entry.promise.then((v) => entry.value = v, () => {
      if (this.#appendTargets.get(path) === entry) {
        this.#appendTargets.delete(path);
      }
    });
    return entry.promise;
  }

  /**
   * Every intact record of an append file, chunk by chunk (at least once:
   * a retried append can appear twice).
   */
  async *readRecords(path: string): AsyncGenerator<Uint8Array> {
    const loc = await this.locate(path);
    for (const chunk of loc.chunks) {
      let bytes: Uint8Array | null = null;
      for (let attempt = 0; attempt < 10 && bytes === null; attempt++) {
        try {
          bytes = await readPiece(
            chunk,
            0,
            loc.chunkBytes,
            this.#readTimeoutMs,
            this.#node,
          );
        } catch {
          await new Promise((r) => setTimeout(r, 200));
          const again = await this.locate(path);
          Object.assign(
            chunk,
            again.chunks.find((c) => c.handle === chunk.handle) ?? chunk,
          );
        }
      }
      if (bytes === null) {
        throw new GfsError(
          "unavailable",
          `chunk ${chunk.handle} is unreadable`,
        );
      }
      yield* scanRecords(bytes);
    }
  }

  get #readTimeoutMs(): number {
    return this.options.readTimeoutMs ?? 60_000;
  }

  #allocate(
    path: string,
    fileId: number,
    index: number,
    grant: boolean,
    avoid: readonly string[] = [],
  ): Promise<WriteTarget> {
    return this.masters.call(`/v1/rpc/allocate`, WriteTargetSchema, {
      body: {
        path,
        fileId,
        index,
        grant,
        ...(avoid.length > 0 ? { avoid: avoid.slice(-16) } : {}),
      },
    });
  }

  #appendTarget(
    path: string,
    replication?: number,
    afterHandle?: number,
    renew = false,
  ): Promise<WriteTarget> {
    return this.masters.call(`/v1/rpc/append-target`, WriteTargetSchema, {
      body: { path, create: true, replication, afterHandle, renew },
    });
  }

  async #writeChunk(
    path: string,
    fileId: number,
    index: number,
    data: Uint8Array,
    first: WriteTarget,
    quorum: number,
  ): Promise<
    { handle: number; version: number; length: number; servers: string[] }
  > {
    let t = first;
    let lastErr: unknown = null;
    let grant = this.#bulk !== null;
    // Servers a failed attempt went through: the master places the retry
    // elsewhere while others fit. Until it declares a cut-off server dead
    // (`--dead-after-ms`) it would otherwise place it again, and a client
    // whose push timeout is shorter could spend every attempt on it.
    const avoid = new Set<string>();
    for (let attempt = 0; attempt < 5; attempt++) {
      if (attempt > 0) {
        // A grant the chain cannot carry is no failure: allocate at once.
        if (!(lastErr instanceof GrantUnusable)) {
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
        try {
          t = await this.#allocate(path, fileId, index, grant, [...avoid]);
        } catch (e) {
          lastErr = e;
          continue;
        }
      }
      try {
        const servers = await writePieces(
          t,
          data,
          this.options.pushTimeoutMs ?? 120_000,
          this.#node,
        );
        if (servers.length >= quorum) {
          return {
            handle: t.handle,
            version: t.version,
            length: data.length,
            servers,
          };
        }
        for (const s of [t.primary, ...t.secondaries]) {
          if (!servers.includes(s)) avoid.add(s);
        }
        lastErr = new GfsError(
          "unavailable",
          `chunk ${index} reached ${servers.length} replicas; quorum ${quorum}`,
        );
      } catch (e) {
        lastErr = e;
        if (e instanceof GrantUnusable) grant = false;
        if (isGfsError(e, "too_large")) throw e;
        // The exchange with the primary failed (or timed out while the
        // primary waited on the chain): it is the one the client can name.
        if (!(e instanceof GrantUnusable)) avoid.add(t.primary);
      }
    }
    throw lastErr;
  }
}

/**
 * A target placed with a grant whose chain has a server without a bulk
 * port (a mixed cell): only a bulk write carries a grant, so the chunk
 * does not exist on its servers; the client allocates it again without.
 */
class GrantUnusable extends GfsError {
  constructor() {
    super(
      "unavailable",
      "a server of the chain has no bulk port to take the write grant",
    );
  }
}

/** How a client reaches chunkservers: its token and TLS trust. */
interface NodeCall {
  token?: string;
  httpClient?: Deno.HttpClient;
  /** Data port connections (reads use them where a server has one). */
  ports?: DataPorts | null;
  /** Reads up to this size may go over the data port (when no bulk connection is free). */
  portReadBytes?: number;
  /** Bulk port connections (larger reads and chunk writes use them where a server has one). */
  bulk?: BulkPorts | null;
}

/**
 * Writes one chunk's bytes as pieces of {@link WRITE_PIECE_BYTES}: each piece
 * goes to the primary's bulk port in one exchange (passed along the chain
 * while it arrives), or without bulk ports is pushed along the chain over
 * HTTP and then applied by the primary at its offset; up to
 * {@link PIECES_IN_FLIGHT} pieces are in flight, so sending the next piece
 * overlaps writing this one and chunkservers hold only pieces.
 * @returns the servers that applied every piece.
 */
async function writePieces(
  t: WriteTarget,
  data: Uint8Array,
  timeoutMs: number,
  call: NodeCall,
): Promise<string[]> {
  let ok: Set<string> | null = null;
  const offsets: number[] = [];
  for (let o = 0; o < Math.max(1, data.length); o += WRITE_PIECE_BYTES) {
    offsets.push(o);
  }
  let next = 0;
  const worker = async () => {
    while (next < offsets.length) {
      const offset = offsets[next++]!;
      const piece = data.subarray(offset, offset + WRITE_PIECE_BYTES);
      // The bulk port: one exchange, the bytes passed along the chain as
      // they arrive and acknowledged once durable (GFS's push and write).
      const viaBulk = call.bulk
        ? await call.bulk.write(
          t.primary,
          {
            handle: t.handle,
            version: t.version,
            offset,
            chain: t.secondaries,
            grant: t.grant,
          },
          piece,
          timeoutMs,
        )
        : null;
      if (viaBulk === null && t.grant !== undefined) throw new GrantUnusable();
      if (viaBulk !== null) {
        if (!viaBulk.includes(t.primary)) {
          throw new GfsError("unavailable", "primary did not write the data");
        }
        const these = new Set(viaBulk);
        ok = ok === null ? these : new Set([...ok].filter((s) => these.has(s)));
        continue;
      }
      const dataId = newDataId();
      const received = await push(
        [t.primary, ...t.secondaries],
        dataId,
        piece,
        timeoutMs,
        call,
      );
      if (!received.includes(t.primary)) {
        throw new GfsError("unavailable", "primary did not receive the data");
      }
      const w = await fetchJson(
        `${t.primary}/v1/chunks/${t.handle}/write`,
        WrittenSchema,
        {
          body: {
            dataId,
            version: t.version,
            offset,
            secondaries: t.secondaries.filter((s) => received.includes(s)),
          },
          timeoutMs,
          token: call.token,
          client: call.httpClient,
        },
      );
      const these = new Set(w.ok);
      ok = ok === null ? these : new Set([...ok].filter((s) => these.has(s)));
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(PIECES_IN_FLIGHT, offsets.length) }, worker),
  );
  return [...(ok ?? [])];
}

/** Bytes per pushed-and-written piece of a chunk. */
export const WRITE_PIECE_BYTES = 16 * 2 ** 20;
/** Pieces of one chunk in flight at once. */
export const PIECES_IN_FLIGHT = 3;

/** Pushes `data` along `chain` (pipelined). @returns the servers that got it. */
async function push(
  chain: string[],
  dataId: string,
  data: Uint8Array,
  timeoutMs: number,
  call: NodeCall,
): Promise<string[]> {
  const rest = chain.slice(1).join(",");
  const url = `${chain[0]}/v1/push/${dataId}?chain=${encodeURIComponent(rest)}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: authHeaders(call.token),
      client: call.httpClient,
      body: data as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new GfsError(
      "unavailable",
      `cannot push to ${chain[0]}: ${String(e)}`,
    );
  }
  return (await parseResponse(res, PushedSchema, url)).received;
}

/**
 * Reads `[offset, offset + length)` of a located file: one request per
 * chunk touched (in parallel), each to a replica chosen by offset so
 * concurrent readers spread over replicas.
 */
async function readRange(
  loc: Located,
  offset: number,
  length: number,
  timeoutMs: number,
  call: NodeCall,
): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const end = offset + length;
  const parts: Promise<Uint8Array>[] = [];
  for (let pos = offset; pos < end;) {
    const ci = Math.floor(pos / loc.chunkBytes);
    const within = pos - ci * loc.chunkBytes;
    const n = Math.min(end - pos, loc.chunkBytes - within);
    const chunk = loc.chunks[ci];
    // Past the end of an append file (its replicas answer short), or a
    // replica that answers short: the first is the caller's, the second
    // is retried elsewhere.
    const short = () =>
      loc.mode === "append"
        ? new GfsError("range_not_satisfiable", "range past the end")
        : new GfsError("unavailable", `short read of chunk ${ci}`);
    if (chunk === undefined) throw short();
    const r = chunk.replicas;
    const k = Math.floor(pos / 65536) % Math.max(1, r.length);
    parts.push(
      readPiece(
        { ...chunk, replicas: [...r.slice(k), ...r.slice(0, k)] },
        within,
        n,
        timeoutMs,
        call,
      ).then((bytes) => {
        if (bytes.length !== n) throw short();
        return bytes;
      }),
    );
    pos += n;
  }
  if (parts.length === 1) return await parts[0]!;
  const all = await Promise.all(parts);
  const out = new Uint8Array(length);
  let o = 0;
  for (const p of all) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Whether `b` (the master's answer) names the same file as `a` (the plan's
 * locations) with the same length and geometry, and the same chunk handle
 * and version for every chunk the pieces touch.
 */
function sameChunks(
  a: Located,
  b: Located,
  pieces: readonly { ci: number }[],
): boolean {
  if (
    a.fileId !== b.fileId || a.length !== b.length || a.mode !== b.mode ||
    a.chunkBytes !== b.chunkBytes
  ) return false;
  return pieces.every(({ ci }) =>
    a.chunks[ci]?.handle === b.chunks[ci]?.handle &&
    a.chunks[ci]?.version === b.chunks[ci]?.version
  );
}

/**
 * Reads part of a chunk from the first replica that answers, into `into`
 * when given (straight from the socket over a bulk port; copied otherwise).
 * @returns the bytes (a view of `into` when given).
 */
async function readPiece(
  chunk: Located["chunks"][number],
  offset: number,
  length: number,
  timeoutMs: number,
  call: NodeCall,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const place = (bytes: Uint8Array) => {
    if (into === undefined) return bytes;
    const n = Math.min(bytes.length, into.length);
    into.set(bytes.subarray(0, n));
    return into.subarray(0, n);
  };
  // Made only when every replica failed (an error's stack trace costs
  // ~25 µs, a noticeable part of a small read).
  let lastErr: unknown = null;
  const small = length <= (call.portReadBytes ?? 0);
  for (const replica of chunk.replicas) {
    // Small reads take the bulk port too while a pooled connection is
    // free (raw bytes: fewer copies than the data port's frames), and the
    // data port, which carries many calls per connection, when all are busy.
    if (call.bulk && (!small || call.bulk.hasRoom(replica))) {
      try {
        const bytes = await call.bulk.read(
          replica,
          {
            handle: chunk.handle,
            version: chunk.version,
            offset,
            length,
          },
          timeoutMs,
          into,
        );
        if (bytes !== null) return bytes;
      } catch (e) {
        lastErr = e;
        continue;
      }
    }
    if (call.ports && small) {
      try {
        const bytes = await call.ports.read(replica, {
          handle: chunk.handle,
          version: chunk.version,
          offset,
          length,
        }, timeoutMs);
        if (bytes !== null) return place(bytes);
      } catch (e) {
        lastErr = e;
        continue;
      }
    }
    const url =
      `${replica}/v1/chunks/${chunk.handle}?version=${chunk.version}&offset=${offset}&length=${length}`;
    try {
      const res = await fetch(url, {
        headers: authHeaders(call.token),
        client: call.httpClient,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await throwIfFailed(res, url);
      return place(new Uint8Array(await res.arrayBuffer()));
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr ??
    new GfsError("unavailable", `chunk ${chunk.handle} has no live replica`);
}

/** Splits a byte source into pieces of exactly `size` bytes (the last may be short). */
export async function* chunked(
  source: ByteSource,
  size: number,
): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let o = 0; o < source.length; o += size) {
      yield source.subarray(o, o + size);
    }
    return;
  }
  let buf = new Uint8Array(size);
  let fill = 0;
  const iter = source instanceof ReadableStream ? streamIter(source) : source;
  for await (const part of iter as AsyncIterable<Uint8Array>) {
    let o = 0;
    while (o < part.length) {
      const n = Math.min(size - fill, part.length - o);
      buf.set(part.subarray(o, o + n), fill);
      fill += n;
      o += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

async function* streamIter(
  s: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = s.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function newDataId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** Encodes a path for a URL, keeping its slashes. */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}
