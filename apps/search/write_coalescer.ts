import type { StoredDocument } from "./document.ts";

/** Limits of one coalesced write (see {@link WriteCoalescer}). */
export interface CoalescerLimits {
  /** Writes to one shard in flight at once (default 1). */
  inFlight?: number;
  /** Stop adding waiting writes once a batch holds this many documents (default 5,000). */
  maxDocs?: number;
  /** Stop adding waiting writes once a batch holds this many name + body characters (default 8M). */
  maxChars?: number;
}

interface Waiting<R> {
  docs: StoredDocument[];
  chars: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for bulk adds, per shard: while a shard has `inFlight`
 * writes under way, later add-only writes to it wait, and the next write
 * sent carries every waiting one (in arrival order, up to the limits).
 * Every request in a batch gets the batch's outcome. Reason: under a bulk
 * load each 500-line request splits into ~170-document writes per shard;
 * each became its own segment, log record, fsync and HTTP exchanges on
 * both replicas, and ten such segments a merge that rewrote them all.
 * Batched, the same documents make a few bigger segments. Waiting adds
 * nothing when a shard is idle (the first write goes at once).
 */
export class WriteCoalescer<R> {
  readonly #send: (shard: number, docs: StoredDocument[]) => Promise<R>;
  readonly #inFlight: number;
  readonly #maxDocs: number;
  readonly #maxChars: number;
  readonly #busy: number[];
  readonly #queues: Array<Array<Waiting<R>>>;
  /** Writes sent (batches), for tests. */
  batches = 0;

  constructor(
    shards: number,
    send: (shard: number, docs: StoredDocument[]) => Promise<R>,
    limits: CoalescerLimits = {},
  ) {
    this.#send = send;
    this.#inFlight = limits.inFlight ?? 1;
    this.#maxDocs = limits.maxDocs ?? 5000;
    this.#maxChars = limits.maxChars ?? 8_000_000;
    this.#busy = new Array(shards).fill(0);
    this.#queues = Array.from({ length: shards }, () => []);
  }

  /** Adds `docs` to shard `shard`; resolves with the outcome of the write that carried them. */
  write(shard: number, docs: StoredDocument[]): Promise<R> {
    let chars = 0;
    for (const d of docs) chars += d.name.length + d.body.length;
    return new Promise<R>((resolve, reject) => {
      this.#queues[shard]!.push({ docs, chars, resolve, reject });
      this.#pump(shard);
    });
  }

  #pump(shard: number): void {
    const queue = this.#queues[shard]!;
    while (this.#busy[shard]! < this.#inFlight && queue.length > 0) {
      // The first waiting write always goes, whatever its size.
      const batch = [queue.shift()!];
      let docs = batch[0]!.docs.length;
      let chars = batch[0]!.chars;
      while (
        queue.length > 0 && docs + queue[0]!.docs.length <= this.#maxDocs &&
        chars + queue[0]!.chars <= this.#maxChars
      ) {
        const w = queue.shift()!;
        batch.push(w);
        docs += w.docs.length;
        chars += w.chars;
      }
      const all = batch.length === 1
        ? batch[0]!.docs
        : batch.flatMap((w) => w.docs);
      this.#busy[shard]!++;
      this.batches++;
      this.#send(shard, all).then(
        (r) => {
          for (const w of batch) w.resolve(r);
        },
        (e) => {
          for (const w of batch) w.reject(e);
        },
      ).finally(() => {
        this.#busy[shard]!--;
        this.#pump(shard);
      });
    }
  }
}
