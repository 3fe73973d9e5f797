import type { Analyzer } from "./analyzer.ts";
import { MARK_EVERY, tokenEnd, tokenStart } from "./tokenizer.ts";

const TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu;
const MAX_SCAN_CHARS = 50_000;

const NEEDS_ESCAPE = /[&<>"]/;

/** Escapes `&`, `<`, `>` and `"`. */
export function escapeHtml(s: string): string {
  // Most words have nothing to escape: skip the replace and its closure.
  if (!NEEDS_ESCAPE.test(s)) return s;
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

/**
 * Start position of the excerpt for sorted, distinct hit positions: the
 * window of `window` tokens holding the most hits (earliest on ties),
 * starting 3 tokens before its first hit so it reads naturally.
 */
export function bestWindowStart(
  hits: ArrayLike<number>,
  window: number,
): number {
  if (hits.length === 0) return 0;
  let best = 0;
  let bestCount = 0;
  let j = 0;
  for (let i = 0; i < hits.length; i++) {
    const first = hits[i]!;
    if (j < i) j = i;
    while (j + 1 < hits.length && hits[j + 1]! < first + window - 3) j++;
    if (j - i + 1 > bestCount) {
      bestCount = j - i + 1;
      best = first;
    }
  }
  return Math.max(0, best - 3);
}

/**
 * The excerpt of `text` for a document whose matching words are at token
 * positions `hits` (sorted, distinct; read from the index's postings, so
 * nothing is re-analyzed): `window` tokens around the densest cluster, the
 * hits wrapped in `<mark>…</mark>`, the rest HTML-escaped, "…" at cut ends.
 * `marks` are the text's stored token offsets (see tokenMarks): the scan
 * starts at the mark before the window, so its cost does not grow with the
 * length of the text. Without marks it scans from the start (short texts).
 */
export function snippetAt(
  text: string,
  hits: ArrayLike<number>,
  marks: ArrayLike<number> | null,
  window = 24,
): string {
  const start = bestWindowStart(hits, window);
  let pos = 0;
  let i = 0;
  if (marks !== null && marks.length > 0) {
    const m = Math.min(Math.floor(start / MARK_EVERY), marks.length - 1);
    pos = m * MARK_EVERY;
    i = marks[m]!;
  } else {
    i = tokenStart(text, 0);
  }
  // Skip to the window's first token.
  while (pos < start && i < text.length) {
    i = tokenStart(text, tokenEnd(text, i));
    pos++;
  }
  if (i >= text.length) return "";
  let out = pos > 0 ? "…" : "";
  let h = 0;
  while (h < hits.length && hits[h]! < pos) h++;
  let last = i;
  const end = pos + window;
  while (pos < end && i < text.length) {
    const e = tokenEnd(text, i);
    // Between words: usually one space, which needs neither collapsing nor escaping.
    const gap = text.slice(last, i);
    out += gap === " " ? gap : escapeHtml(gap.replace(/\s+/g, " "));
    const word = escapeHtml(text.slice(i, e));
    if (h < hits.length && hits[h] === pos) {
      out += `<mark>${word}</mark>`;
      h++;
    } else {
      out += word;
    }
    last = e;
    i = tokenStart(text, e);
    pos++;
  }
  if (i < text.length) out += "…";
  return out;
}
