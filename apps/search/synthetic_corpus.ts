import type { StoredDocument } from "./document.ts";

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = [
  "ka",
  "to",
  "ri",
  "men",
  "sol",
  "va",
  "ne",
  "dor",
  "li",
  "pa",
  "qu",
  "tes",
  "mo",
  "ran",
  "zi",
  "bel",
  "cor",
  "ul",
  "fi",
  "gra",
  "hon",
  "ix",
  "jo",
  "lum",
  "nor",
  "pe",
  "sta",
  "tri",
  "vel",
  "wy",
  "xan",
  "yor",
];

/** Knobs of {@link syntheticCorpus}. */
export interface SyntheticOptions {
  docs: number;
  /** Distinct words (default 50,000). */
  vocabulary?: number;
  /** Zipf exponent (default 1.0). */
  exponent?: number;
  /** Mean body length in words (default 60). */
  bodyWords?: number;
  seed?: number;
}

/** A seeded Zipfian word source: word(rank) and draw(). */
export class ZipfVocabulary {
  readonly words: string[];
  readonly #cdf: Float64Array;
  readonly #rnd: () => number;

  constructor(size: number, exponent: number, rnd: () => number) {
    this.#rnd = rnd;
    this.words = [];
    const seen = new Set<string>();
    for (let i = 0; this.words.length < size; i++) {
      // Base-32 digits of i spelled with syllables: unique, pronounceable.
      let n = i;
      let w = "";
      do {
        w += SYLLABLES[n % 32];
        n = Math.floor(n / 32);
      } while (n > 0);
      if (!seen.has(w)) {
        seen.add(w);
        this.words.push(w);
      }
    }
    this.#cdf = new Float64Array(size);
    let sum = 0;
    for (let r = 0; r < size; r++) {
      this.#cdf[r] = sum += 1 / (r + 1) ** exponent;
    }
    for (let r = 0; r < size; r++) this.#cdf[r]! /= sum;
  }

  /** A random word, rank r drawn with probability ∝ 1/r^s. */
  draw(): string {
    const x = this.#rnd();
    let lo = 0;
    let hi = this.#cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return this.words[lo]!;
  }
}

/**
 * Generates documents on the fly (nothing is stored): Zipfian words from a
 * seeded vocabulary, names of 3–8 words, bodies of about `bodyWords`,
 * 1,000 users. Same seed, same corpus.
 */
export function* syntheticCorpus(
  o: SyntheticOptions,
): Generator<StoredDocument> {
  const rnd = seededRandom(o.seed ?? 1);
  const vocab = new ZipfVocabulary(
    o.vocabulary ?? 50_000,
    o.exponent ?? 1,
    rnd,
  );
  const mean = o.bodyWords ?? 60;
  for (let i = 0; i < o.docs; i++) {
    const nameLen = 3 + Math.floor(rnd() * 6);
    const bodyLen = Math.max(1, Math.round(mean * (0.5 + rnd())));
    const name: string[] = [];
    for (let j = 0; j < nameLen; j++) name.push(vocab.draw());
    const body: string[] = [];
    for (let j = 0; j < bodyLen; j++) body.push(vocab.draw());
    yield {
      id: `s${i}`,
      user_id: Math.floor(rnd() * 1000),
      name: name.join(" "),
      body: body.join(" "),
      created: i,
    };
  }
}

/**
 * Seeded queries of 1–3 words drawn from ranks `minRank..maxRank` of the same vocabulary
 * (skipping the very common head, as real queries do).
 */
export function syntheticQueries(
  count: number,
  o: {
    vocabulary?: number;
    seed?: number;
    minRank?: number;
    maxRank?: number;
  } = {},
): string[] {
  const rnd = seededRandom((o.seed ?? 1) + 7919);
  const vocab = new ZipfVocabulary(o.vocabulary ?? 50_000, 1, rnd);
  const lo = o.minRank ?? 20;
  const hi = Math.min(o.maxRank ?? 5000, vocab.words.length);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(rnd() * 3);
    const words: string[] = [];
    for (let j = 0; j < n; j++) {
      // log-uniform rank: more mid-frequency than rare words.
      const r = Math.floor(lo * (hi / lo) ** rnd());
      words.push(vocab.words[r]!);
    }
    out.push(words.join(" "));
  }
  return out;
}
