/**
 * bench:codec — encode/decode throughput and encoded bytes of strata's own
 * message shapes, strata's codec against plain cbor-x, cbor-x with its
 * (stateful) record extension, JSON and msgpackr, in one run.
 *
 * Goals: codec decode+validate within 2x of raw cbor-x decode; encoded
 * size at least 30% under JSON.
 */
import { Decoder, Encoder } from "cbor-x";
import { do_not_optimize } from "mitata";
import { Packr } from "msgpackr";
import { Buffer } from "node:buffer";
import type { MessageType } from "@strata/codec";
import {
  AppendEntries,
  Heartbeat,
  SearchTopN,
} from "../fixtures/codec_messages.ts";
import { Suite } from "./harness.ts";

const suite = new Suite(
  "codec",
  "strata codec (zod schemas, positional structures on cbor-x) vs plain cbor-x, cbor-x records, JSON and msgpackr",
);

function entries(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    term: 7,
    index: 1000 + i,
    data: Uint8Array.from({ length: 256 }, (_, j) => (i * 31 + j) & 0xff),
  }));
}

const shapes: Array<{ name: string; type: MessageType; message: unknown }> = [
  {
    name: "Raft heartbeat",
    type: Heartbeat,
    message: { term: 7, from: 1, to: 2, commit: 104_857 },
  },
  {
    name: "AppendEntries ×1 (256 B)",
    type: AppendEntries,
    message: {
      term: 7,
      from: 1,
      to: 2,
      prevIndex: 999,
      prevTerm: 7,
      commit: 998,
      entries: entries(1),
    },
  },
  {
    name: "AppendEntries ×64 (256 B)",
    type: AppendEntries,
    message: {
      term: 7,
      from: 1,
      to: 2,
      prevIndex: 999,
      prevTerm: 7,
      commit: 998,
      entries: entries(64),
    },
  },
  {
    name: "search top-10",
    type: SearchTopN,
    message: {
      shard: 3,
      took: 0.82,
      total: 1834,
      hits: Array.from({ length: 10 }, (_, i) => ({
        id: `doc-${48_213 + i * 7}`,
        score: 12.5 - i * 0.731,
        snippet: `… boundary <b>layer</b> transition at mach ${i + 2} …`,
      })),
    },
  },
];

// Peers. JSON carries bytes as base64 (what an HTTP/JSON API would do).
const plainEnc = new Encoder({ useRecords: false });
const plainDec = new Decoder({ useRecords: false });
const recordEnc = new Encoder({ structures: [] });
const recordDec = new Decoder({ structures: [] });
const packr = new Packr({ useRecords: false });
const text = new TextEncoder();
const untext = new TextDecoder();
const jsonEncode = (m: unknown) =>
  text.encode(JSON.stringify(
    m,
    (_k, v) => v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v,
  ));
const jsonDecode = (b: Uint8Array) =>
  JSON.parse(
    untext.decode(b),
    (k, v) => k === "data" ? new Uint8Array(Buffer.from(v, "base64")) : v,
  );

for (const { name, type, message } of shapes) {
  console.log(`\n${name}`);
  const codecBytes = type.encode(message);
  const plainBytes = plainEnc.encode(message);
  const recordBytes = recordEnc.encode(message);
  const jsonBytes = jsonEncode(message);
  const packBytes = packr.pack(message);
  const enc = `${name} encode`;
  const dec = `${name} decode`;
  await suite.bench(
    enc,
    "strata codec",
    () => do_not_optimize(type.encode(message)),
    { bytes: codecBytes.length },
  );
  await suite.bench(
    enc,
    "cbor-x",
    () => do_not_optimize(plainEnc.encode(message)),
    { bytes: plainBytes.length },
  );
  await suite.bench(
    enc,
    "cbor-x records",
    () => do_not_optimize(recordEnc.encode(message)),
    { bytes: recordBytes.length },
  );
  await suite.bench(enc, "JSON", () => do_not_optimize(jsonEncode(message)), {
    bytes: jsonBytes.length,
  });
  await suite.bench(
    enc,
    "msgpackr",
    () => do_not_optimize(packr.pack(message)),
    { bytes: packBytes.length },
  );
  await suite.bench(
    dec,
    "strata codec (decode+validate)",
    () => do_not_optimize(type.decode(codecBytes)),
    { bytes: codecBytes.length },
  );
  await suite.bench(
    dec,
    "cbor-x",
    () => do_not_optimize(plainDec.decode(plainBytes)),
    { bytes: plainBytes.length },
  );
  await suite.bench(
    dec,
    "cbor-x records",
    () => do_not_optimize(recordDec.decode(recordBytes)),
    { bytes: recordBytes.length },
  );
  await suite.bench(dec, "JSON", () => do_not_optimize(jsonDecode(jsonBytes)), {
    bytes: jsonBytes.length,
  });
  await suite.bench(
    dec,
    "msgpackr",
    () => do_not_optimize(packr.unpack(packBytes)),
    { bytes: packBytes.length },
  );

  suite.compare(
    `${name}: codec decode+validate vs raw cbor-x decode`,
    "time",
    suite.get(dec, "strata codec (decode+validate)").meanNs,
    suite.get(dec, "cbor-x").meanNs,
    { op: "<=", value: 2 },
  );
  suite.compare(
    `${name}: codec encode vs cbor-x encode`,
    "time",
    suite.get(enc, "strata codec").meanNs,
    suite.get(enc, "cbor-x").meanNs,
  );
  suite.compare(
    `${name}: codec bytes vs JSON`,
    "bytes",
    codecBytes.length,
    jsonBytes.length,
    {
      op: "<=",
      value: 0.7,
    },
  );
  suite.compare(
    `${name}: codec bytes vs cbor-x`,
    "bytes",
    codecBytes.length,
    plainBytes.length,
  );
  suite.compare(
    `${name}: codec bytes vs msgpackr`,
    "bytes",
    codecBytes.length,
    packBytes.length,
  );
}

await suite.finish();
