import assert from "node:assert/strict";
import fc from "fast-check";
import { type AnalyzedText, Analyzer, ENGLISH_STOP_WORDS } from "./analyzer.ts";
import { readSpamAssassin } from "./corpus.ts";
import { porterStem } from "./stemmer.ts";
import { tokenEnd, tokenStart } from "./tokenizer.ts";

/**
 * The analyzer as its JSDoc defines it, with no scanner, hashing or caches:
 * the tokenizer's boundaries on the lowercased text, diacritics folded,
 * over-long tokens and stop words dropped (their positions kept), Porter
 * stems. The real analyzer's fast path must give exactly this.
 */
function referenceAnalyze(
  text: string,
  extraStop?: ReadonlySet<string>,
  maxLen = 64,
): AnalyzedText {
  const stop = new Set(ENGLISH_STOP_WORDS);
  const lower = text.toLowerCase();
  const terms: string[] = [];
  const positions: number[] = [];
  let pos = 0;
  for (let i = tokenStart(lower, 0); i < lower.length;) {
    const end = tokenEnd(lower, i);
    let raw = lower.slice(i, end);
    i = tokenStart(lower, end);
    const p = pos++;
    if ([...raw].some((ch) => ch.charCodeAt(0) >= 128)) {
      raw = raw.normalize("NFD").replace(/\p{M}+/gu, "").replace("’", "'");
    }
    if (raw.length === 0 || raw.length > maxLen) continue;
    if (stop.has(raw) || extraStop?.has(raw)) continue;
    terms.push(porterStem(raw));
    positions.push(p);
  }
  return { terms, positions };
}

// Pieces that reach every branch of the scanner: ASCII words (repeated,
// so the token cache hits), stop words, inner and outer apostrophes, marks,
// accented and other-script letters, surrogate pairs, case changes that
// alter length, separators and over-long runs.
const PIECES = [
  "running",
  "Runs",
  "the",
  "The",
  "a",
  "don't",
  "don’t",
  "'quoted'",
  "’",
  "café",
  "Cafe\u0301",
  "naïve",
  "ÉCOLE",
  "İstanbul",
  "straße",
  "日本語",
  "Ωmega",
  "x\u0301\u0302y",
  "𝐀𝐁",
  "😀",
  "\ud800",
  "\udc00",
  "42",
  "3.14",
  "e-mail",
  " ",
  "\n",
  "\t",
  ",",
  "a".repeat(64),
  "b".repeat(65),
  "zz",
  "abc123",
];

Deno.test("analyzer output equals the plain reference analyzer on generated text", () => {
  const analyzer = new Analyzer();
  const extra = new Set(["running", "cafe"]);
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.constantFrom(...PIECES),
          fc.string({ maxLength: 6 }),
          fc.string({ unit: "binary", maxLength: 4 }),
        ),
        { maxLength: 40 },
      ),
      fc.boolean(),
      (parts, useExtra) => {
        const text = parts.join(parts.length % 2 === 0 ? "" : " ");
        const e = useExtra ? extra : undefined;
        assert.deepEqual(
          analyzer.analyze(text, e),
          referenceAnalyze(text, e),
        );
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("analyzer output equals the plain reference analyzer on corpus mail", async () => {
  // One analyzer for all of them, so its token cache fills, grows and is
  // hit as in a replica under a bulk load.
  const analyzer = new Analyzer();
  let n = 0;
  for await (const d of readSpamAssassin(300)) {
    for (const text of [d.name, d.body]) {
      assert.deepEqual(analyzer.analyze(text), referenceAnalyze(text));
    }
    n++;
  }
  assert.equal(n, 300);
});
