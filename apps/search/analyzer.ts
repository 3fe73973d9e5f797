import { porterStem } from "./stemmer.ts";

/**
 * Lucene's default English stop words (EnglishAnalyzer), the list most BM25
 * engines start from.
 */
export const ENGLISH_STOP_WORDS: readonly string[] = [
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "but",
  "by",
  "for",
  "if",
  "in",
  "into",
  "is",
  "it",
  "no",
  "not",
  "of",
  "on",
  "or",
  "such",
  "that",
  "the",
  "their",
  "then",
  "there",
  "these",
  "they",
  "this",
  "to",
  "was",
  "will",
  "with",
];

/** How text becomes terms. Every field and every query uses the same one. */
export interface AnalyzerOptions {
  /** Words dropped after lowercasing (default {@link ENGLISH_STOP_WORDS}). */
  stopWords?: Iterable<string>;
  /** Porter-stem each token (default true). */
  stem?: boolean;
  /** Tokens longer than this many UTF-16 units are dropped (default 64): base64 and hashes are not words. */
  maxTokenLength?: number;
}

/** Tokens of one text: parallel arrays of terms and token positions. */
export interface AnalyzedText {
  /** Terms after lowercasing, stop-word removal and stemming. */
  terms: string[];
  /** Position of each term in the token stream; removed stop words leave gaps so phrases stay exact. */
  positions: number[];
}

// Tokens are runs of letters and digits of any script (plus combining
// marks, folded away), with inner apostrophes ("don't").
const WORD_ASCII = new Uint8Array(128);
for (let c = 48; c <= 57; c++) WORD_ASCII[c] = 1;
for (let c = 97; c <= 122; c++) WORD_ASCII[c] = 1;
for (let c = 65; c <= 90; c++) WORD_ASCII[c] = 1;
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;
const MARKS = /\p{M}+/gu;

function isWordChar(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  // Surrogate pair: test the whole code point.
  if (c >= 0xd800 && c <= 0xdbff) return WORD_CHAR.test(s.slice(i, i + 2));
  if (c >= 0xdc00 && c <= 0xdfff) return WORD_CHAR.test(s.slice(i - 1, i + 1));
  return WORD_CHAR.test(s[i]!);
}
const STEM_CACHE_LIMIT = 200_000;

/**
 * Unicode-aware analyzer: splits on anything that is not a letter or digit
 * (any script), lowercases, folds diacritics ("Café" → "cafe"), removes
 * stop words and applies the Porter stemmer. Pure and deterministic.
 */
export class Analyzer {
  readonly #stop: Set<string>;
  readonly #stem: boolean;
  readonly #maxLen: number;
  readonly #cache = new Map<string, string>();

  /** @param options see {@link AnalyzerOptions}. */
  constructor(options: AnalyzerOptions = {}) {
    this.#stop = new Set(options.stopWords ?? ENGLISH_STOP_WORDS);
    this.#stem = options.stem ?? true;
    this.#maxLen = options.maxTokenLength ?? 64;
  }

  /**
   * Analyzes `text` into terms with positions. Tokens in `extraStop`
   * (lowercased, diacritics folded) are dropped too, leaving position gaps
   * like stop words (queries use it for `QUERY_STOP_WORDS`).
   */
  analyze(text: string, extraStop?: ReadonlySet<string>): AnalyzedText {
    const terms: string[] = [];
    const positions: number[] = [];
    // A hand-rolled scanner: ASCII through a table, anything else through
    // the Unicode regex; several times faster than matchAll on mail text.
    const lower = text.toLowerCase();
    const n = lower.length;
    let pos = 0;
    let i = 0;
    while (i < n) {
      let c = lower.charCodeAt(i);
      if (!(c < 128 ? WORD_ASCII[c] === 1 : isWordChar(lower, i))) {
        i++;
        continue;
      }
      const start = i;
      let ascii = c < 128;
      for (;;) {
        i++;
        if (i >= n) break;
        c = lower.charCodeAt(i);
        if (c < 128 ? WORD_ASCII[c] === 1 : isWordChar(lower, i)) {
          if (c >= 128) ascii = false;
          continue;
        }
        // Inner apostrophe: "don't" is one token.
        if ((c === 39 || c === 0x2019) && i + 1 < n) {
          const d = lower.charCodeAt(i + 1);
          if (d < 128 ? WORD_ASCII[d] === 1 : isWordChar(lower, i + 1)) {
            if (c !== 39) ascii = false;
            continue;
          }
        }
        break;
      }
      let raw = lower.slice(start, i);
      if (!ascii) {
        raw = raw.normalize("NFD").replace(MARKS, "").replace("’", "'");
      }
      const p = pos++;
      if (raw.length > this.#maxLen || raw.length === 0) continue;
      if (extraStop !== undefined && extraStop.has(raw)) continue;
      // One cache lookup answers both "stop word?" ("" marks one) and the stem.
      let t = this.#cache.get(raw);
      if (t === undefined) {
        t = this.#stop.has(raw) ? "" : this.#stem ? porterStem(raw) : raw;
        if (this.#cache.size >= STEM_CACHE_LIMIT) this.#cache.clear();
        this.#cache.set(raw, t);
      }
      if (t === "") continue;
      terms.push(t);
      positions.push(p);
    }
    return { terms, positions };
  }

  /**
   * The term of one already-lowercased token (stemmed when stemming is on),
   * or null when it is a stop word.
   */
  term(token: string): string | null {
    if (this.#stop.has(token)) return null;
    return this.normalizeToken(token);
  }

  /** Stems a lowercased token when stemming is on. */
  normalizeToken(token: string): string {
    return this.#stem ? porterStem(token) : token;
  }
}
