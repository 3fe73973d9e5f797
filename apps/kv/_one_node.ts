/**
 * @module
 * Test support: a one-voter kv node in this process on a free loopback
 * port (an in-process node, not a cluster of processes), led once it has
 * elected itself.
 */
import assert from "node:assert/strict";
import { freePort } from "@strata/process";
import { KvNode } from "./kv_node.ts";

/** Starts node 1 alone in `dir` (20 ms ticks) and waits until it leads (10 s at most). */
export async function startOneNode(dir: string): Promise<KvNode> {
  const port = await freePort();
  const node = await KvNode.start({
    id: 1,
    members: new Map([[1, { peer: `127.0.0.1:${port}` }]]),
    dataDir: dir,
    listen: { hostname: "127.0.0.1", port },
    tickMs: 20,
  });
  const deadline = performance.now() + 10_000;
  while (node.status().role !== "leader") {
    if (performance.now() >= deadline) {
      await node.stop();
      assert.fail("the single node never led");
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return node;
}
