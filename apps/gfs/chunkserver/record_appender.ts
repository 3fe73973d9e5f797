import { GfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

/** A record waiting for its chunk's next batch. */
export interface PendingRecord {
  version: number;
  /** Origins of the secondaries, as the lease holder was told. */
  secondaries: string[];
  /** The framed record. */
  data: Uint8Array;
}

/** Where a record landed, or why it did not. */
export type RecordResult = { offset: number } | { error: GfsError };

/** Most batches of one chunk in flight at once. */
export const MAX_BATCHES_IN_FLIGHT = 4;
/** Most records in one batch. */
const MAX_BATCH_RECORDS = 1024;

interface Waiting {
  r: PendingRecord;
  resolve: (res: RecordResult) => void;
}

/** One chunk's append pipeline. */
interface Pipe {
  queue: Waiting[];
  /** A batch is being started (numbered, queued locally, sent). */
  starting: boolean;
  inFlight: number;
  /** Records in the batches in flight. */
  inFlightRecords: number;
  /** The chunk's end after the last batch started, at `version`. */
  next: { version: number; offset: number } | undefined;
  /** Settles true once every batch started so far is durable everywhere. */
  tail: Promise<boolean>;
}

/**
 * Record appends at a primary (small, many, concurrent): per chunk, the
 * records that arrive while a batch is being started wait and go together
 * in the next — one write on the primary and one forward to each
 * secondary for the batch, offsets assigned back to back in arrival
 * order. A batch starts at once when none of the chunk is in flight, and
 * while others are only once **at least as many records wait as the
 * batches in flight hold** (up to {@link MAX_BATCHES_IN_FLIGHT}): so a
 * record does not wait a whole batch's round for the one ahead of it, but
 * batches never get smaller than what is already in flight (a fixed limit
 * of 2 or 4 in flight split 16 appenders into batches of about 4 and cost
 * more CPU per record on every replica than it saved). The next batch
 * takes its offset from the end of the last one started (in memory) and
 * its serial number, so the secondaries apply them in order. A batch is acknowledged only when it and every earlier
 * batch of the chunk are durable on every replica; a batch that fails
 * fails every later one still in flight, so no acknowledged record can
 * sit after a gap (the appenders retry, as for any failure).
 */
export class RecordAppender {
  readonly #pipes = new Map<number, Pipe>();
  /**
   * Batches being forwarded, per chunk. A new version (the master is
   * granting a new lease, after this one's appends failed) ends them: they
   * can no longer be acknowledged, and a batch stuck on a partitioned
   * secondary would otherwise hold the chunk's appends for up to the
   * forward timeout.
   */
  readonly #forwarding = new Map<number, Set<AbortController>>();

  /** @param cs the chunkserver (store, lease check, serial queue, secondaries). */
  constructor(private readonly cs: ChunkserverService) {}

  /** Appends `r` to chunk `handle` in its next batch; resolves once it is acknowledged or failed. */
  submit(handle: number, r: PendingRecord): Promise<RecordResult> {
    let p = this.#pipes.get(handle);
    if (p === undefined) {
      p = {
        queue: [],
        starting: false,
        inFlight: 0,
        inFlightRecords: 0,
        next: undefined,
        tail: Promise.resolve(true),
      };
      this.#pipes.set(handle, p);
    }
    return new Promise<RecordResult>((resolve) => {
      p.queue.push({ r, resolve });
      this.#pump(handle, p);
    });
  }

  /** Ends the batches of `handle` still being forwarded (it has a new version). */
  abortForwards(handle: number): void {
    for (const ctl of this.#forwarding.get(handle) ?? []) {
      ctl.abort(new GfsError("stale", `chunk ${handle} has a new version`));
    }
  }

  /** Drops the chunk's pipeline when nothing waits in it. */
  forget(handle: number): void {
    const p = this.#pipes.get(handle);
    if (
      p !== undefined && p.queue.length === 0 && !p.starting &&
      p.inFlight === 0
    ) this.#pipes.delete(handle);
  }

  /** Starts the next batch if one waits and the pipeline has room (see the class). */
  #pump(handle: number, p: Pipe): void {
    if (p.starting || p.queue.length === 0) return;
    if (
      p.inFlight > 0 &&
      (p.inFlight >= MAX_BATCHES_IN_FLIGHT ||
        p.queue.length < p.inFlightRecords)
    ) return;
    p.starting = true;
    // A microtask delay lets every append made in the same tick join the batch.
    queueMicrotask(() => void this.#startNext(handle, p));
  }

  async #startNext(handle: number, p: Pipe): Promise<void> {
    // One run of the same lease, in arrival order.
    const key = (r: PendingRecord) => `${r.version}|${r.secondaries}`;
    const k0 = key(p.queue[0]!.r);
    let j = 1;
    while (
      j < p.queue.length && j < MAX_BATCH_RECORDS && key(p.queue[j]!.r) === k0
    ) j++;
    const run = p.queue.splice(0, j);
    let done: Promise<RecordResult[]>;
    try {
      ({ done } = await this.cs.serial(
        handle,
        () => this.#start(handle, p, run),
      ));
    } catch (e) {
      // Nothing was numbered or sent: these records alone fail.
      const err = asGfsError(e);
      done = Promise.resolve(run.map(() => ({ error: err })));
    }
    p.inFlight++;
    p.inFlightRecords += run.length;
    p.starting = false;
    void done.then((results) => {
      run.forEach((w, i) => w.resolve(results[i]!));
      p.inFlight--;
      p.inFlightRecords -= run.length;
      if (p.inFlight === 0 && !p.starting) {
        // Drained: the next batch asks the store for the chunk's end again.
        p.next = undefined;
        p.tail = Promise.resolve(true);
      }
      this.#pump(handle, p);
    });
    this.#pump(handle, p);
  }

  /**
   * Numbers `run`'s batch, queues it locally and sends it (and the padding
   * of a full chunk) to the secondaries; returns the promise of its results,
   * which settles only after every earlier batch's (wrapped: the start
   * returns before the batch is done).
   */
  async #start(
    handle: number,
    p: Pipe,
    run: Waiting[],
  ): Promise<{ done: Promise<RecordResult[]> }> {
    const { store, cfg, order, stats } = this.cs;
    const { version, secondaries } = run[0]!.r;
    this.cs.checkLease(handle, version);
    // Idle (or a new lease): an empty write checks the version and waits
    // out queued writes; else the end of the last batch started.
    const going = p.next?.version === version;
    const length = going
      ? p.next!.offset
      : await store.write(handle, version, 0, new Uint8Array(0));
    // A new lease starts a new chain: the old one's batches are being ended.
    if (!going) p.tail = Promise.resolve(true);
    let n = 0;
    let bytes = 0;
    const offsets: number[] = [];
    while (
      n < run.length && length + bytes + run[n]!.r.data.length <= cfg.chunkBytes
    ) {
      offsets.push(length + bytes);
      bytes += run[n++]!.r.data.length;
    }
    const ctl = new AbortController();
    let mine = this.#forwarding.get(handle);
    if (mine === undefined) this.#forwarding.set(handle, mine = new Set());
    mine.add(ctl);
    // Numbered and queued locally in one synchronous step, so the local
    // order is the numbering; secondaries follow the numbers.
    const steps: Promise<void>[] = [];
    if (n > 0) {
      const data = new Uint8Array(bytes);
      for (let k = 0, o = 0; k < n; o += run[k]!.r.data.length, k++) {
        data.set(run[k]!.r.data, o);
      }
      const seq = order.takeSeq(handle, version);
      steps.push(
        store.write(handle, version, length, data).then((end) => {
          if (end !== length + bytes) {
            throw new GfsError(
              "unavailable",
              `chunk ${handle} changed under an append; retry`,
            );
          }
        }),
        this.cs.secondaries.applyBytes(
          secondaries,
          handle,
          { version, offset: length, seq },
          data,
          ctl.signal,
        ).then(failIfAny),
      );
    }
    if (n < run.length) {
      // Pad every replica to the full chunk so the rest go wholly to the next.
      const seq = order.takeSeq(handle, version);
      steps.push(
        store.write(handle, version, cfg.chunkBytes, new Uint8Array(0))
          .then(() => {}),
        this.cs.secondaries.apply(secondaries, handle, {
          version,
          offset: 0,
          padTo: cfg.chunkBytes,
          seq,
        }, ctl.signal).then(failIfAny),
      );
    }
    p.next = {
      version,
      offset: n < run.length ? cfg.chunkBytes : length + bytes,
    };
    const own = Promise.all(steps).then(
      () => undefined,
      (e) => asGfsError(e),
    ).finally(() => {
      mine.delete(ctl);
      if (mine.size === 0 && this.#forwarding.get(handle) === mine) {
        this.#forwarding.delete(handle);
      }
    });
    const before = p.tail;
    p.tail = Promise.all([before, own]).then(([ok, err]) =>
      ok && err === undefined
    );
    const done = Promise.all([before, own]).then(([earlierOk, err]) => {
      const full = new GfsError(
        "chunk_full",
        `chunk ${handle} is full; append to the next chunk`,
      );
      const fail = err ?? (earlierOk ? undefined : new GfsError(
        "unavailable",
        `an earlier append batch of chunk ${handle} failed; retry`,
      ));
      return run.map((_w, k): RecordResult => {
        if (k >= n) return { error: err ?? full };
        if (fail !== undefined) return { error: fail };
        return { offset: offsets[k]! };
      });
    });
    void own.then((err) => {
      if (err === undefined) {
        stats.writes += n;
        stats.writeBytes += bytes;
      }
    });
    return { done };
  }
}

function failIfAny(f: { failed: string[] }): void {
  if (f.failed.length > 0) {
    throw new GfsError(
      "unavailable",
      `append failed on ${f.failed.join(", ")}; retry`,
    );
  }
}

function asGfsError(e: unknown): GfsError {
  return e instanceof GfsError
    ? e
    : new GfsError("unavailable", `append failed: ${String(e)}; retry`);
}
