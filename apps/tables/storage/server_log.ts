import {
  type GfsClient,
  GfsError,
  isGfsError,
  RECORD_HEADER_BYTES,
} from "@strata/gfs";
import type { CommitLog } from "@strata/lsm";
import { FencedError, type GfsFence, isFencedError } from "./gfs_fence.ts";
import { ENTRY_HEADER_BYTES, type LogEntry } from "./log_format.ts";
import { resolveLog } from "./log_replay.ts";
import {
  BlockGather,
  type BlockGatherOptions,
  type GatherPlan,
} from "./block_gather.ts";
import { encodeSections, type LogSection } from "./server_log_format.ts";

/** Options of {@link ServerLog.open}. */
export interface ServerLogOptions {
  /** Start a new log file once the current one passes this size (default 8 MiB). */
  rollBytes?: number;
  /** Largest block (one GFS record append) in bytes (default 1 MiB; capped by a quarter chunk). */
  maxBlockBytes?: number;
  /**
   * Past this many files kept only for tablets that have not flushed
   * (default 4), those tablets are asked to flush
   * ({@link TabletLogView.onPressure}), so old files can go.
   */
  maxFiles?: number;
  /** Replication of the log files (default: the cell's). */
  replication?: number;
  /**
   * How a busy log gathers its next block (`block_gather.ts`; default
   * on), or false to start each block as soon as the last one is done.
   */
  gather?: BlockGatherOptions | false;
}

/**
 * A server log's group-commit counters since it opened: where a write's
 * time before its block goes (see {@link BlockGather}).
 */
export interface GroupCommitStats {
  /** ms in the turn each block yields first (a timer turn if busy, else an immediate). */
  turnMs: number;
  /** Blocks that waited for their round's writers (a gather). */
  gathers: number;
  /** Gathers that ended because the round's writers were all queued (the rest ended on the clock). */
  gathersFilled: number;
  /** ms spent in gathers. */
  gatherMs: number;
  /** ms of blocks in flight (the record append and the master's checks). */
  blockMs: number;
  /**
   * Idle spells longer than the last block took: each ends the busy state
   * (the next block goes without a gather).
   */
  idleSpells: number;
}

/** Name of a server log's seal: once it exists, the log acknowledges nothing more. */
export const SEAL_NAME = "sealed";
/** Log files of a server log: `<dir>/<10-digit sequence>`. */
export const LOG_FILE_RE = /\/(\d{10})$/;

interface LogFile {
  path: string;
  bytes: number;
  /** Highest record index of each tablet in this file. */
  records: Map<TabletLogView, number>;
  /** Tablets whose start mark is in this file and still needed. */
  starts: Set<TabletLogView>;
  /** Tablets asked to flush for this file. */
  pressed: boolean;
}

interface Pending {
  view: TabletLogView;
  /** null: the view's start mark. */
  records: readonly Uint8Array[] | null;
  bytes: number;
  resolve: (r: { last: number }) => void;
  reject: (e: unknown) => void;
}

const pad = (n: number) => String(n).padStart(10, "0");

/**
 * A tablet server's commit log in GFS, shared by all its tablets (as in
 * BigTable: one log per server, so a write costs one GFS record append
 * however many tablets the server has). Files
 * `<dir>/<sequence>`, rolled past `rollBytes`. Group commit across
 * tablets: while one block is being appended, the writes of every tablet
 * queue and go together in the next block (one GFS record append, durable
 * on every replica before any of them is acknowledged). A block holds one
 * section per tablet (`server_log_format.ts`), each entry with the
 * tablet's fencing epoch and its own consecutive index, as in a
 * per-tablet log, so replay (`log_replay.ts`) is unchanged.
 *
 * Before acknowledging a block, the log checks, in one master call
 * ({@link GfsClient.exists}), that it has not been sealed (a splitter
 * seals a dead server's log before it reads it) and that no newer owner
 * has claimed any of the block's tablets ({@link GfsFence.supersededBy}).
 * A sealed log, a check the master could not answer, or a failed append
 * refuses every later write; a fenced tablet refuses its own.
 *
 * Each tablet uses the log through a {@link TabletLogView} (the LSM
 * store's {@link CommitLog} port). A file is deleted once no tablet needs
 * it: every tablet with records in it has flushed past them (its
 * `compactPrefix`), and the tablets' start marks in it are released.
 */
