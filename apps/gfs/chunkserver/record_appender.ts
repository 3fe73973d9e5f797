import { GroupCommit } from "@strata/storage";
import { GfsError, isGfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

/** A record waiting for its chunk's next group commit. */
export interface PendingRecord {
  version: number;
  /** Origins of the secondaries, as the lease holder was told. */
  secondaries: string[];
  /** The framed record. */
  data: Uint8Array;
}

/** Where a record landed, or why it did not. */
export type RecordResult = { offset: number } | { error: GfsError };

/**
 * Record appends at a primary (small, many, concurrent): per chunk, the
 * records that arrive while one batch is being made durable wait and go
 * together in the next — one write and one fsync on the primary and on
 * each secondary for the whole batch, offsets assigned back to back in
 * arrival order. A record is acknowledged only when its batch is durable
 * on every replica of the lease.
 */
export class RecordAppender {
  readonly #groups = new Map<
    number,
    GroupCommit<PendingRecord, RecordResult>
  >();
  /**
   * Batches being forwarded, per chunk. A new version (the master is
   * granting a new lease, after this one's appends failed) ends them: they
   * can no longer be acknowledged, and a batch stuck on a partitioned
   * secondary would otherwise hold the chunk's queue, and so the version
   * change, for up to the forward timeout; the master would then leave
   * this server out of the new version.
   */
  readonly #forwarding = new Map<number, Set<AbortController>>();

  /** @param cs the chunkserver (store, lease check, serial queue, secondaries). */
  constructor(private readonly cs: ChunkserverService) {}

  /** Appends `r` to chunk `handle` in its next batch; resolves once the batch is done. */
  submit(handle: number, r: PendingRecord): Promise<RecordResult> {
    let g = this.#groups.get(handle);
    if (g === undefined) {
      g = new GroupCommit<PendingRecord, RecordResult>(
        (items) => this.cs.serial(handle, () => this.#commit(handle, items)),
        1024,
      );
      this.#groups.set(handle, g);
    }
    return g.submit(r);
  }

  /** Ends the batches of `handle` still being forwarded (it has a new version). */
  abortForwards(handle: number): void {
    for (const ctl of this.#forwarding.get(handle) ?? []) {
      ctl.abort(new GfsError("stale", `chunk ${handle} has a new version`));
    }
  }

  /** Drops the chunk's group when nothing waits in it. */
  forget(handle: number): void {
    const g = this.#groups.get(handle);
    if (g !== undefined && g.pending === 0) this.#groups.delete(handle);
  }

  /** One group commit of a chunk's records: runs of the same lease in order. */
  async #commit(
    handle: number,
    items: PendingRecord[],
  ): Promise<RecordResult[]> {
    const results: RecordResult[] = new Array(items.length);
    for (let i = 0; i < items.length;) {
      const key = (r: PendingRecord) => `${r.version}|${r.secondaries}`;
      let j = i + 1;
      while (j < items.length && key(items[j]!) === key(items[i]!)) j++;
      await this.#commitRun(handle, items.slice(i, j), results, i);
      i = j;
    }
    return results;
  }

  async #commitRun(
    handle: number,
    run: PendingRecord[],
    results: RecordResult[],
    base: number,
  ): Promise<void> {
    const { store, cfg, order, stats } = this.cs;
    const { version, secondaries } = run[0]!;
    let n = 0;
    const ctl = new AbortController();
    let mine = this.#forwarding.get(handle);
    if (mine === undefined) this.#forwarding.set(handle, mine = new Set());
    mine.add(ctl);
    try {
      this.cs.checkLease(handle, version);
      // An empty write checks the version and waits out queued writes.
      const length = await store.write(handle, version, 0, new Uint8Array(0));
      let bytes = 0;
      while (
        n < run.length && length + bytes + run[n]!.data.length <= cfg.chunkBytes
      ) bytes += run[n++]!.data.length;
      if (n > 0) {
        // A batch of one record is that record's bytes (the transport's
        // own copy, or the HTTP body's): nothing keeps them but this batch.
        let data = run[0]!.data;
        if (n > 1) {
          data = new Uint8Array(bytes);
          for (let k = 0, o = 0; k < n; o += run[k]!.data.length, k++) {
            data.set(run[k]!.data, o);
          }
        }
        const seq = order.takeSeq(handle, version);
        // The forwards first: on the secondaries' data ports they are sent
        // in this turn, before this replica's own write and sync (which
        // holds the event loop), so the three syncs overlap.
        const [f] = await Promise.all([
          this.cs.secondaries.applyBytes(
            secondaries,
            handle,
            { version, offset: length, seq },
            data,
            ctl.signal,
          ),
          store.write(handle, version, length, data),
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
        const seq = order.takeSeq(handle, version);
        await Promise.all([
          store.write(handle, version, cfg.chunkBytes, new Uint8Array(0)),
          this.cs.secondaries.apply(secondaries, handle, {
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
      if (mine.size === 0 && this.#forwarding.get(handle) === mine) {
        this.#forwarding.delete(handle);
      }
    }
  }
}
