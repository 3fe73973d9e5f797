/**
 * Receive buffers kept for reuse. On this kind of machine new memory is
 * expensive: each 4 KiB page faults on first touch (measured on the
 * shared 2-core VM: a fresh 1 MiB buffer filled in ~12 ms, a reused one in
 * well under 1 ms), which made a fresh buffer per received chunk piece
 * cost more than the bytes' trip over loopback.
 */
export class BufferPool {
  readonly #free: Uint8Array[] = [];
  #kept = 0;

  /** @param maxBytes most bytes kept idle. */
  constructor(readonly maxBytes: number) {}

  /**
   * A buffer of exactly `n` bytes (a view of a kept one when one fits,
   * not more than twice as large), contents undefined.
   */
  take(n: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const len = this.#free[i]!.length;
      if (
        len >= n && len <= 2 * n + 4096 &&
        (best < 0 || len < this.#free[best]!.length)
      ) best = i;
    }
    if (best < 0) return new Uint8Array(n);
    const [b] = this.#free.splice(best, 1);
    this.#kept -= b!.length;
    return b!.subarray(0, n);
  }

  /** Gives a buffer from {@link take} back, once nothing else uses it. */
  give(view: Uint8Array): void {
    const whole = new Uint8Array(view.buffer, 0, view.buffer.byteLength);
    if (this.#kept + whole.length > this.maxBytes) return;
    this.#kept += whole.length;
    this.#free.push(whole);
  }
}
