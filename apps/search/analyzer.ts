import { porterStem } from "./stemmer.ts";
import { isWordChar, WORD_ASCII } from "./tokenizer.ts";

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
// marks, folded away), with inner apostrophes ("don't"); see tokenizer.ts.
const MARKS = /\p{M}+/gu;

const STEM_CACHE_LIMIT = 200_000;
/** Initial slots of the ASCII token cache (a power of two; it doubles at 40 % full). */
const CACHE_SLOTS = 1 << 14;
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Unicode-aware analyzer: splits on anything that is not a letter or digit
 * (any script), lowercases, folds diacritics ("Café" → "cafe"), removes
 * stop words and applies the Porter stemmer. Pure and deterministic.
 */
export class Analyzer {
  readonly #stop: Set<string>;
  readonly #stem: boolean;
  readonly #maxLen: number;
  /** Terms of tokens that are not plain ASCII ("" marks a stop word). */
  readonly #cache = new Map<string, string>();
  /** Open-addressing cache of ASCII tokens (see #cached): keys and their terms. */
  #keys: Array<string | undefined> = new Array(CACHE_SLOTS).fill(undefined);
  #vals: string[] = new Array(CACHE_SLOTS).fill("");
  /** Each slot's hash, so a probe rejects a different key without reading it. */
  #hashes = new Int32Array(CACHE_SLOTS);
  #used = 0;

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
    // An ASCII token is hashed while it is scanned and looked up in the
    // term cache by its characters, so a token seen before costs no
    // string (no slice, no rehash): under a bulk load the slices and
    // their garbage were most of the analysis.
    const lower = text.toLowerCase();
    const n = lower.length;
    const maxLen = this.#maxLen;
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
      let h = Math.imul(FNV_OFFSET ^ c, FNV_PRIME);
      for (;;) {
        i++;
        if (i >= n) break;
        c = lower.charCodeAt(i);
        if (c < 128 ? WORD_ASCII[c] === 1 : isWordChar(lower, i)) {
          if (c >= 128) ascii = false;
          h = Math.imul(h ^ c, FNV_PRIME);
          continue;
        }
        // Inner apostrophe: "don't" is one token.
        if ((c === 39 || c === 0x2019) && i + 1 < n) {
          const d = lower.charCodeAt(i + 1);
          if (d < 128 ? WORD_ASCII[d] === 1 : isWordChar(lower, i + 1)) {
            if (c !== 39) ascii = false;
            h = Math.imul(h ^ c, FNV_PRIME);
            continue;
          }
        }
        break;
      }
      const p = pos++;
      let t: string;
      if (ascii && extraStop === undefined) {
        if (i - start > maxLen) continue;
        t = this.#cached(lower, start, i, h);
      } else {
        let raw = lower.slice(start, i);
        if (!ascii) {
          raw = raw.normalize("NFD").replace(MARKS, "").replace("’", "'");
        }
        if (raw.length > maxLen || raw.length === 0) continue;
        if (extraStop !== undefined && extraStop.has(raw)) continue;
        t = this.#termOf(raw);
      }
      if (t === "") continue;
      terms.push(t);
      positions.push(p);
    }
    return { terms, positions };
  }

  /**
   * The term of the ASCII token `s[start, end)` whose FNV-1a hash is `h`
   * ("" for a stop word), from the open-addressing cache.
   */
  #cached(s: string, start: number, end: number, h: number): string {
    const keys = this.#keys;
    const hashes = this.#hashes;
    const mask = keys.length - 1;
    const len = end - start;
    let slot = h & mask;
    for (;;) {
      const k = keys[slot];
      if (k === undefined) break;
      if (hashes[slot] === h && k.length === len) {
        let j = 0;
        while (j < len && k.charCodeAt(j) === s.charCodeAt(start + j)) j++;
        if (j === len) return this.#vals[slot]!;
      }
      slot = (slot + 1) & mask;
    }
    const raw = s.slice(start, end);
    const t = this.#stop.has(raw) ? "" : this.#stem ? porterStem(raw) : raw;
    if (this.#used >= STEM_CACHE_LIMIT) {
      this.#keys.fill(undefined);
      this.#used = 0;
    } else if ((this.#used + 1) * 5 > keys.length * 2) this.#grow();
    this.#insert(raw, t, h);
    return t;
  }

  #insert(key: string, term: string, h: number): void {
    const mask = this.#keys.length - 1;
    let slot = h & mask;
    while (this.#keys[slot] !== undefined) slot = (slot + 1) & mask;
    this.#keys[slot] = key;
    this.#vals[slot] = term;
    this.#hashes[slot] = h;
    this.#used++;
  }

  /** Doubles the ASCII cache (it stays at most 40 % full). */
  #grow(): void {
    const keys = this.#keys;
    const vals = this.#vals;
    const hashes = this.#hashes;
    this.#keys = new Array(keys.length * 2).fill(undefined);
    this.#vals = new Array(keys.length * 2).fill("");
    this.#hashes = new Int32Array(keys.length * 2);
    this.#used = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k !== undefined) this.#insert(k, vals[i]!, hashes[i]!);
    }
  }

  /** The term of a token that is not plain ASCII ("" for a stop word). */
  #termOf(raw: string): string {
    // One cache lookup answers both "stop word?" ("" marks one) and the stem.
    let t = this.#cache.get(raw);
    if (t === undefined) {
      t = this.#stop.has(raw) ? "" : this.#stem ? porterStem(raw) : raw;
      if (this.#cache.size >= STEM_CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(raw, t);
    }
    return t;
  }

  /**
   * The term of one already-lowercased token (stemmed when stemming is on),
   * or null when it is a stop word.
   */
  term(token: string): string | null {
    // The same caches as analyze(): "" marks a stop word.
    let ascii = true;
    let h = FNV_OFFSET;
    for (let i = 0; i < token.length; i++) {
      const c = token.charCodeAt(i);
      if (c >= 128) {
        ascii = false;
        break;
      }
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    const t = ascii && token.length > 0
      ? this.#cached(token, 0, token.length, h)
      : this.#termOf(token);
    return t === "" ? null : t;
  }

  /** Stems a lowercased token when stemming is on. */
  normalizeToken(token: string): string {
    return this.#stem ? porterStem(token) : token;
  }
}
