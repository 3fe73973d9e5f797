import { compareHits, type Ranked } from "./hit_order.ts";

/**
 * Keeps the best `k` of a stream of hits in a binary heap whose root is the
 * worst kept hit (lowest score, then largest id), so each offer costs
 * O(log k) and the admission threshold is read in O(1).
 */
export class TopK<T extends Ranked> {
  readonly #heap: T[] = [];

  /** @param k hits to keep (≥ 0). */
  constructor(readonly k: number) {}

  /** Hits kept so far. */
  get size(): number {
    return this.#heap.length;
  }

  /** True when k hits are kept, so a newcomer must beat {@link threshold}. */
  get full(): boolean {
    return this.#heap.length >= this.k;
  }

  /** Score of the worst kept hit when full, else -Infinity. */
  threshold(): number {
    return this.full && this.k > 0 ? this.#heap[0]!.score : -Infinity;
  }

  /** True when a hit with this score and id would be kept. */
  accepts(score: number, id: string): boolean {
    if (this.k === 0) return false;
    if (!this.full) return true;
    return compareHits({ score, id }, this.#heap[0]!) < 0;
  }

  /** Offers a hit; keeps it when it ranks among the best k. */
  offer(hit: T): void {
    const h = this.#heap;
    if (h.length < this.k) {
      h.push(hit);
      this.#up(h.length - 1);
    } else if (this.k > 0 && compareHits(hit, h[0]!) < 0) {
      h[0] = hit;
      this.#down(0);
    }
  }

  /** The kept hits, best first. */
  sorted(): T[] {
    return [...this.#heap].sort(compareHits);
  }

  // Heap order: parent is worse than (ranks after) its children.
  #worse(a: T, b: T): boolean {
    return compareHits(a, b) > 0;
  }

  #up(i: number): void {
    const h = this.#heap;
    const x = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#worse(x, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = x;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const x = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.#worse(h[c + 1]!, h[c]!)) c++;
      if (!this.#worse(h[c]!, x)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = x;
  }
}
