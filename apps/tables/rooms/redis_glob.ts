/**
 * `redis_glob.ts`: Redis' glob patterns (PSUBSCRIBE, KEYS, SCAN MATCH):
 * `*` any run, `?` one character, `[abc]`, `[^a]` / `[!a]`, `[a-z]`, and
 * `\x` for a literal x. Compiled once into a RegExp; never throws.
 */

const special = /[.*+?^${}()|[\]\\/]/g;

/** A matcher for the Redis glob `pattern`. */
export function redisGlob(pattern: string): (s: string) => boolean {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "\\" && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(special, "\\$&");
    } else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      let negate = false;
      if (body[0] === "^" || body[0] === "!") {
        negate = true;
        body = body.slice(1);
      }
      // Keep ranges (a-z); escape everything else RegExp would read.
      const cls = body.replace(/[\\\]^[]/g, "\\$&");
      re += `[${negate ? "^" : ""}${cls}]`;
      i = close;
    } else re += c.replace(special, "\\$&");
  }
  try {
    const r = new RegExp(re + "$", "u");
    return (s) => r.test(s);
  } catch {
    // A class RegExp refuses (e.g. a reversed range [z-a]): the pattern
    // then matches only itself, rather than failing the subscription.
    return (s) => s === pattern;
  }
}
