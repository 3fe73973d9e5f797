import {
  type GfsClient,
  GfsError,
  isGfsError,
  RECORD_HEADER_BYTES,
} from "@strata/gfs";
import type { CommitLog } from "@strata/lsm";
import type { GfsFence } from "./gfs_fence.ts";
import {
  decodeBlock,
  encodeBlock,
  ENTRY_HEADER_BYTES,
  type LogEntry,
} from "./log_format.ts";
import { resolveLog } from "./log_replay.ts";

/** Options of {@link GfsCommitLog.open}. */
export interface GfsCommitLogOptions {
  /** Largest block (one GFS record append) in bytes (default 1 MiB; capped by a quarter chunk). */
  maxBlockBytes?: number;
  /** Replication of new log files (default: the cell's). */
  replication?: number;
}

interface LogFile {
  path: string;
  epoch: number;
  first: number;
}

interface Pending {
  records: readonly Uint8Array[];
  bytes: number;
  resolve: (r: { last: number }) => void;
  reject: (e: unknown) => void;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/**
 * A tablet's commit log in GFS ({@link CommitLog}): files
 * `dir/log/<epoch>-<first index>` written with GFS record append. Appends
 * are group-committed: while one block is being appended, later records
 * queue and go together in the next block (one GFS record, durable on
 * every replica before it is acknowledged), so one block is in flight at
 * a time and blocks land in order. Each entry carries its epoch, index and
 * CRC32C (see `log_format.ts`): copies of a retried append and partial
 * blocks are skipped on replay, and a fenced predecessor's late appends
 * are void (`log_replay.ts`).
 *
 * After each append the owner's fence is checked before anything is
 * acknowledged ({@link GfsFence.check}); a fenced or failed log refuses
 * every later append (the store must be opened again, by its new owner).
 * `compactPrefix` starts a new file and deletes files whose records the
 * tables cover.
 */
export class GfsCommitLog implements CommitLog {
  readonly #gfs: GfsClient;
  readonly #dir: string;
  readonly #fence: GfsFence;
  readonly #opts: GfsCommitLogOptions;
  /** Every log file known, in (epoch, first) order; the last is ours. */
  #files: LogFile[] = [];
  #maxBlock = 0;
  #next = 1;
  #queue: Pending[] = [];
  #rolls: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #running: Promise<void> | null = null;
  #failed: unknown = undefined;
  #closed = false;
  #blocks = 0;
  #records = 0;
  #appendMs = 0;
  #checkMs = 0;

  private constructor(
    gfs: GfsClient,
    dir: string,
    fence: GfsFence,
    opts: GfsCommitLogOptions,
  ) {
    this.#gfs = gfs;
    this.#dir = dir;
    this.#fence = fence;
    this.#opts = opts;
  }

  /**
   * A log for the owner of `fence` of the store in `dir` (absolute GFS
   * path). Nothing is read until {@link GfsCommitLog.recover}.
   */
  static open(
    gfs: GfsClient,
    dir: string,
    fence: GfsFence,
    options: GfsCommitLogOptions = {},
  ): GfsCommitLog {
    return new GfsCommitLog(gfs, dir, fence, options);
  }

  /** Largest record accepted (bytes), known after `recover`. */
  get maxRecordBytes(): number {
    return this.#maxBlock - ENTRY_HEADER_BYTES;
  }

  /** Index of the last record appended (or replayed). */
  get lastIndex(): number {
    return this.#next - 1;
  }

  /**
   * Blocks (GFS record appends) and records acknowledged by this log, and
   * the time spent in the appends and in the fence checks after them.
   */
  get stats(): {
    blocks: number;
    records: number;
    appendMs: number;
    checkMs: number;
  } {
    return {
      blocks: this.#blocks,
      records: this.#records,
      appendMs: this.#appendMs,
      checkMs: this.#checkMs,
    };
  }

  async recover(
    covered: number,
    apply: (index: number, record: Uint8Array) => void,
  ): Promise<number> {
    const files = await this.#listFiles();
    const entries: LogEntry[] = [];
    for (const f of files) {
      try {
        for await (const block of this.#gfs.readRecords(f.path)) {
          entries.push(...decodeBlock(block).entries);
        }
      } catch (e) {
        // Deleted meanwhile by a predecessor once its tables covered it.
        if (!isGfsError(e, "not_found")) throw e;
      }
    }
    const resolved = resolveLog(entries, covered);
    for (const r of resolved.records) apply(r.index, r.payload);
    this.#files = files;
    this.#next = resolved.last + 1;
    // Our first file starts with the epoch's start entry: from here on the
    // predecessors' late appends are void.
    await this.#roll();
    const loc = await this.#gfs.locate(this.#files.at(-1)!.path);
    this.#maxBlock = Math.min(
      this.#opts.maxBlockBytes ?? 2 ** 20,
      loc.chunkBytes / 4 - RECORD_HEADER_BYTES,
    );
    return resolved.last;
  }

