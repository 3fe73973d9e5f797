/**
 * `or_set.ts`: an add-wins observed-remove set (the "optimized" OR-set of
 * Bieniusa et al.). Every add is tagged with a dot (node, n-th add at that
 * node); a remove drops the dots it has seen. The dots a state has seen
 * are summed up by a version vector (node → highest n), so removes leave
 * no tombstones: on merge, a dot one side has and the other does not is
 * kept only when the other side never saw it (a concurrent add), and
 * dropped when it did (it was removed there). An add concurrent with a
 * remove of the same element therefore wins.
 */

/** A dot: the `n`-th add made at `node`. */
export type Dot = [node: string, n: number];

/** The set's state. */
export interface OrSet {
  /** Per node, the highest dot seen (every lower one was seen too). */
  vv: Record<string, number>;
  /** Present elements and the dots of their live adds (sorted). */
  e: Record<string, Dot[]>;
}

/** The empty set. */
export const emptySet = (): OrSet => ({ vv: {}, e: {} });

/** `s` after node `node` added `element` (its one live dot from now on). */
export function addToSet(s: OrSet, node: string, element: string): OrSet {
  const n = (s.vv[node] ?? 0) + 1;
  return {
    vv: { ...s.vv, [node]: n },
    e: { ...s.e, [element]: [[node, n]] },
  };
}

/** `s` after `element` was removed (the adds seen here are undone). */
export function removeFromSet(s: OrSet, element: string): OrSet {
  if (!(element in s.e)) return s;
  const e = { ...s.e };
  delete e[element];
  return { vv: s.vv, e };
}

const cmpDot = (a: Dot, b: Dot) =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];

/** The join of two sets. */
export function mergeSet(a: OrSet, b: OrSet): OrSet {
  const vv: Record<string, number> = { ...a.vv };
  for (const [k, v] of Object.entries(b.vv)) vv[k] = Math.max(vv[k] ?? 0, v);
  const e: Record<string, Dot[]> = {};
  const keys = new Set([...Object.keys(a.e), ...Object.keys(b.e)]);
  for (const el of keys) {
    const da = a.e[el] ?? [];
    const db = b.e[el] ?? [];
    const inB = new Set(db.map((d) => `${d[0]}\u0000${d[1]}`));
    const inA = new Set(da.map((d) => `${d[0]}\u0000${d[1]}`));
    const out: Dot[] = [];
    for (const d of da) {
      // Both have it, or b never saw it (added concurrently here).
      if (inB.has(`${d[0]}\u0000${d[1]}`) || d[1] > (b.vv[d[0]] ?? 0)) {
        out.push(d);
      }
    }
    for (const d of db) {
      if (!inA.has(`${d[0]}\u0000${d[1]}`) && d[1] > (a.vv[d[0]] ?? 0)) {
        out.push(d);
      }
    }
    if (out.length) e[el] = out.sort(cmpDot);
  }
  return { vv, e };
}

/** The elements, sorted. */
export const setElements = (s: OrSet): string[] => Object.keys(s.e).sort();
