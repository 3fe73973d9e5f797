import { join } from "node:path";
import {
  compactToSnapshot,
  SegmentedLog,
  SnapshotStore,
  type SyncPolicy,
} from "@strata/storage";
import {
  type ApplyResult,
  encodeOp,
  type MasterOp,
  type MasterState,
} from "./master_state.ts";
import { replayOpLog } from "./op_log_migration.ts";

/** Options of {@link OpLogStore.open}. */
export interface OpLogStoreOptions {
  /** Operations between checkpoints (default 10 000). */
  checkpointEvery?: number;
  /** Log sync policy (default "always": an acknowledged op survives kill -9). */
  sync?: SyncPolicy;
}

/** What opening found. */
export interface MasterRecovery {
  /** Index the checkpoint covered (0 = none). */
  checkpointIndex: number;
  /** Log operations replayed past it. */
  replayed: number;
  /** Bytes cut from a torn log tail. */
  droppedBytes: number;
}

interface Waiter {
  op: MasterOp;
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The former single-master store, kept only as test and bench support:
 * the migration test writes data directories in its format
 * (`op_log_migration.ts` converts them), and `bench:gfs` measures the
 * one-member replicated store against it. The master no longer runs it.
 *
 * Makes {@link MasterState} durable: every operation is appended to a
 * segmented log (fsync'd, group-committed) and applied in log order only
 * once durable; every `checkpointEvery` operations the state is saved as a
 * snapshot and the log prefix it covers is deleted. Opening loads the
 * newest checkpoint and replays the log after it.
 *
 * This is the seam for Raft: `propose` is exactly what a Raft leader would
 * do (append, wait for commit, apply in order); replacing the local log by
 * a replicated one leaves {@link MasterState.apply} unchanged.
 */
export class OpLogStore {
  /** The metadata, as of the last durable operation. */
  readonly state: MasterState;
  /** What opening found (checkpoint index, ops replayed, bytes dropped). */
  readonly recovery: MasterRecovery;
  readonly #log: SegmentedLog;
  readonly #snaps: SnapshotStore;
  readonly #every: number;
  readonly #waiting = new Map<number, Waiter>();
  #applied: number;
  #sinceCheckpoint = 0;
  #checkpointing: Promise<void> | null = null;
  #closed = false;

  private constructor(
    state: MasterState,
    log: SegmentedLog,
    snaps: SnapshotStore,
    applied: number,
    every: number,
    recovery: MasterRecovery,
  ) {
    this.state = state;
    this.#log = log;
    this.#snaps = snaps;
    this.#applied = applied;
    this.#every = every;
    this.recovery = recovery;
  }

  /**
   * Opens (or creates) the store in `dir` and recovers the state.
   * @throws StorageError (`locked`, `corrupt`, `io`) or GfsError `corrupt`.
   */
  static async open(
    dir: string,
    options: OpLogStoreOptions = {},
  ): Promise<OpLogStore> {
    await Deno.mkdir(join(dir, "log"), { recursive: true });
    await Deno.mkdir(join(dir, "checkpoints"), { recursive: true });
    const snaps = await SnapshotStore.open(join(dir, "checkpoints"));
    let log: SegmentedLog;
    try {
      log = await SegmentedLog.open(join(dir, "log"), {
        sync: options.sync ?? "always",
      });
    } catch (e) {
      snaps.close();
      throw e;
    }
    try {
      const { state, applied, checkpointIndex, replayed } = await replayOpLog(
        snaps,
        log,
      );
      return new OpLogStore(
        state,
        log,
        snaps,
        applied,
        options.checkpointEvery ?? 10_000,
        {
          checkpointIndex,
          replayed,
          droppedBytes: log.recovery.droppedBytes,
        },
      );
    } catch (e) {
      await log.close().catch(() => {});
      snaps.close();
      throw e;
    }
  }

  /** Index of the last applied operation. */
  get appliedIndex(): number {
    return this.#applied;
  }

  /**
   * Logs `op` durably, then applies it in log order.
   * @returns what apply returned.
   * @throws GfsError when the state rejects the op; StorageError on I/O.
   */
  async propose(op: MasterOp): Promise<ApplyResult> {
    const { first } = await this.#log.append([encodeOp(op)]);
    const result = new Promise<ApplyResult>((resolve, reject) => {
      this.#waiting.set(first, { op, resolve, reject });
    });
    this.#drain();
    return await result;
  }

  /** Saves a checkpoint now and drops the log prefix it covers. */
  checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing;
    const index = this.#applied;
    const bytes = this.state.encode();
    this.#sinceCheckpoint = 0;
    this.#checkpointing = (async () => {
      await this.#log.beginSnapshot();
      await this.#snaps.save({
        lastIncludedIndex: index,
        lastIncludedTerm: 0,
        configuration: { voters: [], learners: [] },
      }, bytes);
      await compactToSnapshot(this.#log, this.#snaps);
    })().finally(() => {
      this.#checkpointing = null;
    });
    return this.#checkpointing;
  }

  /** Closes the log and checkpoint store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#checkpointing?.catch(() => {});
    await this.#log.close();
    this.#snaps.close();
  }

  #drain(): void {
    for (;;) {
      const w = this.#waiting.get(this.#applied + 1);
      if (w === undefined) return;
      this.#waiting.delete(this.#applied + 1);
      this.#applied++;
      try {
        w.resolve(this.state.apply(w.op));
      } catch (e) {
        w.reject(e);
      }
      if (++this.#sinceCheckpoint >= this.#every && !this.#closed) {
        this.checkpoint().catch(() => {});
      }
    }
  }
}
