import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import type { StoredDocument } from "./document.ts";
import { parseQuery } from "./query_parser.ts";
import { scatterGather } from "./scatter_gather.ts";
import { ShardIndex } from "./shard_index.ts";
import { shardOf } from "./shard_routing.ts";
import { syntheticCorpus, syntheticQueries } from "./synthetic_corpus.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const N = LONG ? 200_000 : 8_000;

Deno.test(`on ${N} Zipfian documents, 4 shards rank exactly like one index and WAND skips most matches`, () => {
  const docs: StoredDocument[] = [...syntheticCorpus({ docs: N, seed: 5 })];
  const single = new ShardIndex();
  // Several segments plus deletes, as a long-running shard would have.
  for (let i = 0; i < docs.length; i += Math.ceil(N / 5)) {
    single.add(docs.slice(i, i + Math.ceil(N / 5)));
    single.refresh();
  }
  const shards = [0, 1, 2, 3].map(() => new ShardIndex());
  for (const d of docs) shards[shardOf(d.id, 4)]!.add([d]);
  for (let i = 0; i < N; i += 97) {
    single.delete(`s${i}`);
    shards[shardOf(`s${i}`, 4)]!.delete(`s${i}`);
  }
  const analyzer = new Analyzer();
  let scored = 0;
  let matched = 0;
  for (const q of syntheticQueries(LONG ? 300 : 60, { seed: 5 })) {
    const parsed = parseQuery(q, analyzer);
    const want = single.searchLocal(parsed, 10);
    const got = scatterGather(shards, parsed, 0, 10);
    assert.deepEqual(
      got.map((h) => [h.id, h.score]),
      want.hits.map((h) => [h.id, h.score]),
      q,
    );
    scored += want.scored;
    matched += single.searchLocal(parsed, N).scored;
  }
  assert.ok(
    scored < matched * 0.5,
    `WAND scored ${scored} of ${matched} matching documents`,
  );
});
