import { GfsError } from "../shared/gfs_error.ts";

/** How long a mutation waits for the one numbered before it. */
const WAIT_TURN_MS = 15_000;

/**
 * Mutation order (GFS serial numbers): the primary numbers the mutations
 * of each chunk version ({@link takeSeq}); a secondary applies them in that
 * order ({@link waitTurn}, then {@link markApplied} once queued in the
 * store), so the primary can apply the next piece while the secondaries
 * finish the last. A secondary that misses a number fails the later ones
 * after a while, until a new version restarts the numbering.
 */
export class MutationOrder {
  /** Last number the primary handed out, per `handle:version`. */
  readonly #issued = new Map<string, number>();
  /** Last number applied here, and who waits for the next, per `handle:version`. */
  readonly #applied = new Map<
    string,
    { last: number; waiters: Map<number, () => void> }
  >();

  /** The next number of a mutation of `handle` at `version` (as its primary). */
  takeSeq(handle: number, version: number): number {
    const k = `${handle}:${version}`;
    const n = (this.#issued.get(k) ?? 0) + 1;
    this.#issued.set(k, n);
    return n;
  }

  /**
   * Resolves once every mutation numbered below `seq` has been applied here.
   * @throws GfsError `unavailable` when an earlier one never comes.
   */
  waitTurn(handle: number, version: number, seq: number): Promise<void> {
    const o = this.#of(handle, version);
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
      }, WAIT_TURN_MS);
      o.waiters.set(seq, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Mutation `seq` is queued in the store: the next one may go. */
  markApplied(handle: number, version: number, seq: number): void {
    const o = this.#of(handle, version);
    o.last = Math.max(o.last, seq);
    const next = o.waiters.get(o.last + 1);
    if (next) {
      o.waiters.delete(o.last + 1);
      next();
    }
  }

  /** Drops every number kept for `handle` (the chunk was deleted). */
  forget(handle: number): void {
    for (const m of [this.#issued, this.#applied]) {
      for (const k of [...m.keys()]) {
        if (k.startsWith(`${handle}:`)) m.delete(k);
      }
    }
  }

  #of(handle: number, version: number) {
    const k = `${handle}:${version}`;
    let o = this.#applied.get(k);
    if (o === undefined) {
      o = { last: 0, waiters: new Map() };
      this.#applied.set(k, o);
    }
    return o;
  }
}