export class ServerLog {
  /** The log's GFS directory (`<log root>/<server>/<incarnation>`). */
  readonly dir: string;
  readonly #gfs: GfsClient;
  readonly #opts:
    & Required<
      Omit<ServerLogOptions, "replication" | "gather">
    >
    & {
      replication?: number;
    };
  readonly #gather: BlockGather | undefined;
  /** The drain waiting for writes to queue (see {@link BlockGather}). */
  #gathering: { writes: number; done: () => void } | null = null;
  #files: LogFile[] = [];
  #seq = 0;
  #maxBlock = 0;
  #queue: Pending[] = [];
  /** Bytes of the writes in {@link #queue}. */
  #queuedBytes = 0;
  #running: Promise<void> | null = null;
  #failed: unknown = undefined;
  #closed = false;
  #blocks = 0;
  #records = 0;
  #deleted = 0;
  /** Group-commit counters (see {@link ServerLog.stats}). */
  #g = {
    turnMs: 0,
    gathers: 0,
    gathersFilled: 0,
    gatherMs: 0,
    blockMs: 0,
    idleSpells: 0,
  };

  private constructor(gfs: GfsClient, dir: string, opts: ServerLogOptions) {
    this.#gfs = gfs;
    this.dir = dir;
    this.#opts = {
      rollBytes: opts.rollBytes ?? 8 << 20,
      maxBlockBytes: opts.maxBlockBytes ?? 1 << 20,
      maxFiles: opts.maxFiles ?? 4,
      ...(opts.replication !== undefined
        ? { replication: opts.replication }
        : {}),
    };
    this.#gather = opts.gather === false
      ? undefined
      : new BlockGather(opts.gather);
    this.#files.push(this.#newFile());
  }

  /**
   * A new log in `dir` (an absolute GFS path no other log uses: one per
   * server process and kv session). Nothing is written until a tablet
   * appends.
   */
  static open(
    gfs: GfsClient,
    dir: string,
    options: ServerLogOptions = {},
  ): ServerLog {
    return new ServerLog(gfs, dir, options);
  }

  /**
   * The log as tablet `store` (its store name) owning `fence` sees it:
   * its {@link CommitLog}. `readOld` yields the tablet's entries from
   * before this owner (previous owners' logs); `recover` resolves them.
   */
  view(
    store: string,
    fence: GfsFence,
    readOld: () => Promise<LogEntry[]>,
  ): TabletLogView {
    return new TabletLogView(this, store, fence, readOld);
  }

  /** Blocks and records acknowledged, files deleted, files kept now. */
  get stats(): {
    blocks: number;
    records: number;
    deletedFiles: number;
    files: number;
  } & GroupCommitStats {
    return {
      blocks: this.#blocks,
      records: this.#records,
      deletedFiles: this.#deleted,
      files: this.#files.length,
      ...this.#g,
    };
  }

  /** Whether the log refuses writes because it was sealed or an append failed (not because it was closed). */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /** Stops taking writes; waits for the block in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running !== null) await this.#running;
  }

  /** @internal A view's records (or its start mark when `records` is null). */
  enqueue(
    view: TabletLogView,
    records: readonly Uint8Array[] | null,
  ): Promise<{ last: number }> {
    if (this.#closed) {
      return Promise.reject(new GfsError("unavailable", "the log is closed"));
    }
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    let bytes = 64 + view.store.length;
    for (const r of records ?? []) bytes += ENTRY_HEADER_BYTES + r.length;
    const max = this.#maxBlock || this.#opts.maxBlockBytes;
    if (bytes > max) {
      return Promise.reject(
        new GfsError(
          "too_large",
          `a commit log record may be at most ${
            max - 64 - view.store.length - ENTRY_HEADER_BYTES
          } bytes`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      if (this.#running === null && this.#gather?.woke(performance.now())) {
        this.#g.idleSpells++;
      }
      this.#queue.push({ view, records, bytes, resolve, reject });
      this.#queuedBytes += bytes;
      const g = this.#gathering;
      if (g !== null && this.#queue.length >= g.writes) g.done();
      this.#kick();
    });
  }

  /** @internal Tablet `view` has flushed its records up to `upTo`. */
  async release(view: TabletLogView, upTo: number): Promise<void> {
    for (const f of this.#files) {
      const r = f.records.get(view);
      if (r !== undefined && r <= upTo) f.records.delete(view);
    }
    await this.#collect();
  }

  /** @internal The start mark of `view` is no longer needed. */
  async releaseStart(view: TabletLogView): Promise<void> {
    for (const f of this.#files) f.starts.delete(view);
    await this.#collect();
  }

  /** Deletes the files (but the current one) no tablet needs. */
  async #collect(): Promise<void> {
    const cur = this.#files.at(-1)!;
    const drop = this.#files.filter((f) =>
      f !== cur && f.records.size === 0 && f.starts.size === 0
    );
    if (drop.length === 0) return;
    this.#files = this.#files.filter((f) => !drop.includes(f));
    for (const f of drop) {
      await this.#gfs.remove(f.path).catch((e) => {
        if (!isGfsError(e, "not_found")) throw e;
      });
      this.#deleted++;
    }
  }

  #newFile(): LogFile {
    return {
      path: `${this.dir}/${pad(++this.#seq)}`,
      bytes: 0,
      records: new Map(),
      starts: new Set(),
      pressed: false,
    };
  }

  #kick(): void {
    if (this.#running !== null) return;
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      if (this.#failed !== undefined) {
        for (const p of this.#queue.splice(0)) p.reject(this.#failed);
        this.#queuedBytes = 0;
        return;
      }
      if (this.#maxBlock === 0) {
        // The first block goes alone, to learn the chunk size.
        const first = this.#queue.shift()!;
        this.#queuedBytes -= first.bytes;
        await this.#appendBatch([first]);
        if (this.#failed === undefined && this.#maxBlock === 0) {
          // Not known yet (the master did not answer): the next block goes
          // alone too, and asks again.
          const loc = await this.#gfs.locate(this.#files.at(-1)!.path).catch(
            () => undefined,
          );
          if (loc !== undefined) {
            this.#maxBlock = Math.min(
              this.#opts.maxBlockBytes,
              loc.chunkBytes / 4 - RECORD_HEADER_BYTES,
            );
          }
        }
        continue;
      }
      // A log of one writer (BlockGather.lone) lets only the writes
      // already here queue (an immediate: microtask continuations and the
      // requests read meanwhile run before it), so a lone writer does not
      // wait for a timer. Any other log yields to a timer turn first, as
      // every block did before: Deno's setTimeout(0) waits at least 1 ms
      // (2-14 ms on a loaded machine), which lets a small log's writers
      // arrive together (at 16 clients, after an idle spell too) and
      // starts a busy log's gather (without it, blocks at 256 clients
      // carried 61-63 writes instead of 64-71).
      const t = performance.now();
      if (this.#gather !== undefined && !this.#gather.lone) {
        await new Promise((r) => setTimeout(r, 0));
      } else await new Promise((r) => setImmediate(r));
      const plan = this.#gather?.plan(
        this.#queue.length,
        this.#queuedBytes >= this.#maxBlock,
      );
      const tg = performance.now();
      this.#g.turnMs += tg - t;
      if (plan !== undefined) {
        this.#g.gathers++;
        if (await this.#gatherFor(plan)) this.#g.gathersFilled++;
        this.#g.gatherMs += performance.now() - tg;
      }
      const batch: Pending[] = [];
      let bytes = 0;
      while (
        this.#queue.length > 0 &&
        (batch.length === 0 || bytes + this.#queue[0]!.bytes <= this.#maxBlock)
      ) {
        const p = this.#queue.shift()!;
        bytes += p.bytes;
        batch.push(p);
      }
      this.#queuedBytes -= bytes;
      const t0 = performance.now();
      await this.#appendBatch(batch);
      this.#g.blockMs += performance.now() - t0;
      // The writes queued meanwhile count as the round's writers too (see
      // BlockGather): they wait for the next block with the returning ones.
      this.#gather?.blockDone(
        batch.length,
        performance.now() - t0,
        this.#queue.length,
      );
    }
    this.#gather?.idle(performance.now());
  }

  /**
   * Waits until `plan.writes` writes are queued (true) or `plan.waitMs`
   * passed (false).
   */
  #gatherFor(plan: GatherPlan): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (filled: boolean) => {
        clearTimeout(timer);
        this.#gathering = null;
        resolve(filled);
      };
      const timer = setTimeout(() => done(false), plan.waitMs);
      this.#gathering = { writes: plan.writes, done: () => done(true) };
    });
  }

  /** Appends one block with `batch`, then acknowledges what it may. */
  async #appendBatch(batch: Pending[]): Promise<void> {
    // One section per tablet; each tablet's records get its next indexes.
    const sections = new Map<TabletLogView, LogSection>();
    const lasts: number[] = [];
    const next = new Map<TabletLogView, number>();
    const live: Pending[] = [];
    for (const p of batch) {
      if (p.view.failure !== undefined) {
        p.reject(p.view.failure);
        continue;
      }
      live.push(p);
      let s = sections.get(p.view);
      if (s === undefined) {
        sections.set(p.view, s = { dir: p.view.store, entries: [] });
      }
      let i = next.get(p.view) ?? p.view.nextIndex;
      const epoch = p.view.fence.epoch;
      if (p.records === null) {
        s.entries.push({ kind: "start", epoch, index: i });
      } else {
        for (const payload of p.records) {
          s.entries.push({ kind: "record", epoch, index: i++, payload });
        }
      }
      next.set(p.view, i);
      lasts.push(i - 1);
    }
    if (live.length === 0) return;
    const file = this.#files.at(-1)!;
    const block = encodeSections([...sections.values()]);
    try {
      await this.#gfs.append(file.path, block, this.#opts.replication);
    } catch (e) {
      // Refused before anything was sent: only these writes fail.
      if (isGfsError(e, "too_large")) {
        for (const p of live) p.reject(e);
        return;
      }
      // The block may or may not be in the log: no later index may be
      // handed out by this log; the next owners' replay decides.
      this.#failed = e;
      for (const p of live) p.reject(e);
      return;
    }
    file.bytes += block.length;
    // Durable on every replica; acknowledge only what is still ours. The
    // seal and every tablet's fence are checked in one master call; if it
    // cannot answer, the seal is unconfirmed and the log refuses it all.
    const views = [...sections.keys()];
    let found: boolean[];
    try {
      found = await this.#exists([
        `${this.dir}/${SEAL_NAME}`,
        ...views.map((v) => v.fence.supersededBy),
      ]);
      if (found[0]) {
        throw new GfsError("unavailable", `${this.dir} is sealed`);
      }
    } catch (e) {
      this.#failed = e;
      for (const p of live) p.reject(e);
      return;
    }
    const refused = new Map<TabletLogView, unknown>();
    views.forEach((v, k) => {
      try {
        v.fence.observe(found[k + 1]!);
        v.nextIndex = next.get(v)!;
      } catch (e) {
        refused.set(v, e);
      }
    });
    for (const [v, e] of refused) v.fail(e);
    live.forEach((p, k) => {
      const e = refused.get(p.view);
      if (e !== undefined) {
        // This write is in the block just appended: say so (see FencedError).
        p.reject(
          isFencedError(e)
            ? new FencedError(e.message, { maybeApplied: true })
            : e,
        );
        return;
      }
      if (p.records === null) file.starts.add(p.view);
      else {
        file.records.set(p.view, lasts[k]!);
        this.#records += p.records.length;
      }
      p.resolve({ last: lasts[k]! });
    });
    this.#blocks++;
    if (file.bytes >= this.#opts.rollBytes) {
      this.#files.push(this.#newFile());
      this.#press();
    }
  }

  /** {@link GfsClient.exists} of any number of paths (in calls of at most 256). */
  async #exists(paths: string[]): Promise<boolean[]> {
    const parts: Promise<boolean[]>[] = [];
    for (let i = 0; i < paths.length; i += 256) {
      parts.push(this.#gfs.exists(paths.slice(i, i + 256)));
    }
    return (await Promise.all(parts)).flat();
  }

  /** Asks the tablets that keep the oldest file alive to flush. */
  #press(): void {
    if (this.#files.length <= this.#opts.maxFiles) return;
    const oldest = this.#files[0]!;
    if (oldest.pressed) return;
    oldest.pressed = true;
    for (const v of oldest.records.keys()) v.onPressure?.();
  }
}

