import { startTablesStack } from "../stack_launcher.ts";
import { TablesClient } from "../client/tables_client.ts";
import { FeedClient } from "./feed_client.ts";
const dataRoot = await Deno.makeTempDir();
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
  const feeds = new FeedClient(client);
  await feeds.createFeed("p", { partitions: 4 });
  await client.createTable("plain", [{ name: "f" }]);
  for (const producers of [1, 4, 16]) {
    const n = 200;
    let t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      const f = new FeedClient(client);
      for (let i = 0; i < n / producers; i++) {
        await f.append("p", `k${w}-${i}`, "x".repeat(100));
      }
    }));
    const feedMs = performance.now() - t0;
    t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async (_, w) => {
      for (let i = 0; i < n / producers; i++) {
        await client.put(
          "plain",
          `r${producers}-${w}-${i}`,
          "f",
          "v",
          "x".repeat(100),
        );
      }
    }));
    const putMs = performance.now() - t0;
    console.log(
      JSON.stringify({
        producers,
        appendsPerS: Math.round(n / feedMs * 1000),
        putsPerS: Math.round(n / putMs * 1000),
      }),
    );
  }
} finally {
  await stack.stop();
  await Deno.remove(dataRoot, { recursive: true });
}
