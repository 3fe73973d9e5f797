/**
 * Append throughput of a feed against plain puts of the same size, in
 * the same run on the same cell: `npx deno run -A
 * apps/tables/feeds/_append_probe.ts` starts a local-storage cell (kv ×1,
 * master ×1, tablet servers ×2), then for 1, 4 and 16 producers appends
 * 200 messages of 100 bytes to a 4-partition feed, puts 200 cells of
 * 100 bytes, and creates 200 rows by check-and-mutate (what an append
 * does once it knows its offset), and appends them again through one
 * shared client, and prints the rates and appends/puts.
 */
import { startTablesStack } from "../stack_launcher.ts";
import { TablesClient } from "../client/tables_client.ts";
import { FeedClient } from "./feed_client.ts";

const N = 200;
const dataRoot = await Deno.makeTempDir({ prefix: "strata-feed-probe-" });
const stack = await startTablesStack({
  dataRoot,
  kvNodes: 1,
  masters: 1,
  servers: 2,
  sessionTtlMs: 3000,
});
try {
  const client = new TablesClient(stack.masterUrls(), {
    token: stack.secrets.tokens.admin,
  });
  await new FeedClient(client).createFeed("probe", { partitions: 4 });
  await client.createTable("plain", [{ name: "f" }]);
  const value = "x".repeat(100);
  for (const producers of [1, 4, 16]) {
    let t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      const feeds = new FeedClient(client);
      for (let i = 0; i < N / producers; i++) {
        await feeds.append("probe", `k${producers}-${w}-${i}`, value);
      }
    }));
    const appends = N / (performance.now() - t0) * 1000;
    t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      for (let i = 0; i < N / producers; i++) {
        await client.put("plain", `r${producers}-${w}-${i}`, "f", "v", value);
      }
    }));
    const puts = N / (performance.now() - t0) * 1000;
    t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      for (let i = 0; i < N / producers; i++) {
        await client.checkAndMutate("plain", `c${producers}-${w}-${i}`, {
          family: "f",
          qualifier: "v",
          equals: null,
        }, [{ op: "put", family: "f", qualifier: "v", value }]);
      }
    }));
    const creates = N / (performance.now() - t0) * 1000;
    // The same appends through one client (its appends to a partition
    // take turns instead of racing).
    t0 = performance.now();
    const shared = new FeedClient(client);
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      for (let i = 0; i < N / producers; i++) {
        await shared.append("probe", `s${producers}-${w}-${i}`, value);
      }
    }));
    const oneClient = N / (performance.now() - t0) * 1000;
    console.log(JSON.stringify({
      producers,
      appendsOneClientPerS: Math.round(oneClient),
      appendsPerS: Math.round(appends),
      putsPerS: Math.round(puts),
      createIfAbsentPerS: Math.round(creates),
      ratio: Number((appends / puts).toFixed(2)),
    }));
  }
} finally {
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true });
}
