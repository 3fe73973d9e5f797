/**
 * `redis_glob.ts`: Redis' glob patterns (`stringmatchlen` in Redis' `util.c`),
 * used by `SCAN … MATCH` and `PSUBSCRIBE` (RESP and the rooms): `*` any run, `?` one byte,
 * `[abc]`, `[^a]`, `[a-z]` a class, `\x` a literal `x`. Works on bytes
 * (latin1 strings), so it matches binary keys byte for byte. Iterative with
 * backtracking to the last `*`, so no pattern takes exponential time.
 */

/** Whether `text` matches the Redis glob `pattern` (both latin1 strings). */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  const pn = pattern.length;
  const tn = text.length;
  while (t < tn) {
    if (p < pn) {
      const c = pattern.charCodeAt(p);
      if (c === 42 /* * */) {
        while (p < pn && pattern.charCodeAt(p) === 42) p++;
        if (p === pn) return true;
        starP = p;
        starT = t;
        continue;
      }
      const step = matchOne(pattern, p, text.charCodeAt(t));
      if (step > 0) {
        p += step;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    t = ++starT;
  }
  while (p < pn && pattern.charCodeAt(p) === 42) p++;
  return p === pn;
}

/**
 * Matches one pattern element at `p` (not `*`) against byte `ch`: the
 * element's length when it matches, 0 when not.
 */
function matchOne(pattern: string, p: number, ch: number): number {
  const pn = pattern.length;
  const c = pattern.charCodeAt(p);
  if (c === 63 /* ? */) return 1;
  if (c === 92 /* \ */ && p + 1 < pn) {
    return pattern.charCodeAt(p + 1) === ch ? 2 : 0;
  }
  if (c !== 91 /* [ */) return c === ch ? 1 : 0;
  let i = p + 1;
  const not = i < pn && pattern.charCodeAt(i) === 94; /* ^ */
  if (not) i++;
  let match = false;
  for (;;) {
    if (i >= pn) {
      // An unclosed class: Redis treats the end of the pattern as its end.
      break;
    }
    const x = pattern.charCodeAt(i);
    if (x === 93 /* ] */) break;
    if (x === 92 && i + 1 < pn) {
      if (pattern.charCodeAt(i + 1) === ch) match = true;
      i += 2;
    } else if (i + 2 < pn && pattern.charCodeAt(i + 1) === 45 /* - */) {
      let lo = x;
      let hi = pattern.charCodeAt(i + 2);
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) match = true;
      i += 3;
    } else {
      if (x === ch) match = true;
      i++;
    }
  }
  if (not) match = !match;
  // Consume the closing bracket when there is one.
  const len = (i < pn ? i + 1 : i) - p;
  return match ? Math.max(1, len) : 0;
}

/** A matcher for the Redis glob `pattern` (see {@link globMatch}). */
export function redisGlob(pattern: string): (text: string) => boolean {
  return (text) => globMatch(pattern, text);
}
