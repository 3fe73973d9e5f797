/**
 * Model tests of the feed logic on an in-memory store whose calls
 * interleave at random and whose writes sometimes end in
 * `unknown_outcome` (applied or not): concurrent producers, consumers
 * that crash, stale commits, and retention racing appends.
 */
import assert from "node:assert/strict";
import { FeedClient, FeedError, type FeedMessage } from "./feed_client.ts";
import { MemoryFeedStore } from "./_memory_store.ts";
import { Prng } from "@strata/sim";
import {
  feedSplits,
  messageRow,
  parseMessageRow,
  partitionEnd,
  partitionOf,
  partitionStart,
} from "./feed_layout.ts";
import { retentionLow } from "./retention.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const SEEDS = LONG ? 40 : 6;
const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("layout: partitions are contiguous, ordered row ranges", () => {
  const rows = [
    messageRow(0, 0),
    messageRow(0, 9),
    messageRow(0, 10),
    messageRow(0, 123456789),
    messageRow(1, 0),
    messageRow(12, 5),
  ];
  assert.deepEqual([...rows].sort(), rows);
  for (const p of [0, 1, 12]) {
    for (const r of rows) {
      const inside = r >= partitionStart(p) && r < partitionEnd(p);
      assert.equal(inside, parseMessageRow(enc.encode(r))!.partition === p);
    }
  }
  assert.deepEqual(feedSplits(3), ["m/", "m/0001/", "m/0002/"]);
  assert.equal(parseMessageRow(enc.encode("h/0001")), undefined);
  // The same key always goes to the same partition; keys spread.
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const k = enc.encode(`key-${i}`);
    assert.equal(partitionOf(k, 8), partitionOf(k, 8));
    seen.add(partitionOf(k, 8));
  }
  assert.equal(seen.size, 8);
});

Deno.test("retention: by age a prefix goes; by size the newest that fit stay", () => {
  const ms = [0, 1, 2, 3].map((i) => ({
    offset: 10 + i,
    timestamp: 100 + i * 10,
    bytes: 5,
  }));
  assert.equal(retentionLow(ms, 10, 200, {}), 10);
  assert.equal(retentionLow(ms, 10, 125, { retentionMs: 10 }), 12);
  assert.equal(retentionLow(ms, 10, 1000, { retentionMs: 10 }), 14);
  assert.equal(retentionLow(ms, 10, 0, { retentionBytes: 10 }), 12);
  assert.equal(retentionLow(ms, 10, 0, { retentionBytes: 4 }), 14);
  assert.equal(
    retentionLow(ms, 10, 125, { retentionMs: 10, retentionBytes: 15 }),
    12,
  );
  assert.equal(retentionLow([], 7, 0, { retentionBytes: 1 }), 7);
});

/** Reads a whole partition from `from` on. */
async function readAll(feeds: FeedClient, p: number, from: number) {
  const out: FeedMessage[] = [];
  for (;;) {
    const r = await feeds.read("f", p, from + out.length, 7);
    out.push(...r.messages);
    if (r.messages.length === 0) return out;
  }
}

