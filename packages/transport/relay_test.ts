import assert from "node:assert/strict";
import { defineMessage, defineMessageSet } from "@strata/codec";
import { z } from "zod";
import { seededRandom, TestScheduler } from "./_test_scheduler.ts";
import { MemoryNetwork } from "./memory_network.ts";
import { pack } from "./multi_packet.ts";
import { packForRelay, Relay, RelayBatch } from "./relay.ts";
import { isTransportError } from "./transport_error.ts";

const AppendEntries = defineMessage(
  "AppendEntries",
  z.object({
    term: z.number(),
    to: z.string(),
    prevIndex: z.number(),
    entries: z.array(z.object({ index: z.number(), data: z.string() })),
  }),
);
const set = defineMessageSet([AppendEntries, RelayBatch]);
type Set = readonly [typeof AppendEntries, typeof RelayBatch];

Deno.test("a relay forwards each packet of one blob to its receiver", async () => {
  const scheduler = new TestScheduler();
  const net = new MemoryNetwork<Set>({
    set,
    scheduler,
    random: seededRandom(1),
  });
  const got = new Map<string, unknown>();
  const followers = ["f1", "f2", "f3"];
  for (const f of followers) {
    net.addNode(f, { onMessage: (m) => void got.set(f, m.message) });
  }
  const relayNode = net.addNode("relay", {
    onMessage: (m) => {
      if (m.type === "RelayBatch") void relay.forward(m.message);
    },
  });
  const relay = new Relay((to, packet) =>
    relayNode.connect(to).send(AppendEntries, AppendEntries.decode(packet))
  );
  const leader = net.addNode("leader");
  const entries = Array.from({ length: 50 }, (_, i) => ({
    index: 100 + i,
    data: `set key-${i} value-${"x".repeat(40)}`,
  }));
  const messages = followers.map((to, i) => ({
    term: 3,
    to,
    prevIndex: 99 - i,
    entries,
  }));
  await leader.connect("relay").send(
    RelayBatch,
    packForRelay(
      messages.map((m) => ({ to: m.to, packet: AppendEntries.encode(m) })),
    ),
  );
  await scheduler.run();
  for (const m of messages) assert.deepEqual(got.get(m.to), m);
  assert.equal(relay.forwarded, 3);
  // One blob crossed the long link, smaller than the three messages.
  const separate = messages.reduce(
    (s, m) => s + AppendEntries.encode(m).length,
    0,
  );
  assert.ok(net.linkBytes("leader", "relay") < separate / 2);
});

Deno.test("a relay refuses a batch whose receivers do not match its packets", async () => {
  const relay = new Relay(() => {});
  await assert.rejects(
    relay.forward({
      receivers: ["a"],
      blob: pack([new Uint8Array([1]), new Uint8Array([2])]),
    }),
    (e) => isTransportError(e, "protocol_error"),
  );
  await assert.rejects(
    relay.forward({ receivers: ["a"], blob: new Uint8Array([9, 9]) }),
    (e) => isTransportError(e, "protocol_error"),
  );
  assert.equal(relay.forwarded, 0);
});

Deno.test("a failing receiver does not stop the relay's other deliveries", async () => {
  const delivered: string[] = [];
  const relay = new Relay((to) => {
    if (to === "bad") throw new Error("unreachable");
    delivered.push(to);
  });
  const failures = await relay.forward(packForRelay([
    { to: "a", packet: new Uint8Array([1]) },
    { to: "bad", packet: new Uint8Array([2]) },
    { to: "c", packet: new Uint8Array([3]) },
  ]));
  assert.deepEqual(delivered.sort(), ["a", "c"]);
  assert.deepEqual(failures.map((f) => f.to), ["bad"]);
});