/**
 * One tablet's view of its server's {@link ServerLog}: the LSM store's
 * {@link CommitLog}. `recover` replays the tablet's entries from its
 * previous owners' logs (`readOld`), then appends this owner's start mark
 * (from here on, a predecessor's late appends are void); appends go into
 * the shared log's next block; `compactPrefix` lets the log drop files.
 */
export class TabletLogView implements CommitLog {
  /** The tablet's store name (its section name in the log). */
  readonly store: string;
  /** This owner's fence of the tablet. */
  readonly fence: GfsFence;
  /** @internal Index of the tablet's next record. */
  nextIndex = 1;
  /** Records `recover` replayed (0: the tables covered everything). */
  replayed = 0;
  /** Called when the tablet's unflushed records keep old log files alive. */
  onPressure?: () => void;
  readonly #log: ServerLog;
  readonly #readOld: () => Promise<LogEntry[]>;
  #failure: unknown = undefined;
  #closed = false;

  /** @internal Made by {@link ServerLog.view}. */
  constructor(
    log: ServerLog,
    store: string,
    fence: GfsFence,
    readOld: () => Promise<LogEntry[]>,
  ) {
    this.#log = log;
    this.store = store;
    this.fence = fence;
    this.#readOld = readOld;
  }

  /** Why this tablet's appends are refused (fenced), if they are. */
  get failure(): unknown {
    return this.#failure;
  }

  /** @internal Refuses every later append with `e`. */
  fail(e: unknown): void {
    this.#failure ??= e;
  }

  async recover(
    covered: number,
    apply: (index: number, record: Uint8Array) => void,
  ): Promise<number> {
    const resolved = resolveLog(await this.#readOld(), covered);
    for (const r of resolved.records) apply(r.index, r.payload);
    this.replayed = resolved.records.length;
    this.nextIndex = resolved.last + 1;
    await this.#log.enqueue(this, null);
    return resolved.last;
  }

  append(records: readonly Uint8Array[]): Promise<{ last: number }> {
    if (this.#closed) {
      return Promise.reject(new GfsError("unavailable", "the log is closed"));
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return this.#log.enqueue(this, records);
  }

  compactPrefix(upTo: number): Promise<unknown> {
    return this.#log.release(this, upTo);
  }

  /**
   * The start mark is no longer needed: the tablet's tables cover every
   * earlier owner's records, and readers start at this owner.
   */
  releaseStart(): Promise<void> {
    return this.#log.releaseStart(this);
  }

  /**
   * Stops appending. Records not yet flushed stay in the log (their files
   * are kept): the tablet's next owner reads them there.
   */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