  append(records: readonly Uint8Array[]): Promise<{ last: number }> {
    if (this.#closed) {
      return Promise.reject(new GfsError("unavailable", "the log is closed"));
    }
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    let bytes = 0;
    for (const r of records) bytes += ENTRY_HEADER_BYTES + r.length;
    if (bytes > this.#maxBlock) {
      return Promise.reject(
        new GfsError(
          "too_large",
          `a commit log record may be at most ${this.maxRecordBytes} bytes`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, bytes, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Starts a new file (so whole files can go) and deletes the files whose
   * records are all at or below `upTo`.
   */
  async compactPrefix(upTo: number): Promise<unknown> {
    if (this.#failed !== undefined) throw this.#failed;
    await new Promise<void>((resolve, reject) => {
      this.#rolls.push({ resolve, reject });
      this.#kick();
    });
    const keep: LogFile[] = [];
    const drop: LogFile[] = [];
    this.#files.forEach((f, i) => {
      const next = this.#files[i + 1];
      (next !== undefined && next.first <= upTo + 1 ? drop : keep).push(f);
    });
    this.#files = keep;
    for (const f of drop) {
      await this.#gfs.remove(f.path).catch((e) => {
        if (!isGfsError(e, "not_found")) throw e;
      });
    }
    return { removedFiles: drop.length };
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running !== null) await this.#running;
  }

  #kick(): void {
    if (this.#running !== null) return;
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      if (this.#queue.length > 0 || this.#rolls.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#rolls.length > 0) {
      if (this.#failed !== undefined) {
        for (const p of this.#queue.splice(0)) p.reject(this.#failed);
        for (const r of this.#rolls.splice(0)) r.reject(this.#failed);
        return;
      }
      if (this.#rolls.length > 0) {
        const rolls = this.#rolls.splice(0);
        try {
          await this.#roll();
          for (const r of rolls) r.resolve();
        } catch (e) {
          this.#failed = e;
          for (const r of rolls) r.reject(e);
        }
        continue;
      }
      // Let the writers whose records the last block acknowledged queue
      // their next ones first (their continuations are microtasks; a timer
      // runs after them): otherwise the first of them would go alone and
      // blocks would alternate between one record and all the others.
      await new Promise((r) => setTimeout(r, 0));
      // Group commit: everything queued that fits in one block.
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
      const first = this.#next;
      const entries: LogEntry[] = [];
      let index = first;
      const lasts: number[] = [];
      for (const p of batch) {
        for (const r of p.records) {
          entries.push({
            kind: "record",
            epoch: this.#fence.epoch,
            index: index++,
            payload: r,
          });
        }
        lasts.push(index - 1);
      }
      try {
        const t0 = performance.now();
        await this.#gfs.append(
          this.#files.at(-1)!.path,
          encodeBlock(entries),
          this.#opts.replication,
        );
        const t1 = performance.now();
        // Durable on every replica; acknowledge only if still the owner.
        await this.#fence.check();
        this.#appendMs += t1 - t0;
        this.#checkMs += performance.now() - t1;
        this.#next = index;
        this.#blocks++;
        this.#records += index - first;
        batch.forEach((p, k) => p.resolve({ last: lasts[k]! }));
      } catch (e) {
        // The block may or may not be in the log: no later index may be
        // handed out by this log; the next owner's replay decides.
        this.#failed = e;
        for (const p of batch) p.reject(e);
      }
    }
  }

  /** A new file `log/<epoch>-<next>` that starts with the epoch's start entry. */
  async #roll(): Promise<void> {
    const cur = this.#files.at(-1);
    if (cur?.epoch === this.#fence.epoch && cur.first === this.#next) return;
    const path = `${this.#dir}/log/${pad(this.#fence.epoch, 10)}-${
      pad(this.#next, 16)
    }`;
    await this.#gfs.append(
      path,
      encodeBlock([{
        kind: "start",
        epoch: this.#fence.epoch,
        index: this.#next,
      }]),
      this.#opts.replication,
    );
    this.#files.push({ path, epoch: this.#fence.epoch, first: this.#next });
  }

  async #listFiles(): Promise<LogFile[]> {
    const out: LogFile[] = [];
    for (const f of await this.#gfs.ls(`${this.#dir}/log/`)) {
      const m = /\/(\d{10})-(\d{16})$/.exec(f.path);
      if (m === null) continue;
      out.push({ path: f.path, epoch: Number(m[1]), first: Number(m[2]) });
    }
    return out.sort((a, b) => a.epoch - b.epoch || a.first - b.first);
  }
}
