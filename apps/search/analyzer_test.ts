import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";

Deno.test("the analyzer lowercases, drops stop words and stems", () => {
  const a = new Analyzer();
  const out = a.analyze("The Connected Flows of a heated Slab");
  assert.deepEqual(out.terms, ["connect", "flow", "heat", "slab"]);
  assert.deepEqual(out.positions, [1, 2, 5, 6]);
});

Deno.test("the analyzer splits any script and folds diacritics", () => {
  const a = new Analyzer({ stem: false });
  assert.deepEqual(a.analyze("Café—naïve Москва 東京, x2").terms, [
    "cafe",
    "naive",
    "москва",
    "東京",
    "x2",
  ]);
});

Deno.test("stop words and stemming are configurable", () => {
  const a = new Analyzer({ stopWords: ["flows"], stem: false });
  assert.deepEqual(a.analyze("the flows connected").terms, [
    "the",
    "connected",
  ]);
});

Deno.test("tokens longer than the limit are dropped but keep their position", () => {
  const a = new Analyzer({ maxTokenLength: 5 });
  const out = a.analyze("abc abcdefghij xyz");
  assert.deepEqual(out.terms, ["abc", "xyz"]);
  assert.deepEqual(out.positions, [0, 2]);
});
