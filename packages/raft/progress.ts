import type { SnapshotMeta } from "./messages.ts";

/**
 * Flow control for one follower: the AppendEntries messages sent and not yet
 * acknowledged, bounded by count and by payload bytes.
 */
export class Inflights {
  #index: number[] = [];
  #bytes: number[] = [];
  #head = 0;
  #totalBytes = 0;

  /** @param maxMsgs max messages in flight; @param maxBytes max payload bytes (0 = no limit). */
  constructor(readonly maxMsgs: number, readonly maxBytes: number) {}

  get count(): number {
    return this.#index.length - this.#head;
  }

  get bytes(): number {
    return this.#totalBytes;
  }

  full(): boolean {
    return this.count >= this.maxMsgs ||
      (this.maxBytes > 0 && this.#totalBytes >= this.maxBytes);
  }

  add(lastIndex: number, bytes: number): void {
    this.#index.push(lastIndex);
    this.#bytes.push(bytes);
    this.#totalBytes += bytes;
  }

  /** Frees every message whose last index is ≤ `to`. */
  freeLE(to: number): void {
    while (this.#head < this.#index.length && this.#index[this.#head]! <= to) {
      this.#totalBytes -= this.#bytes[this.#head]!;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#index.length) {
      this.#index = this.#index.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
  }

  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.#index[this.#head]!);
  }

  reset(): void {
    this.#index = [];
    this.#bytes = [];
    this.#head = 0;
    this.#totalBytes = 0;
  }
}

/** How the leader is currently replicating to a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** An InstallSnapshot transfer in progress (chunked, resumable). */
export interface SnapshotTransfer {
  meta: SnapshotMeta;
  data: Uint8Array;
  /** Bytes the follower confirmed. */
  acked: number;
  /** Bytes sent (≥ acked); resends restart from `acked`. */
  sent: number;
}

/** The leader's view of one follower (or learner). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append is out and we wait for its answer or a heartbeat. */
  probeSent = false;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** Highest heartbeat sequence acknowledged (ReadIndex). */
  ackedSeq = 0;
  /** Leader clock time at which the newest acknowledged heartbeat was sent (lease). */
  ackedSentAt = -Infinity;
  /** Entries up to this index are sent whole even if the follower proposed them. */
  noEchoUpTo = 0;
  snapshot: SnapshotTransfer | undefined;
  readonly inflights: Inflights;

  constructor(
    next: number,
    public isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  #reset(state: ProgressState): void {
    this.probeSent = false;
    this.snapshot = undefined;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot" && this.snapshot) {
      const pending = this.snapshot.meta.index;
      this.#reset("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#reset("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.#reset("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(transfer: SnapshotTransfer): void {
    this.#reset("snapshot");
    this.snapshot = transfer;
  }

  /** Records an acknowledgement up to `n`; false when it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Optimistic update after sending entries up to `n` in replicate state. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * Handles a rejection of the append at `rejected`, moving `next` back to
   * `matchHint + 1` at most. False when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** True when no more appends may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
