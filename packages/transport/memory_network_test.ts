import assert from "node:assert/strict";
import { Echo, type Messages, messages, Note } from "./_test_messages.ts";
import { seededRandom, TestScheduler } from "./_test_scheduler.ts";
import type { Envelope } from "./message_kinds.ts";
import { type LinkFaults, MemoryNetwork } from "./memory_network.ts";
import { isTransportError } from "./transport_error.ts";

function network(seed: number, faults: LinkFaults = {}) {
  const scheduler = new TestScheduler();
  const net = new MemoryNetwork<Messages>({
    set: messages,
    scheduler,
    random: seededRandom(seed),
    faults,
    session: { callTimeoutMs: 1_000 },
  });
  const log: string[] = [];
  const received = new Map<string, Envelope<Messages>[]>();
  for (const id of ["a", "b", "c"]) {
    received.set(id, []);
    net.addNode(id, {
      onMessage: (m, from) => {
        received.get(id)!.push(m);
        log.push(
          `${scheduler.now().toFixed(3)} ${from.peer}->${id} ${
            JSON.stringify(m.message)
          }`,
        );
      },
      onRequest: (r) => r,
    });
  }
  return { scheduler, net, log, received };
}

function seqs(list: Envelope<Messages>[]): number[] {
  return list.map((m) => ("seq" in m.message ? m.message.seq : -1));
}

Deno.test("calls and messages are delivered at virtual times set by the scheduler", async () => {
  const { scheduler, net, received } = network(1, { minDelayMs: 10 });
  const a = net.node("a")!;
  let repliedAt = -1;
  const reply = a.connect("b").call(Echo, { seq: 1, text: "x" }).then((r) => {
    repliedAt = scheduler.now();
    return r;
  });
  a.connect("b").send(Note, { seq: 2, from: "a", term: 1 });
  await scheduler.run();
  assert.deepEqual((await reply).message, { seq: 1, text: "x" });
  assert.equal(repliedAt, 20); // 10 ms there, 10 ms back
  assert.deepEqual(seqs(received.get("b")!), [2]);
});

Deno.test("the same seed replays the same run, faults included", async () => {
  const faults = {
    minDelayMs: 1,
    maxDelayMs: 30,
    loss: 0.2,
    duplicate: 0.2,
    reorder: 0.3,
  };
  const runOnce = async (seed: number) => {
    const { scheduler, net, log } = network(seed, faults);
    for (let i = 0; i < 50; i++) {
      net.node("a")!.connect(i % 2 ? "b" : "c").send(Note, {
        seq: i,
        from: "a",
        term: 1,
      });
    }
    await scheduler.run();
    return { log, stats: { ...net.stats } };
  };
  const x = await runOnce(42);
  const y = await runOnce(42);
  const z = await runOnce(43);
  assert.deepEqual(x, y);
  assert.notDeepEqual(x.log, z.log);
  assert.ok(x.stats.dropped > 0 && x.stats.duplicated > 0);
});

Deno.test("links are FIFO under random delays unless reordering is injected", async () => {
  const fifo = network(7, { minDelayMs: 1, maxDelayMs: 50 });
  const shuffled = network(7, { minDelayMs: 1, maxDelayMs: 50, reorder: 1 });
  for (const { net } of [fifo, shuffled]) {
    for (let i = 0; i < 40; i++) {
      net.node("a")!.connect("b").send(Note, { seq: i, from: "a", term: 0 });
    }
  }
  await fifo.scheduler.run();
  await shuffled.scheduler.run();
  const inOrder = Array.from({ length: 40 }, (_, i) => i);
  assert.deepEqual(seqs(fifo.received.get("b")!), inOrder);
  const got = seqs(shuffled.received.get("b")!);
  assert.notDeepEqual(got, inOrder);
  assert.deepEqual([...got].sort((p, q) => p - q), inOrder);
});

Deno.test("loss drops frames and duplication delivers copies", async () => {
  const lossy = network(3, { loss: 1 });
  const doubled = network(3, { duplicate: 1 });
  for (const { net } of [lossy, doubled]) {
    for (let i = 0; i < 5; i++) {
      net.node("a")!.connect("b").send(Note, { seq: i, from: "a", term: 0 });
    }
  }
  await lossy.scheduler.run();
  await doubled.scheduler.run();
  assert.deepEqual(seqs(lossy.received.get("b")!), []);
  assert.equal(lossy.net.stats.dropped, 5);
  assert.deepEqual(seqs(doubled.received.get("b")!), [
    0,
    0,
    1,
    1,
    2,
    2,
    3,
    3,
    4,
    4,
  ]);
});

Deno.test("an asymmetric partition blocks one direction only", async () => {
  const { scheduler, net, received } = network(5);
  net.partition("a", "b");
  net.node("a")!.connect("b").send(Note, { seq: 1, from: "a", term: 0 });
  net.node("b")!.connect("a").send(Note, { seq: 2, from: "b", term: 0 });
  // b's request reaches a, but a's reply cannot reach b: b times out.
  const call = net.node("b")!.connect("a").call(Echo, { seq: 3, text: "" })
    .catch((e) => e);
  await scheduler.run();
  assert.deepEqual(seqs(received.get("b")!), []);
  assert.deepEqual(seqs(received.get("a")!), [2]);
  const outcome = await call;
  assert.ok(isTransportError(outcome, "timeout"), String(outcome));
  assert.equal(scheduler.now(), 1_000);
  net.heal();
  const ok = net.node("b")!.connect("a").call(Echo, { seq: 4, text: "" });
  await scheduler.run();
  assert.equal((await ok).type, "Echo");
});

Deno.test("a crashed node's calls fail at once and calls to it time out", async () => {
  const { scheduler, net } = network(9, { minDelayMs: 5 });
  const pending = net.node("a")!.connect("b").call(Echo, { seq: 1, text: "" })
    .catch((e) => e);
  net.node("a")!.crash();
  assert.ok(isTransportError(await pending, "connection_lost"));
  const toDead = net.node("b")!.connect("a").call(Echo, { seq: 2, text: "" })
    .catch((e) => e);
  await scheduler.run();
  assert.ok(isTransportError(await toDead, "timeout"));
  net.addNode("a", { onRequest: (r) => r });
  const back = net.node("b")!.connect("a").call(Echo, { seq: 3, text: "" });
  await scheduler.run();
  assert.equal((await back).type, "Echo");
});
