import assert from "node:assert/strict";
import { porterStem } from "./stemmer.ts";

Deno.test("the Porter stemmer maps the textbook examples to their stems", () => {
  const cases: Record<string, string> = {
    caresses: "caress",
    ponies: "poni",
    cats: "cat",
    feed: "feed",
    agreed: "agre",
    plastered: "plaster",
    motoring: "motor",
    sing: "sing",
    conflated: "conflat",
    troubled: "troubl",
    sized: "size",
    hopping: "hop",
    falling: "fall",
    filing: "file",
    happy: "happi",
    relational: "relat",
    conditional: "condit",
    valenci: "valenc",
    digitizer: "digit",
    operator: "oper",
    feudalism: "feudal",
    decisiveness: "decis",
    hopefulness: "hope",
    formaliti: "formal",
    triplicate: "triplic",
    formative: "form",
    electrical: "electr",
    revival: "reviv",
    allowance: "allow",
    adjustment: "adjust",
    adoption: "adopt",
    controll: "control",
    roll: "roll",
    generalizations: "gener",
    connected: "connect",
    connecting: "connect",
    connection: "connect",
    aeroelastic: "aeroelast",
    flows: "flow",
  };
  for (const [word, stem] of Object.entries(cases)) {
    assert.equal(porterStem(word), stem, word);
  }
});

Deno.test("the stemmer leaves short words, digits and non-ASCII words alone", () => {
  assert.equal(porterStem("as"), "as");
  assert.equal(porterStem("mp3s"), "mp3s");
  assert.equal(porterStem("café"), "café");
});