Deno.test("model: concurrent producers and crashing consumers, writes with unknown outcomes: nothing acknowledged is lost or skipped", async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const store = new MemoryFeedStore(seed, 0.08);
    const prng = new Prng(seed * 7919);
    const rand = () => prng.float();
    const admin = new FeedClient(store);
    await admin.createFeed("f", { partitions: 3 });
    // Creating it again with the same settings is fine; other settings are not.
    await admin.createFeed("f", { partitions: 3 });
    await assert.rejects(
      admin.createFeed("f", { partitions: 4 }),
      (e) => e instanceof FeedError && e.code === "exists",
    );
    const acked = new Map<string, { partition: number; offset: number }>();
    const producers = Array.from({ length: 4 }, async (_, w) => {
      const feeds = new FeedClient(store, { producerId: `p${w}` });
      for (let i = 0; i < 25; i++) {
        const value = `w${w}-${i}`;
        acked.set(value, await feeds.append("f", `k${i % 5}`, value));
      }
    });
    // Consumers of group "g", each crashing (forgetting all) at random.
    const delivered: { value: string; incarnation: number }[] = [];
    let incarnation = 0;
    let producing = true;
    const consumer = (async () => {
      let feeds = new FeedClient(store);
      let me = ++incarnation;
      while (producing || delivered.length < 100 * 4) {
        const batches = await feeds.fetch("f", "g", { max: 4 });
        for (const b of batches) {
          for (const m of b.messages) {
            delivered.push({ value: dec.decode(m.value), incarnation: me });
          }
          if (rand() < 0.15) {
            feeds = new FeedClient(store); // crash before committing
            me = ++incarnation;
            break;
          }
          if (b.messages.length > 0) {
            await feeds.commit("f", "g", b.partition, b.next);
          }
        }
        if (!producing && batches.every((b) => b.messages.length === 0)) {
          break;
        }
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    await Promise.all(producers);
    producing = false;
    await consumer;

    const reader = new FeedClient(store);
    const values = new Set<string>();
    for (let p = 0; p < 3; p++) {
      const all = await readAll(reader, p, 0);
      all.forEach((m, i) => assert.equal(m.offset, i, "no holes"));
      for (const m of all) {
        const v = dec.decode(m.value);
        assert.ok(!values.has(v), `${v} appears once`);
        values.add(v);
        const a = acked.get(v);
        assert.deepEqual(a, { partition: p, offset: m.offset }, v);
        assert.equal(p, partitionOf(m.key, 3));
      }
    }
    assert.equal(acked.size, 100);
    assert.equal(values.size, 100, "every acknowledged message is stored");
    // Delivered: all of them; repeats only to a later incarnation (after a crash).
    const firstBy = new Map<string, number>();
    for (const d of delivered) {
      const first = firstBy.get(d.value);
      if (first === undefined) firstBy.set(d.value, d.incarnation);
      else assert.ok(d.incarnation > first, `${d.value} repeated in one life`);
    }
    assert.equal(firstBy.size, 100, `seed ${seed}: every message delivered`);
    // The group's offsets end at the tails; a stale commit moves nothing.
    const c = await reader.committed("f", "g");
    for (let p = 0; p < 3; p++) {
      assert.equal(c.get(p), await reader.tail("f", p));
      const stale = await reader.commit("f", "g", p, 0);
      assert.deepEqual(stale, { committed: c.get(p), moved: false });
    }
    assert.ok(store.unknowns > 0, "some writes had unknown outcomes");
  }
});

Deno.test("model: retention racing producers: the low watermark only rises, and reads below it say so", async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const store = new MemoryFeedStore(seed, 0.05);
    const admin = new FeedClient(store);
    await admin.createFeed("f", { partitions: 2, retentionBytes: 60 });
    const acked: { value: string; partition: number; offset: number }[] = [];
    let producing = true;
    const producers = Array.from({ length: 3 }, async (_, w) => {
      const feeds = new FeedClient(store, { trimEvery: 7 });
      for (let i = 0; i < 20; i++) {
        const value = `w${w}-${String(i).padStart(2, "0")}`; // 6 bytes
        acked.push({ value, ...await feeds.append("f", `k${w}`, value) });
      }
    });
    const lows = [[0], [0]];
    const trimmer = (async () => {
      const feeds = new FeedClient(store);
      while (producing) {
        for (let p = 0; p < 2; p++) {
          lows[p]!.push(await feeds.trimPartition("f", p));
        }
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    await Promise.all(producers);
    producing = false;
    await trimmer;
    store.unknownRate = 0; // the final trim's outcome is known
    const reader = new FeedClient(store);
    for (let p = 0; p < 2; p++) {
      const low = await reader.trimPartition("f", p);
      const seen = lows[p]!;
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i]! >= seen[i - 1]!, "the low watermark only rises");
      }
      const kept = await readAll(reader, p, low);
      kept.forEach((m, i) => assert.equal(m.offset, low + i));
      const bytes = kept.reduce((s, m) => s + m.key.length + m.value.length, 0);
      assert.ok(bytes <= 60, `partition ${p} keeps ${bytes} bytes`);
      // Each acknowledged message is kept at its offset, or was trimmed.
      const byOffset = new Map(
        kept.map((m) => [m.offset, dec.decode(m.value)]),
      );
      for (const a of acked.filter((a) => a.partition === p)) {
        if (a.offset >= low) assert.equal(byOffset.get(a.offset), a.value);
      }
      // Nothing below the watermark is left in the table.
      const t = store.tables.get("feed.f")!;
      for (const k of t.keys()) {
        const m = parseMessageRow(enc.encode(k));
        if (m?.partition === p) assert.ok(m.offset >= low, k);
      }
      if (low > 0) {
        await assert.rejects(
          reader.read("f", p, low - 1),
          (e) =>
            e instanceof FeedError && e.code === "below_low_watermark" &&
            e.low === low,
        );
      }
    }
  }
});

Deno.test("model: one client's concurrent appends to a partition land in call order", async () => {
  const store = new MemoryFeedStore(99, 0.1);
  const feeds = new FeedClient(store);
  await feeds.createFeed("f", { partitions: 2 });
  const other = new FeedClient(store); // a competing producer
  const mine = Array.from(
    { length: 30 },
    (_, i) => feeds.append("f", "k", `m${i}`),
  );
  const theirs = Array.from(
    { length: 30 },
    (_, i) => other.append("f", "k", `o${i}`),
  );
  const got = await Promise.all(mine);
  await Promise.all(theirs);
  for (let i = 1; i < got.length; i++) {
    assert.ok(got[i]!.offset > got[i - 1]!.offset, `m${i} after m${i - 1}`);
  }
});
