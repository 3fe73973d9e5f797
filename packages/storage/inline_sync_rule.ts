/**
 * Where a log's next batch sync runs (the `inlineSync` option of
 * {@link SegmentedLog}): on the calling thread unless the device looks
 * slow, judged by the wall time of the last syncs.
 *
 * A sync's wall time is the device's flush plus however long the thread
 * waited for a CPU after it: on a loaded machine (a dozen busy processes
 * on 2 cores) one sync in a while measures tens of milliseconds though
 * the device took 0.1. A moving average let one such sync (16× the
 * limit) send the syncs to the thread pool, where each costs about twice
 * the CPU and measures the event loop's wait as well, so they stayed
 * there: in the tables stack's 256-client line (load 12–19) up to 36%
 * of the three chunkservers' journal syncs in a 5 s round ran on the
 * pool (49% of one's; 10% over 14 rounds). A slow device makes every
 * sync slow, so the rule asks for `slowRun` slow syncs in a row; one fast
 * sync (inline or not) brings them back.
 */
export class InlineSyncRule {
  #slowRun = 0;

  /**
   * @param maxMs a sync over this many milliseconds is slow.
   * @param slowRun this many slow syncs in a row send syncs to the thread
   *   pool (default 8).
   */
  constructor(readonly maxMs: number, readonly slowRun = 8) {}

  /** True while the next sync should run inline. */
  get inline(): boolean {
    return this.#slowRun < this.slowRun;
  }

  /** Records one sync's wall time, ms. */
  record(ms: number): void {
    this.#slowRun = ms > this.maxMs ? this.#slowRun + 1 : 0;
  }
}
