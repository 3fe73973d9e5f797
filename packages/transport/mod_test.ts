import assert from "node:assert/strict";
import { z } from "zod";
import { defineMessage, defineMessageSet } from "@strata/codec";
import { connectTcp, listenTcp } from "./mod.ts";

Deno.test("the module example runs: a two-node RPC over TCP", async () => {
  const Ping = defineMessage("Ping", z.object({ seq: z.number().int() }));
  const set = defineMessageSet([Ping]);
  type Set = readonly [typeof Ping];
  const server = listenTcp<Set>({ set, handlers: { onRequest: (req) => req } });
  const client = await connectTcp<Set>({ port: server.port }, { set });
  try {
    assert.deepEqual(await client.call(Ping, { seq: 1 }), {
      type: "Ping",
      message: { seq: 1 },
    });
  } finally {
    await client.close();
    await server.close();
  }
});
