import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { snippet } from "./highlight.ts";

Deno.test("snippets mark stemmed matches and escape the rest", () => {
  const a = new Analyzer();
  const s = snippet(
    "Heat <b>flows</b> through the slab & wall.",
    new Set(["flow", "slab"]),
    [],
    a,
  );
  assert.equal(
    s,
    "Heat &lt;b&gt;<mark>flows</mark>&lt;/b&gt; through the <mark>slab</mark> &amp; wall",
  );
});

Deno.test("snippets cut a long text around the densest cluster of hits", () => {
  const a = new Analyzer();
  const words = Array.from({ length: 200 }, (_, i) => `w${i}`);
  words[150] = "supersonic";
  words[152] = "nozzle";
  const s = snippet(
    words.join(" "),
    new Set(a.analyze("supersonic nozzles").terms),
    [],
    a,
    10,
  );
  assert.match(
    s,
    /^…w147 w148 w149 <mark>supersonic<\/mark> w151 <mark>nozzle<\/mark>.*…$/,
  );
});

Deno.test("prefix queries mark words that start with the prefix", () => {
  const s = snippet(
    "aerodynamic aeroplanes fly",
    new Set(),
    ["aero"],
    new Analyzer(),
  );
  assert.equal(s, "<mark>aerodynamic</mark> <mark>aeroplanes</mark> fly");
});
