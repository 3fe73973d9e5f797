/**
 * The virtual clock and single-threaded event scheduler of a simulation.
 * Events run in (time, insertion order), so equal-time events are
 * deterministic; nothing ever waits on a real clock.
 */
export class Scheduler {
  /** Current virtual time, ms. */
  now = 0;
  /** Events executed so far. */
  executed = 0;
  #seq = 0;
  #times: number[] = [];
  #seqs: number[] = [];
  #fns: (() => void)[] = [];

  /** Number of events waiting. */
  get pending(): number {
    return this.#fns.length;
  }

  /** Virtual time of the next event, or undefined when none is waiting. */
  get nextAt(): number | undefined {
    return this.#fns.length > 0 ? this.#times[0] : undefined;
  }

  /** Runs `fn` at virtual time `time` (ms; clamped to now). */
  at(time: number, fn: () => void): void {
    const t = time < this.now ? this.now : time;
    // Binary heap keyed by (time, seq), stored as parallel arrays.
    const times = this.#times;
    const seqs = this.#seqs;
    const fns = this.#fns;
    const seq = this.#seq++;
    let i = fns.length;
    times.push(t);
    seqs.push(seq);
    fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! < t || (times[p] === t && seqs[p]! < seq)) break;
      times[i] = times[p]!;
      seqs[i] = seqs[p]!;
      fns[i] = fns[p]!;
      i = p;
    }
    times[i] = t;
    seqs[i] = seq;
    fns[i] = fn;
  }

  /** Runs `fn` after `delay` ms of virtual time. */
  after(delay: number, fn: () => void): void {
    this.at(this.now + delay, fn);
  }

  #pop(): (() => void) | undefined {
    const fns = this.#fns;
    if (fns.length === 0) return undefined;
    const times = this.#times;
    const seqs = this.#seqs;
    const top = fns[0]!;
    this.now = times[0]!;
    const lastT = times.pop()!;
    const lastS = seqs.pop()!;
    const lastF = fns.pop()!;
    const n = fns.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (
          r < n &&
          (times[r]! < times[l]! ||
            (times[r] === times[l] && seqs[r]! < seqs[l]!))
        ) c = r;
        if (
          times[c]! > lastT || (times[c] === lastT && seqs[c]! > lastS)
        ) break;
        times[i] = times[c]!;
        seqs[i] = seqs[c]!;
        fns[i] = fns[c]!;
        i = c;
      }
      times[i] = lastT;
      seqs[i] = lastS;
      fns[i] = lastF;
    }
    return top;
  }

  /** Executes the next event; false when none is left. */
  step(): boolean {
    const fn = this.#pop();
    if (!fn) return false;
    this.executed++;
    fn();
    return true;
  }

  /** Runs every event up to and including virtual time `time`, then sets now = time. */
  runUntil(time: number): void {
    while (this.#fns.length > 0 && this.#times[0]! <= time) this.step();
    if (this.now < time) this.now = time;
  }

  /** Runs for `ms` of virtual time. */
  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Runs until `done()` holds (checked after each event) or `limitMs` of
   * virtual time pass. @returns whether `done()` held.
   */
  runWhile(done: () => boolean, limitMs: number): boolean {
    const end = this.now + limitMs;
    if (done()) return true;
    while (this.#fns.length > 0 && this.#times[0]! <= end) {
      this.step();
      if (done()) return true;
    }
    if (this.now < end) this.now = end;
    return done();
  }
}
