import { join } from "node:path";
import {
  compactToSnapshot,
  SegmentedLog,
  SnapshotStore,
  type SyncPolicy,
} from "@strata/storage";
import { GfsError, isGfsError } from "../shared/gfs_error.ts";
import type { ReplicaMember } from "@strata/replication";
import {
  type ApplyResult,
  decodeOp,
  encodeOp,
  type MasterOp,
  MasterState,
} from "./master_state.ts";
import type {
  MemberChange,
  MetadataStore,
  StoreReplication,
} from "./metadata_store.ts";

/** Options of {@link MasterStore.open}. */
export interface MasterStoreOptions {
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
export class MasterStore implements MetadataStore {
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
    options: MasterStoreOptions = {},
  ): Promise<MasterStore> {
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
      const { snapshot } = await snaps.loadNewest();
      let state = new MasterState();
      let applied = 0;
      if (snapshot !== null) {
        state = MasterState.decode(await snapshot.readState());
        applied = snapshot.meta.lastIncludedIndex;
      }
      const from = Math.max(applied + 1, log.firstIndex);
      let replayed = 0;
      const batch = 1024;
      for (let i = from; i <= log.lastIndex; i += batch) {
        const recs = await log.read(i, Math.min(log.lastIndex + 1, i + batch));
        for (const r of recs) {
          try {
            state.apply(decodeOp(r));
          } catch (e) {
            // A rejected op was rejected the first time too: same outcome.
            if (!isGfsError(e) || e.code === "corrupt") throw e;
          }
          replayed++;
        }
      }
      applied = Math.max(applied, log.lastIndex);
      return new MasterStore(
        state,
        log,
        snaps,
        applied,
        options.checkpointEvery ?? 10_000,
        {
          checkpointIndex: snapshot?.meta.lastIncludedIndex ?? 0,
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

  /** A single master always serves (the replicated store answers per term). */
  serving(): boolean {
    return true;
  }

  /** A single master has no leadership to confirm. */
  servingConfirmed(): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** A single master never redirects. */
  leaderUrl(): string | undefined {
    return undefined;
  }

  /** A single master serves from the start: nothing to take over. */
  onTakeover(_fn: () => void): void {}

  /** A single master has no group to change. */
  changeMember(_change: MemberChange): Promise<ReplicaMember[]> {
    return Promise.reject(
      new GfsError(
        "bad_request",
        "this master is not replicated (started without --peers): no members to change",
      ),
    );
  }

  /** A failed op-log write fails its request (StorageError); this store never halts. */
  onFailure(_fn: (error: unknown) => void): void {}

  /** Not replicated: this master always leads. */
  replication(): StoreReplication {
    return { replicated: false, role: "leader" };
  }

  /** The op log has no metrics of its own beyond the master's. */
  renderMetrics(): Promise<string> {
    return Promise.resolve("");
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
