// Test helper: opens a shard store and acknowledges batches on stdout
// until killed (shard_store_test.ts kills it with SIGKILL).
import { ShardStore } from "./shard_store.ts";

const [dir, flushDocs] = Deno.args;
const store = await ShardStore.open(dir!, {
  flushDocs: Number(flushDocs ?? 50),
});
const enc = new TextEncoder();
for (let i = 0;; i++) {
  const docs = Array.from({ length: 7 }, (_, j) => ({
    id: `b${i}-${j}`,
    user_id: i % 5,
    name: `batch ${i}`,
    body: `crash test document ${i} ${j} lorem ipsum`,
    created: i * 10 + j,
  }));
  await store.write({ add: docs, delete: i > 3 ? [`b${i - 3}-0`] : [] });
  await Deno.stdout.write(enc.encode(`acked ${i}\n`));
}
