/**
 * `pn_counter.ts`: a PN counter (a state-based CRDT): per node, the sum of
 * its increments and the sum of its decrements, each only ever growing.
 * Merge takes the per-node maximum; the value is ΣP − ΣN.
 */

/** Per-node increment and decrement totals. */
export interface PnCounter {
  p: Record<string, number>;
  n: Record<string, number>;
}

/** The empty counter. */
export const emptyCounter = (): PnCounter => ({ p: {}, n: {} });

/** `c` after node `node` added `delta` (negative: a decrement). */
export function incrementCounter(
  c: PnCounter,
  node: string,
  delta: number,
): PnCounter {
  if (delta >= 0) {
    return { p: { ...c.p, [node]: (c.p[node] ?? 0) + delta }, n: c.n };
  }
  return { p: c.p, n: { ...c.n, [node]: (c.n[node] ?? 0) - delta } };
}

const maxMap = (a: Record<string, number>, b: Record<string, number>) => {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
};

/** The join of two counters. */
export const mergeCounter = (a: PnCounter, b: PnCounter): PnCounter => ({
  p: maxMap(a.p, b.p),
  n: maxMap(a.n, b.n),
});

/** The counter's value. */
export function counterValue(c: PnCounter): number {
  let v = 0;
  for (const x of Object.values(c.p)) v += x;
  for (const x of Object.values(c.n)) v -= x;
  return v;
}
