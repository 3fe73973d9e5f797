import type { Analyzer } from "./analyzer.ts";

const TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu;
const MAX_SCAN_CHARS = 50_000;

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) =>
      c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;",
  );
}

/**
 * A short excerpt of `text` around the densest cluster of query terms, with
 * each matching word wrapped in `<mark>…</mark>` and the rest HTML-escaped.
 * Words match when they analyze to one of `terms` (so "flows" marks for
 * the query "flow").
 *
 * @param window excerpt length in words (default 24).
 * @returns the excerpt ("…" marks cut ends), or the start of the text when no term occurs.
 */
export function snippet(
  text: string,
  terms: ReadonlySet<string>,
  prefixes: readonly string[],
  analyzer: Analyzer,
  window = 24,
): string {
  const scan = text.length > MAX_SCAN_CHARS
    ? text.slice(0, MAX_SCAN_CHARS)
    : text;
  const tokens: Array<{ start: number; end: number; hit: boolean }> = [];
  for (const m of scan.matchAll(TOKEN)) {
    const lower = m[0].toLowerCase().normalize("NFD").replace(/\p{M}+/gu, "");
    const t = analyzer.term(lower);
    const hit = (t !== null && terms.has(t)) ||
      prefixes.some((p) => lower.startsWith(p));
    tokens.push({ start: m.index, end: m.index + m[0].length, hit });
  }
  if (tokens.length === 0) return "";
  // Best window: the most hits (sliding count), earliest on ties.
  let best = 0;
  let bestHits = -1;
  let hits = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]!.hit) hits++;
    if (i >= window && tokens[i - window]!.hit) hits--;
    const start = Math.max(0, i - window + 1);
    if (hits > bestHits) {
      bestHits = hits;
      best = start;
    }
  }
  // Start a little before the first hit of the window so it reads naturally.
  const first = tokens.slice(best, best + window).findIndex((t) => t.hit);
  if (first > 3) best += first - 3;
  const end = Math.min(tokens.length, best + window);
  let out = best > 0 ? "…" : "";
  let pos = tokens[best]!.start;
  for (let i = best; i < end; i++) {
    const t = tokens[i]!;
    out += escapeHtml(scan.slice(pos, t.start).replace(/\s+/g, " "));
    const word = escapeHtml(scan.slice(t.start, t.end));
    out += t.hit ? `<mark>${word}</mark>` : word;
    pos = t.end;
  }
  if (end < tokens.length || scan.length < text.length) out += "…";
  return out;
}
