import assert from "node:assert/strict";
import MiniSearch from "minisearch";
import { Analyzer } from "./analyzer.ts";
import { CRANFIELD_INDEX_OPTIONS, loadCranfield } from "./cranfield.ts";
import { matchQuery } from "./query_parser.ts";
import { scoreRun } from "./relevance_metrics.ts";
import { scatterGather } from "./scatter_gather.ts";
import { ShardIndex } from "./shard_index.ts";
import { shardOf } from "./shard_routing.ts";

const cran = await loadCranfield();
const missing = "missing" in cran ? cran.missing : null;
if (missing) console.warn(missing);

Deno.test({
  name: "Cranfield parses as 1,400 documents, 225 queries and positional qrels",
  ignore: missing !== null,
  fn: () => {
    if ("missing" in cran) return;
    assert.equal(cran.docs.length, 1400);
    assert.equal(cran.queries.length, 225);
    assert.equal(cran.qrels.size, 225);
    assert.match(cran.queries[2]!.text, /heat conduction in composite slabs/);
    assert.equal(cran.qrels.get("3")!.get("5"), 2); // "3 5 3" → gain 5 − 3
    assert.equal(
      [...cran.qrels.values()].reduce((n, m) => n + m.size, 0),
      1612,
    );
    assert.equal(cran.docs.find((d) => d.id === "471")!.body, "");
  },
});

Deno.test({
  name:
    "strata ranks Cranfield at least as well as MiniSearch (nDCG@10), sharded or not",
  ignore: missing !== null,
  fn: () => {
    if ("missing" in cran) return;
    const analyzer = new Analyzer();
    // Cranfield abstracts repeat the title, so both engines weigh fields equally.
    const single = new ShardIndex(CRANFIELD_INDEX_OPTIONS);
    single.add(cran.docs);
    const shards = [0, 1, 2].map(() => new ShardIndex(CRANFIELD_INDEX_OPTIONS));
    for (const d of cran.docs) shards[shardOf(d.id, 3)]!.add([d]);
    const strata = new Map<string, string[]>();
    for (const q of cran.queries) {
      const parsed = matchQuery(q.text, analyzer);
      const hits = single.searchLocal(parsed, 100).hits;
      strata.set(q.qid, hits.map((h) => h.id));
      if (Number(q.qid) % 25 === 0) {
        const sharded = scatterGather(shards, parsed, 0, 100);
        assert.deepEqual(
          sharded.map((h) => [h.id, h.score]),
          hits.map((h) => [h.id, h.score]),
        );
      }
    }
    const mini = new MiniSearch({
      fields: ["name", "body"],
      idField: "id",
      searchOptions: { boost: { name: 1 } },
    });
    mini.addAll(cran.docs);
    const miniRun = new Map(
      cran.queries.map((
        q,
      ) => [q.qid, mini.search(q.text).slice(0, 100).map((r) => String(r.id))]),
    );
    const s = scoreRun(strata, cran.qrels);
    const m = scoreRun(miniRun, cran.qrels);
    console.log(
      `Cranfield: strata MAP ${s.map.toFixed(4)} nDCG@10 ${
        s.ndcg10.toFixed(4)
      }; MiniSearch MAP ${m.map.toFixed(4)} nDCG@10 ${m.ndcg10.toFixed(4)}`,
    );
    assert.ok(
      s.ndcg10 >= m.ndcg10,
      `strata ${s.ndcg10} < MiniSearch ${m.ndcg10}`,
    );
    assert.ok(s.map > 0.25, `MAP ${s.map}`);
  },
});
