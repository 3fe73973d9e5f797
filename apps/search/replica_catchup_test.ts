import assert from "node:assert/strict";
import { type Cluster, startCluster } from "./cluster.ts";
import type { StoredDocument } from "./document.ts";
import { fetchAs } from "./_test_access.ts";

/**
 * fetch with the cluster's peer secret (set once the cluster runs): it
 * reads the replicas' internal routes too.
 */
let api: typeof fetch = fetch;

/** Every live document of one replica, by id (its /internal/docs pages). */
async function dump(base: string): Promise<StoredDocument[]> {
  const out: StoredDocument[] = [];
  let after = "";
  for (let page = 0; page < 1000; page++) {
    const r = await api(
      `${base}/internal/docs?size=1000&after=${encodeURIComponent(after)}`,
    );
    const { docs } = await r.json() as { docs: StoredDocument[] };
    if (docs.length === 0) return out;
    out.push(...docs);
    after = docs[docs.length - 1]!.id;
  }
  throw new Error("too many pages");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills replica 0/1 under an indexing load, restarts it, and checks that
 * every shard's replicas end up equal, document for document, to what the
 * acknowledged writes leave. `maxQueuedDocs` small forces the anti-entropy
 * path instead of the replay.
 */
async function scenario(maxQueuedDocs: number | undefined): Promise<number> {
  {
    const dir = await Deno.makeTempDir();
    let cluster: Cluster | undefined;
    // What the acknowledged writes leave: id → document (deleted ids absent).
    const model = new Map<string, StoredDocument>();
    let batch = 0;
    let stopLoad = false;
    let load: Promise<void> | undefined;
    try {
      cluster = await startCluster({
        shards: 2,
        replicas: 2,
        dataDir: dir,
        ack: 1, // writes are acknowledged while a replica is down
        flushDocs: 200,
        timeoutMs: 3000,
        maxQueuedDocs,
      });
      api = fetchAs(cluster.secrets!.peerSecret);
      const base = cluster.url;
      // The load: batches of 40 new documents, each fourth batch replacing
      // earlier ones, and deletes now and then; one writer, so the model
      // knows the order every acknowledged write took.
      load = (async () => {
        while (!stopLoad && batch < 400) {
          const b = batch++;
          if (b % 7 === 6 && model.size > 10) {
            const id = [...model.keys()][(b * 13) % model.size]!;
            const r = await api(`${base}/v1/docs/${id}`, {
              method: "DELETE",
            });
            await r.body?.cancel();
            assert.equal(r.status, 200, `delete ${id}`);
            model.delete(id);
            continue;
          }
          const docs = Array.from({ length: 40 }, (_, i) => {
            const n = b % 4 === 3 ? (b * 40 + i) % (b * 20) : b * 40 + i;
            return {
              id: `d${n}`,
              user_id: n % 5,
              name: `batch ${b} wing ${n}`,
              body: `flutter of panel ${n} in batch ${b}`,
              created: b * 1000 + i,
            };
          });
          const r = await api(`${base}/v1/docs`, {
            method: "POST",
            body: docs.map((d) => JSON.stringify(d)).join("\n"),
          });
          const out = await r.json();
          assert.equal(r.status, 200, JSON.stringify(out));
          for (const d of docs) model.set(d.id, d);
        }
      })();
      const waitBatches = async (n: number) => {
        const until = batch + n;
        for (let i = 0; i < 600 && batch < until; i++) await sleep(50);
      };

      await waitBatches(15);
      await cluster.kill(0, 1); // kill -9 under load
      const killedAt = batch;
      await waitBatches(25); // writes acknowledged by replica 0/0 alone
      let stats = await (await api(`${base}/v1/stats`)).json();
      assert.ok(
        stats.replicas[0][1].behind !== 0,
        "the coordinator queued what 0/1 missed",
      );
      // While it is behind, every read of shard 0 goes to replica 0.
      for (let i = 0; i < 10; i++) {
        const s = await (await api(`${base}/v1/search?q=wing`)).json();
        assert.equal(s.partial, false);
        assert.equal(s.shards[0].replica, 0);
      }
      await cluster.restart(0, 1); // same data dir and port
      await waitBatches(15); // catch-up runs under the load too
      stopLoad = true;
      await load;
      assert.ok(
        batch - killedAt >= 40,
        `${batch - killedAt} batches after the kill`,
      );

      for (let i = 0; i < 300; i++) {
        stats = await (await api(`${base}/v1/stats`)).json();
        if (stats.catching_up === 0) break;
        await sleep(100);
      }
      assert.equal(stats.catching_up, 0, JSON.stringify(stats.replicas));

      const expected = [...model.values()].sort((a, b) =>
        a.id < b.id ? -1 : a.id > b.id ? 1 : 0
      );
      const all: StoredDocument[] = [];
      for (let s = 0; s < 2; s++) {
        const dumps: StoredDocument[][] = await Promise.all(
          cluster.replicas[s]!.map((p) => dump(p!.url)),
        );
        assert.ok(dumps[0]!.length > 0);
        assert.deepEqual(dumps[1], dumps[0], `shard ${s}: replicas differ`);
        all.push(...dumps[0]!);
      }
      all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      assert.deepEqual(
        all,
        expected,
        "the replicas hold every acknowledged write",
      );
      // And the restarted replica answers queries again. Queries go 8 at
      // a time: the selector ranks replicas by latency × queue, so one
      // query at a time keeps going to whichever replica was faster.
      const askedFrom = performance.now();
      while (performance.now() - askedFrom < 15_000) {
        const answers = await Promise.all(
          Array.from(
            { length: 8 },
            async () => await (await api(`${base}/v1/search?q=flutter`)).json(),
          ),
        );
        if (answers.some((a) => a.shards[0].replica === 1)) {
          return stats.repairs;
        }
        await sleep(25);
      }
      throw new Error("replica 0/1 never answered a query after catching up");
    } finally {
      stopLoad = true;
      await load?.catch(() => {});
      await cluster?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}

Deno.test({
  name:
    "a replica killed under an indexing load catches up after a restart by replaying the writes it missed: every shard's replicas hold the same documents",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.equal(await scenario(undefined), 0, "no anti-entropy repair needed");
  },
});

Deno.test({
  name:
    "past the replay bound the replica is repaired by anti-entropy from the healthy replica: every shard's replicas hold the same documents",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // 25 batches of 40 are missed: far past a 200-document queue.
    assert.ok((await scenario(200)) >= 1, "an anti-entropy repair ran");
  },
});

Deno.test({
  name:
    "a coordinator restarted while a replica is behind repairs it (the record of replicas behind is durable): replicas equal document for document",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    let cluster: Cluster | undefined;
    const model = new Map<string, StoredDocument>();
    try {
      cluster = await startCluster({
        shards: 2,
        replicas: 2,
        dataDir: dir,
        ack: 1,
        timeoutMs: 3000,
        sync: "never",
      });
      api = fetchAs(cluster.secrets!.peerSecret);
      const base = cluster.url;
      let next = 0;
      const write = async (n: number) => {
        const docs = Array.from({ length: n }, () => {
          const i = next++;
          return {
            id: `r${i}`,
            user_id: i % 3,
            name: `wing ${i}`,
            body: `panel flutter ${i}`,
            created: i,
          };
        });
        const r = await api(`${base}/v1/docs`, {
          method: "POST",
          body: docs.map((d) => JSON.stringify(d)).join("\n"),
        });
        assert.equal(r.status, 200, await r.text());
        for (const d of docs) model.set(d.id, d);
      };
      const del = async (id: string) => {
        const r = await api(`${base}/v1/docs/${id}`, { method: "DELETE" });
        assert.equal(r.status, 200, await r.text());
        model.delete(id);
      };
      await write(60);
      await cluster.kill(0, 1);
      await write(60); // acknowledged by 0/0 alone; queued for 0/1
      for (const id of ["r1", "r2", "r3", "r4", "r5", "r6"]) await del(id);
      let stats = await (await api(`${base}/v1/stats`)).json();
      assert.notEqual(stats.replicas[0][1].behind, 0);
      const record = JSON.parse(
        await Deno.readTextFile(`${dir}/coordinator/behind.json`),
      );
      assert.deepEqual(
        record.behind.map((b: { shard: number; replica: number }) => [
          b.shard,
          b.replica,
        ]),
        [[0, 1]],
      );

      // kill -9 the coordinator: its queue for 0/1 is gone.
      await cluster.restartCoordinator();
      stats = await (await api(`${base}/v1/stats`)).json();
      assert.equal(stats.catching_up, 1, "0/1 is known to be behind");
      await write(20); // while 0/1 is still down
      await cluster.restart(0, 1);
      // Until repaired it serves no reads: an answer followed by stats
      // that still show it behind was given while it was behind (nothing
      // is written meanwhile, so it cannot fall behind again).
      for (let i = 0; i < 300; i++) {
        const s = await (await api(`${base}/v1/search?q=wing`)).json();
        stats = await (await api(`${base}/v1/stats`)).json();
        if (stats.catching_up === 0) break;
        assert.equal(s.shards[0].replica, 0, "a behind replica answered");
        await sleep(100);
      }
      assert.equal(stats.catching_up, 0, JSON.stringify(stats.replicas));
      assert.ok(stats.repairs >= 1, "repaired by anti-entropy");
      const expected = [...model.values()].sort((a, b) =>
        a.id < b.id ? -1 : a.id > b.id ? 1 : 0
      );
      const all: StoredDocument[] = [];
      for (let s = 0; s < 2; s++) {
        const dumps: StoredDocument[][] = await Promise.all(
          cluster.replicas[s]!.map((p) => dump(p!.url)),
        );
        assert.deepEqual(dumps[1], dumps[0], `shard ${s}: replicas differ`);
        all.push(...dumps[0]!);
      }
      all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      assert.deepEqual(all, expected);
      // Caught up: the record is empty again.
      for (let i = 0; i < 50; i++) {
        const rec = JSON.parse(
          await Deno.readTextFile(`${dir}/coordinator/behind.json`),
        );
        if (rec.behind.length === 0) break;
        assert.ok(i < 49, "the record still lists 0/1");
        await sleep(100);
      }
    } finally {
      await cluster?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
