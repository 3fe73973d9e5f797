import assert from "node:assert/strict";
import fc from "fast-check";
import type { Entry } from "@strata/raft";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimDisk } from "./sim_disk.ts";
import { isSimError } from "./sim_error.ts";
import { SimNetwork } from "./sim_network.ts";

Deno.test("the PRNG repeats its sequence for a seed and differs across seeds", () => {
  const a = new Prng(5);
  const b = new Prng(5);
  const c = new Prng(6);
  const sa = Array.from({ length: 20 }, () => a.nextU32());
  assert.deepEqual(sa, Array.from({ length: 20 }, () => b.nextU32()));
  assert.notDeepEqual(sa, Array.from({ length: 20 }, () => c.nextU32()));
});

Deno.test("PRNG draws stay in range and shuffles are permutations (property)", () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
      const p = new Prng(seed);
      const x = p.int(n);
      assert.ok(x >= 0 && x < n);
      const f = p.float();
      assert.ok(f >= 0 && f < 1);
      const items = Array.from({ length: n % 20 }, (_, i) => i);
      assert.deepEqual(p.shuffle(items).sort((a, b) => a - b), items);
    }),
  );
});

Deno.test("the scheduler runs events in time order, ties in insertion order", () => {
  const s = new Scheduler();
  const log: string[] = [];
  s.at(5, () => log.push("b"));
  s.at(1, () => log.push("a"));
  s.at(5, () => log.push("c"));
  s.at(3, () => s.after(2, () => log.push("d")));
  s.runUntil(10);
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  assert.equal(s.now, 10);
});

Deno.test("the scheduler orders thousands of random events correctly (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 300 }),
      (times) => {
        const s = new Scheduler();
        const seen: number[] = [];
        times.forEach((t, i) => s.at(t, () => seen.push(i)));
        s.runUntil(2000);
        const expected = times.map((t, i) => [t, i] as const)
          .sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
        assert.deepEqual(seen, expected);
      },
    ),
  );
});

Deno.test("the network drops across partitions, including one-way cuts", () => {
  const s = new Scheduler();
  const net = new SimNetwork<string>(s, new Prng(1));
  const got: string[] = [];
  for (const id of [1, 2, 3]) {
    net.register(id, (m, from) => got.push(`${from}>${id}:${m}`));
  }
  net.partition([[1, 2], [3]]);
  net.send(1, 2, "x");
  net.send(1, 3, "y");
  net.send(3, 1, "z");
  s.runFor(100);
  assert.deepEqual(got, ["1>2:x"]);
  net.heal();
  net.cut(1, 2);
  net.send(1, 2, "p");
  net.send(2, 1, "q");
  s.runFor(100);
  assert.deepEqual(got, ["1>2:x", "2>1:q"]);
  net.heal();
  net.disconnect(3);
  net.send(1, 3, "r");
  s.runFor(100);
  assert.equal(got.length, 2);
  assert.equal(net.stats.dropped, 4);
});

Deno.test("the network loses, duplicates and reorders at the configured rates", () => {
  const s = new Scheduler();
  const net = new SimNetwork<number>(s, new Prng(2), {
    minDelayMs: 1,
    maxDelayMs: 50,
    loss: 0.2,
    duplicate: 0.1,
    longDelay: 0,
    longDelayMs: 0,
  });
  const got: number[] = [];
  net.register(2, (m) => got.push(m));
  for (let i = 0; i < 2000; i++) net.send(1, 2, i);
  s.runFor(1000);
  const unique = new Set(got);
  assert.ok(
    unique.size > 1400 && unique.size < 1800,
    `delivered ${unique.size}`,
  );
  assert.ok(got.length > unique.size, "nothing duplicated");
  assert.ok(got.some((v, i) => i > 0 && v < got[i - 1]!), "nothing reordered");
});

const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array([index]),
});

Deno.test("a crash keeps synced writes and at most a prefix of unsynced ones", () => {
  for (let seed = 0; seed < 50; seed++) {
    const d = new SimDisk();
    d.writeEntries([e(1, 1), e(2, 1)]);
    d.writeHardState({ term: 1, vote: 1, commit: 2 });
    d.sync();
    d.writeEntries([e(3, 1), e(4, 1), e(5, 1)]);
    d.writeHardState({ term: 2, vote: 1, commit: 5 });
    d.crash(new Prng(seed));
    const s = d.load();
    assert.ok(s.lastIndex() >= 2 && s.lastIndex() <= 5);
    // The hard state survives only if every entry before it did.
    if (s.hardState.commit === 5) assert.equal(s.lastIndex(), 5);
    else assert.equal(s.hardState.commit, 2);
  }
});

Deno.test("the disk refuses a durable commit index that goes backwards", () => {
  const d = new SimDisk();
  d.writeEntries([e(1, 1), e(2, 1)]);
  d.writeHardState({ term: 1, vote: 0, commit: 2 });
  d.sync();
  d.writeHardState({ term: 1, vote: 0, commit: 1 });
  assert.throws(() => d.sync(), (err) => isSimError(err, "invariant"));
});

Deno.test("a swizzle cuts nodes one by one and restores them in another order", () => {
  const s = new Scheduler();
  const net = new SimNetwork<string>(s, new Prng(3));
  const ids = [1, 2, 3, 4, 5];
  net.swizzle(ids, 10);
  const upAt = (t: number) => {
    s.runUntil(t);
    let up = 0;
    for (const a of ids) {
      for (const b of ids) if (a !== b && net.linkUp(a, b)) up++;
    }
    return up;
  };
  const samples = [0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 105, 200].map(
    upAt,
  );
  assert.ok(Math.min(...samples) < 20, "nothing was cut");
  assert.equal(samples[samples.length - 1], 20, "not everything was restored");
});
