import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkKvHistory,
  type KvInput,
  kvModel,
  type KvOperation,
  type KvOutput,
  prepareKvHistory,
} from "./linearizability.ts";
import { checkOperations, checkPartition } from "./porcupine.ts";
import { isSimError } from "./sim_error.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

// Builders for hand-made histories. `ret` undefined = unknown outcome.
function op(
  clientId: number,
  input: KvInput,
  call: number,
  ret: number | undefined,
  output: KvOutput | undefined,
): KvOperation {
  return ret === undefined
    ? { clientId, input, call }
    : { clientId, input, call, return: ret, output };
}
const get = (
  c: number,
  key: string,
  value: string | null,
  call: number,
  ret?: number,
) => op(c, { op: "get", key }, call, ret, { value });
const put = (
  c: number,
  key: string,
  value: string,
  call: number,
  ret?: number,
) => op(c, { op: "put", key, value }, call, ret, { ok: true });
const del = (c: number, key: string, call: number, ret?: number) =>
  op(c, { op: "delete", key }, call, ret, { ok: true });
const cas = (
  c: number,
  key: string,
  expected: string | null,
  value: string,
  swapped: boolean,
  call: number,
  ret?: number,
) => op(c, { op: "cas", key, expected, value }, call, ret, { ok: swapped });

/** Runs the three ways of checking and asserts they agree; returns the verdict. */
function verdict(history: KvOperation[]): string {
  const main = checkKvHistory(history);
  const unpruned = checkKvHistory(history, { pruneUnobservedWrites: false });
  assert.equal(unpruned.result, main.result, "pruning changed the verdict");
  assert.equal(main.ok, main.result === "ok");
  return main.result;
}

/** Asserts `order` (history indices) is a linearization of `history`. */
function assertWitness(
  history: readonly KvOperation[],
  order: readonly number[],
): void {
  const state = new Map<string, string | null>();
  const position = new Map<number, number>();
  order.forEach((i, pos) => position.set(i, pos));
  for (let a = 0; a < order.length; a++) {
    const earlier = history[order[a]!]!;
    for (let b = a + 1; b < order.length; b++) {
      const later = history[order[b]!]!;
      if (later.input.key !== earlier.input.key) continue;
      assert.ok(
        !(later.return !== undefined && later.return < earlier.call),
        "real-time order broken",
      );
    }
    const key = earlier.input.key;
    const [ok, next] = kvModel.step(
      state.get(key) ?? null,
      earlier.input,
      earlier.output,
    );
    assert.ok(ok, `model rejects ${JSON.stringify(earlier)}`);
    state.set(key, next);
  }
  // Every operation whose outcome is known must be in the witness.
  history.forEach((o, i) => {
    if (o.output !== undefined) {
      assert.ok(position.has(i), `operation ${i} missing from the witness`);
    }
  });
}

Deno.test("an empty history and a sequential one are linearizable", () => {
  assert.deepEqual(checkKvHistory([]), { ok: true, result: "ok" });
  const h = [
    get(0, "k", null, 0, 1),
    put(0, "k", "a", 2, 3),
    get(1, "k", "a", 4, 5),
    del(1, "k", 6, 7),
    get(0, "k", null, 8, 9),
  ];
  assert.equal(verdict(h), "ok");
});

Deno.test("a stale read after a completed write is illegal and the report names the key and operations", () => {
  const h = [
    put(0, "k", "a", 0, 1),
    put(1, "k", "b", 2, 3),
    get(2, "k", "a", 4, 5),
  ];
  assert.equal(verdict(h), "illegal");
  const res = checkKvHistory(h);
  assert.equal(res.key, "k");
  assert.match(res.info!, /^key "k": /);
  assert.match(res.info!, /client 2 get -> "a" \[4, 5\]/);
  // "b" is never read, so the report shows the shared stand-in for unread values.
  assert.match(res.info!, /leaves the state <a value no operation reads>/);
});

Deno.test("a read of a value never written is illegal", () => {
  const h = [put(0, "k", "a", 0, 1), get(1, "k", "zzz", 2, 3)];
  const res = checkKvHistory(h);
  assert.equal(res.result, "illegal");
  assert.equal(res.key, "k");
  assert.match(res.info!, /saw the value "zzz", which no operation ever wrote/);
  // The search alone (without the up-front scan) reaches the same verdict.
  assert.equal(checkOperations(kvModel, h).result, "illegal");
  // A value written to another key does not count.
  assert.equal(
    verdict([put(0, "x", "v", 0, 1), get(1, "y", "v", 2, 3)]),
    "illegal",
  );
});

Deno.test("a read after a completed delete cannot see the old value", () => {
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      del(0, "k", 2, 3),
      get(1, "k", "a", 4, 5),
    ]),
    "illegal",
  );
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      del(0, "k", 2, 6),
      get(1, "k", "a", 4, 5),
    ]),
    "ok",
  );
});

Deno.test("overlapping operations pass when their only legal order differs from the call order", () => {
  // put a is issued first but must land after the read of b and before the read of a;
  // the long get -> null must come before everything.
  const h = [
    put(0, "k", "a", 10, 100),
    put(1, "k", "b", 20, 30),
    get(2, "k", "b", 40, 50),
    get(3, "k", "a", 60, 70),
    get(4, "k", null, 0, 200),
  ];
  assert.equal(verdict(h), "ok");
  const res = checkOperations(kvModel, h);
  assert.deepEqual(res.linearizations, [[4, 1, 2, 0, 3]]);
  // Once put a has returned, a later read of b is impossible.
  assert.equal(verdict([...h, get(5, "k", "b", 110, 120)]), "illegal");
});

Deno.test("two reads that see two concurrent writes in opposite orders are illegal", () => {
  const h = [
    put(0, "k", "a", 0, 10),
    put(1, "k", "b", 0, 10),
    get(2, "k", "a", 20, 21),
    get(2, "k", "b", 22, 23),
  ];
  assert.equal(verdict(h), "illegal");
  // While the writes are in flight, two readers may see different values...
  const inFlight = [
    put(0, "k", "a", 0, 10),
    put(1, "k", "b", 0, 10),
    get(2, "k", "a", 1, 5),
    get(3, "k", "b", 1, 5),
  ];
  assert.equal(verdict(inFlight), "ok");
  // ... but not the two writes in opposite orders.
  assert.equal(
    verdict([...inFlight, get(2, "k", "b", 6, 8), get(3, "k", "a", 6, 8)]),
    "illegal",
  );
  assert.equal(
    verdict([...inFlight, get(2, "k", "b", 6, 8), get(3, "k", "b", 6, 8)]),
    "ok",
  );
});

Deno.test("intervals that only touch count as concurrent", () => {
  assert.equal(
    verdict([put(0, "k", "a", 0, 5), get(1, "k", null, 5, 6)]),
    "ok",
  );
  assert.equal(
    verdict([put(0, "k", "a", 0, 5), get(1, "k", null, 5.001, 6)]),
    "illegal",
  );
});

Deno.test("an unknown-outcome put may explain a later read", () => {
  const h = [
    put(0, "k", "a", 0, 1),
    put(1, "k", "b", 2),
    get(2, "k", "b", 100, 101),
  ];
  assert.equal(verdict(h), "ok");
  // ... even a read long after, and after reads that saw the older value.
  assert.equal(
    verdict([
      ...h.slice(0, 2),
      get(2, "k", "a", 50, 51),
      get(2, "k", "b", 100, 101),
    ]),
    "ok",
  );
});

Deno.test("an unknown-outcome put may never have happened", () => {
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      put(1, "k", "b", 2),
      get(2, "k", "a", 100, 101),
    ]),
    "ok",
  );
  assert.equal(
    verdict([put(1, "k", "b", 0), get(2, "k", null, 100, 101)]),
    "ok",
  );
  // But once seen it cannot disappear.
  const seenThenGone = [
    put(0, "k", "a", 0, 1),
    put(1, "k", "b", 2),
    get(2, "k", "b", 10, 11),
    get(2, "k", "a", 12, 13),
  ];
  assert.equal(verdict(seenThenGone), "illegal");
});

Deno.test("an unknown outcome cannot take effect before its call", () => {
  const h = [get(2, "k", "b", 0, 1), put(1, "k", "b", 2)];
  assert.equal(verdict(h), "illegal");
});

Deno.test("unknown-outcome reads are ignored whatever they carry", () => {
  const h: KvOperation[] = [put(0, "k", "a", 0, 1), {
    clientId: 1,
    input: { op: "get", key: "k" },
    call: 2,
  }];
  assert.equal(verdict(h), "ok");
});

Deno.test("cas swaps only when the value matches and reports whether it did", () => {
  assert.equal(
    verdict([cas(0, "k", null, "a", true, 0, 1), get(1, "k", "a", 2, 3)]),
    "ok",
  );
  assert.equal(verdict([cas(0, "k", null, "a", false, 0, 1)]), "illegal");
  const refused = [put(0, "k", "a", 0, 1), cas(0, "k", "a", "b", false, 2, 3)];
  assert.equal(verdict(refused), "illegal");
  assert.match(
    checkKvHistory(refused).info!,
    /client 0 cas "a" => "b" -> not swapped \[2, 3\] \(does not fit this state\)/,
  );
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      cas(0, "k", "x", "b", false, 2, 3),
      get(0, "k", "a", 4, 5),
    ]),
    "ok",
  );
  // A failed cas leaves the value alone.
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      cas(0, "k", "x", "b", false, 2, 3),
      get(0, "k", "b", 4, 5),
    ]),
    "illegal",
  );
  // A cas that expects "absent" succeeds after a delete.
  assert.equal(
    verdict([
      put(0, "k", "a", 0, 1),
      del(0, "k", 2, 3),
      cas(1, "k", null, "c", true, 4, 5),
    ]),
    "ok",
  );
});

Deno.test("of two concurrent cas from absent only one can win", () => {
  const both = [
    cas(0, "k", null, "a", true, 0, 10),
    cas(1, "k", null, "b", true, 0, 10),
  ];
  assert.equal(verdict(both), "illegal");
  const one = [
    cas(0, "k", null, "a", true, 0, 10),
    cas(1, "k", null, "b", false, 0, 10),
    get(2, "k", "a", 11, 12),
  ];
  assert.equal(verdict(one), "ok");
  // A failed cas is explained by a concurrent put it followed.
  assert.equal(
    verdict([put(0, "k", "z", 0, 10), cas(1, "k", null, "b", false, 1, 2)]),
    "ok",
  );
});

Deno.test("an unknown-outcome cas may have swapped or not", () => {
  const base = [
    put(0, "k", "a", 0, 1),
    op(
      1,
      { op: "cas", key: "k", expected: "a", value: "b" },
      2,
      undefined,
      undefined,
    ),
  ];
  assert.equal(verdict([...base, get(2, "k", "b", 10, 11)]), "ok");
  assert.equal(verdict([...base, get(2, "k", "a", 10, 11)]), "ok");
  // It could only have swapped from "a": after a put of "c" it cannot produce "b".
  const late = [
    put(0, "k", "c", 0, 1),
    op(
      1,
      { op: "cas", key: "k", expected: "a", value: "b" },
      2,
      undefined,
      undefined,
    ),
    get(2, "k", "b", 10, 11),
  ];
  assert.equal(verdict(late), "illegal");
});

Deno.test("keys are checked independently and the failing key is reported", () => {
  const h = [
    put(0, "x", "1", 0, 1),
    put(1, "y", "1", 0, 1),
    get(0, "x", "1", 2, 3),
    put(1, "y", "2", 2, 3),
    get(2, "y", "1", 4, 5),
    get(2, "x", "1", 4, 5),
  ];
  const res = checkKvHistory(h);
  assert.equal(res.result, "illegal");
  assert.equal(res.key, "y");
  assert.equal(verdict(h.filter((o) => o.input.key === "x")), "ok");
});

Deno.test("a malformed history is rejected with a SimError of code bad_argument", () => {
  const cases: unknown[] = [
    [{
      clientId: 0,
      input: { op: "get", key: "k" },
      call: 5,
      return: 4,
      output: { value: null },
    }],
    [{
      clientId: 0,
      input: { op: "get", key: "k" },
      call: 0,
      return: 1,
      output: { ok: true },
    }],
    [{
      clientId: 0,
      input: { op: "put", key: "k", value: "a" },
      call: 0,
      return: 1,
      output: { value: "a" },
    }],
    [{
      clientId: 0,
      input: { op: "put", key: "k", value: "a" },
      call: 0,
      output: { ok: true },
    }],
    [{
      clientId: 0,
      input: { op: "incr", key: "k" },
      call: 0,
      return: 1,
      output: { ok: true },
    }],
    [{
      clientId: 0,
      input: { op: "get", key: "k" },
      call: Number.NaN,
      return: 1,
      output: { value: null },
    }],
    [{
      clientId: 0,
      input: { op: "get", key: "k" },
      call: 0,
      return: Infinity,
      output: { value: null },
    }],
    "not an array",
  ];
  for (const h of cases) {
    assert.throws(
      () => checkKvHistory(h as KvOperation[]),
      (e: unknown) =>
        isSimError(e, "bad_argument") && /invalid history/.test(e.message),
      JSON.stringify(h),
    );
  }
});

Deno.test("the check reports unknown when its time budget runs out", () => {
  // 24 concurrent writes of distinct values, then two reads only an impossible
  // order explains: refuting it needs ~2^24 steps.
  const h: KvOperation[] = [];
  for (let i = 0; i < 24; i++) h.push(put(i, "k", `v${i}`, 0, 100));
  h.push(get(99, "k", "v0", 200, 201), get(99, "k", "v1", 202, 203));
  const res = checkKvHistory(h, { timeoutMs: 100 });
  assert.equal(res.result, "unknown");
  assert.equal(res.ok, false);
  assert.equal(res.key, "k");
  assert.match(res.info!, /time budget of 100 ms ran out/);
  // A zero budget gives up at once, even on an easy history.
  assert.equal(
    checkKvHistory([put(0, "k", "a", 0, 1)], { timeoutMs: 0 }).result,
    "unknown",
  );
});

Deno.test("preparation bounds a seen unknown write, drops unseen ones and merges unread values", () => {
  const h = [
    put(0, "k", "a", 0), // unknown, seen by the read at [50, 60]: bounded at 60
    put(1, "k", "b", 1), // unknown, never seen, no cas: dropped
    put(2, "k", "c", 2, 3), // known, never read: its value becomes the stand-in
    get(3, "k", "a", 50, 60),
    get(3, "k", "a", 70, 80),
  ];
  const [part] = prepareKvHistory(h);
  assert.deepEqual(part!.indices, [0, 2, 3, 4]);
  assert.equal(part!.ops[0]!.return, 60);
  assert.equal(part!.ops[0]!.output, undefined);
  assert.equal(
    part!.ops[1]!.input.op === "put" &&
      part!.ops[1]!.input.value.startsWith("\u0000"),
    true,
  );
  assert.equal(verdict(h), "ok");
  // Without pruning nothing is dropped.
  assert.equal(prepareKvHistory(h, false)[0]!.ops.length, 4 + 1);
  // A failed cas might have been caused by an unseen write: then it is kept.
  const withCas = [...h, cas(4, "k", "z", "q", false, 90, 91)];
  assert.equal(prepareKvHistory(withCas)[0]!.ops.length, 6);
});

Deno.test("a write seen by a read must land before that read, even with an unknown outcome", () => {
  // The unknown put of "a" was seen at [10, 20]; a later read of the older value
  // "z" cannot be explained by the put happening late.
  const h = [
    put(0, "k", "z", 0, 1),
    put(1, "k", "a", 2),
    get(2, "k", "a", 10, 20),
    get(2, "k", "z", 30, 40),
  ];
  assert.equal(verdict(h), "illegal");
});

Deno.test("many timed-out writes and deletes on one key stay cheap to check", () => {
  // 300 unknown-outcome writes (most never seen) and deletes interleaved with
  // reads: without interchangeable-twin and dominance pruning this explodes.
  const h: KvOperation[] = [];
  let t = 0;
  for (let i = 0; i < 300; i++) {
    h.push(i % 3 === 0 ? del(i % 5, "k", t) : put(i % 5, "k", `lost-${i}`, t));
    h.push(put(9, "k", `v${i}`, t + 1, t + 2));
    h.push(get(8, "k", i % 7 === 0 ? null : `v${i}`, t + 3, t + 4));
    t += 5;
  }
  const started = performance.now();
  assert.equal(checkKvHistory(h).result, "ok");
  // And a stale read at the end is still refuted.
  h.push(get(8, "k", "v10", t + 10, t + 11));
  assert.equal(checkKvHistory(h).result, "illegal");
  assert.ok(performance.now() - started < 10_000);
});

Deno.test("an easy illegal key is reported even when another key exhausts the budget", () => {
  const h: KvOperation[] = [];
  for (let i = 0; i < 24; i++) h.push(put(i, "hard", `v${i}`, 0, 100));
  h.push(get(99, "hard", "v0", 200, 201), get(99, "hard", "v1", 202, 203));
  h.push(put(0, "easy", "a", 0, 1), put(0, "easy", "b", 2, 3));
  h.push(get(1, "easy", "a", 4, 5));
  const res = checkKvHistory(h, { timeoutMs: 200 });
  assert.equal(res.result, "illegal");
  assert.equal(res.key, "easy");
});

// ---- Generated histories ----

interface Step {
  client: number;
  key: number;
  kind: number; // 0 get, 1 put, 2 delete, 3 cas
  value: number;
  expected: number; // -1 = absent
  pre: number;
  post: number;
  fate: number; // 0: unknown outcome but applied, 1: unknown and never applied, else known
}

const stepArb = (keys: number, clients: number): fc.Arbitrary<Step> =>
  fc.record({
    client: fc.integer({ min: 0, max: clients - 1 }),
    key: fc.integer({ min: 0, max: keys - 1 }),
    kind: fc.integer({ min: 0, max: 3 }),
    value: fc.integer({ min: 0, max: 4 }),
    expected: fc.integer({ min: -1, max: 4 }),
    pre: fc.integer({ min: 0, max: 35 }),
    post: fc.integer({ min: 0, max: 35 }),
    fate: fc.integer({ min: 0, max: 19 }),
  });

/**
 * Executes the steps one after another against a real Map, each at its own
 * instant, and gives every operation an interval around that instant (so
 * intervals overlap but stay consistent): linearizable by construction.
 * With `unknowns`, some outcomes are forgotten (applied or not).
 */
function runAgainstMap(
  steps: readonly Step[],
  unknowns: boolean,
): KvOperation[] {
  const map = new Map<string, string>();
  return steps.map((s, i) => {
    const at = 10 * (i + 1);
    const key = `k${s.key}`;
    const value = `v${s.value}`;
    const never = unknowns && s.fate === 1;
    let input: KvInput;
    let output: KvOutput;
    switch (s.kind) {
      case 0:
        input = { op: "get", key };
        output = { value: map.get(key) ?? null };
        break;
      case 1:
        input = { op: "put", key, value };
        if (!never) map.set(key, value);
        output = { ok: true };
        break;
      case 2:
        input = { op: "delete", key };
        if (!never) map.delete(key);
        output = { ok: true };
        break;
      default: {
        const expected = s.expected < 0 ? null : `v${s.expected}`;
        input = { op: "cas", key, expected, value };
        const swapped = (map.get(key) ?? null) === expected;
        if (swapped && !never) map.set(key, value);
        output = { ok: swapped };
      }
    }
    if (unknowns && s.fate <= 1) {
      return { clientId: s.client, input, call: at - s.pre };
    }
    return {
      clientId: s.client,
      input,
      call: at - s.pre,
      return: at + s.post,
      output,
    };
  });
}

Deno.test("histories of random ops run against a Map are linearizable, with a valid witness", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }).chain((keys) =>
        fc.array(stepArb(keys, 5), { maxLength: 60 })
      ),
      fc.boolean(),
      (steps, unknowns) => {
        const h = runAgainstMap(steps, unknowns);
        assert.equal(verdict(h), "ok");
        const res = checkOperations(kvModel, h);
        assert.equal(res.result, "ok");
        assertWitness(h, res.linearizations!.flat());
        // The prepared parts (tightened, pruned, canonical values) yield a
        // witness that holds for the original history too.
        const order: number[] = [];
        for (const part of prepareKvHistory(h)) {
          const r = checkPartition(kvModel, part.ops);
          assert.equal(r.result, "ok");
          order.push(...r.order!.map((i) => part.indices[i]!));
        }
        assertWitness(h, order);
      },
    ),
    { numRuns: LONG ? 5_000 : 400 },
  );
});

Deno.test("corrupting one read to a value never written makes a Map-run history illegal", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }).chain((keys) =>
        fc.array(stepArb(keys, 5), { minLength: 1, maxLength: 60 })
      ),
      fc.boolean(),
      fc.nat(),
      (steps, unknowns, pick) => {
        const h = runAgainstMap(steps, unknowns);
        const reads = h.flatMap((o, i) =>
          o.input.op === "get" && o.output !== undefined ? [i] : []
        );
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        h[i] = { ...h[i]!, output: { value: "never-written" } };
        const res = checkKvHistory(h);
        assert.equal(res.result, "illegal");
        assert.equal(res.key, h[i]!.input.key);
        // The search on its own agrees (no shortcut through the up-front scan).
        assert.equal(checkOperations(kvModel, h).result, "illegal");
      },
    ),
    { numRuns: LONG ? 5_000 : 300 },
  );
});

/**
 * Reference checker: tries every order of the operations that respects real
 * time (touching intervals count as concurrent); unknown outcomes may be left
 * out. Exponential: only for a handful of operations.
 */
function bruteForce(history: readonly KvOperation[]): boolean {
  const n = history.length;
  const used = new Array<boolean>(n).fill(false);
  const search = (state: Map<string, string | null>, left: number): boolean => {
    let allUnknown = true;
    for (let i = 0; i < n; i++) {
      if (!used[i] && history[i]!.return !== undefined) allUnknown = false;
    }
    if (allUnknown) return true; // the rest may never have happened
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      const o = history[i]!;
      let blocked = false;
      for (let j = 0; j < n; j++) {
        const r = history[j]!.return;
        if (j !== i && !used[j] && r !== undefined && r < o.call) {
          blocked = true;
        }
      }
      if (blocked) continue;
      const [ok, next] = kvModel.step(
        state.get(o.input.key) ?? null,
        o.input,
        o.output,
      );
      if (!ok) continue;
      used[i] = true;
      const s2 = new Map(state).set(o.input.key, next);
      const found = search(s2, left - 1);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(new Map(), n);
}

Deno.test("verdicts on small random histories match an exhaustive search", () => {
  const vals = fc.constantFrom<string | null>(null, "a", "b");
  const opArb = fc.record({
    key: fc.constantFrom("x", "y"),
    kind: fc.integer({ min: 0, max: 3 }),
    value: fc.constantFrom("a", "b"),
    expected: vals,
    read: vals,
    swapped: fc.boolean(),
    call: fc.integer({ min: 0, max: 8 }),
    length: fc.integer({ min: 0, max: 5 }),
    unknown: fc.integer({ min: 0, max: 4 }),
  });
  let legal = 0;
  let illegal = 0;
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 7 }), (raw) => {
      const h = raw.map((r, c): KvOperation => {
        const input: KvInput = r.kind === 0
          ? { op: "get", key: r.key }
          : r.kind === 1
          ? { op: "put", key: r.key, value: r.value }
          : r.kind === 2
          ? { op: "delete", key: r.key }
          : { op: "cas", key: r.key, expected: r.expected, value: r.value };
        const output: KvOutput = r.kind === 0
          ? { value: r.read }
          : r.kind === 3
          ? { ok: r.swapped }
          : { ok: true };
        return op(
          c,
          input,
          r.call,
          r.unknown === 0 ? undefined : r.call + r.length,
          output,
        );
      });
      const expected = bruteForce(h) ? "ok" : "illegal";
      if (expected === "ok") legal++;
      else illegal++;
      assert.equal(verdict(h), expected);
      assert.equal(checkOperations(kvModel, h).result, expected);
    }),
    { numRuns: LONG ? 20_000 : 1_500 },
  );
  // The generator must exercise both verdicts for this test to mean anything.
  assert.ok(legal > 100 && illegal > 100, `legal ${legal}, illegal ${illegal}`);
});

Deno.test("pruning unobserved unknown writes never changes a verdict", () => {
  // Histories dense in unknown writes, checked with and without pruning (inside verdict()).
  const opArb = fc.record({
    kind: fc.integer({ min: 0, max: 3 }),
    value: fc.constantFrom("a", "b", "c"),
    read: fc.constantFrom<string | null>(null, "a", "b", "c"),
    expected: fc.constantFrom<string | null>(null, "a", "b"),
    swapped: fc.boolean(),
    call: fc.integer({ min: 0, max: 12 }),
    length: fc.integer({ min: 0, max: 4 }),
    unknown: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 9 }), (raw) => {
      const h = raw.map((r, c): KvOperation => {
        const input: KvInput = r.kind === 0
          ? { op: "get", key: "k" }
          : r.kind === 1
          ? { op: "put", key: "k", value: r.value }
          : r.kind === 2
          ? { op: "delete", key: "k" }
          : { op: "cas", key: "k", expected: r.expected, value: r.value };
        const output: KvOutput = r.kind === 0
          ? { value: r.read }
          : r.kind === 3
          ? { ok: r.swapped }
          : { ok: true };
        return op(
          c,
          input,
          r.call,
          r.unknown && r.kind !== 0 ? undefined : r.call + r.length,
          output,
        );
      });
      assert.equal(verdict(h), bruteForce(h) ? "ok" : "illegal");
    }),
    { numRuns: LONG ? 20_000 : 1_000 },
  );
});

/**
 * A simulation-like history: `clients` clients, each issuing its next
 * operation when the previous one returns, against a store whose operations
 * take effect at a random instant inside their interval; a few time out.
 */
function simulatedHistory(
  seed: number,
  ops: number,
  keys: number,
  clients: number,
  timeoutEvery: number,
): KvOperation[] {
  let x = seed >>> 0 || 1;
  const rand = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
  type Pending = { op: KvOperation; at: number; lost: boolean };
  const map = new Map<string, string>();
  const pending: Pending[] = [];
  const free: number[] = []; // time each client becomes free
  for (let c = 0; c < clients; c++) free.push(rand(5));
  const history: KvOperation[] = [];
  let issued = 0;
  let serial = 0;
  while (issued < ops || pending.length > 0) {
    // Next event: the earliest client ready to issue, or the earliest effect.
    const c = free.indexOf(Math.min(...free));
    pending.sort((a, b) => a.at - b.at);
    const nextEffect = pending[0];
    if (
      nextEffect !== undefined && (issued >= ops || nextEffect.at <= free[c]!)
    ) {
      pending.shift();
      const { op: o, lost } = nextEffect;
      const key = o.input.key;
      const cur = map.get(key) ?? null;
      let output: KvOutput;
      switch (o.input.op) {
        case "get":
          output = { value: cur };
          break;
        case "put":
          map.set(key, o.input.value);
          output = { ok: true };
          break;
        case "delete":
          map.delete(key);
          output = { ok: true };
          break;
        case "cas": {
          const swapped = cur === o.input.expected;
          if (swapped) map.set(key, o.input.value);
          output = { ok: swapped };
        }
      }
      if (!lost) {
        o.return = nextEffect.at + 1 + rand(20);
        o.output = output;
        free[o.clientId] = o.return;
      }
      continue;
    }
    const key = `key-${rand(keys)}`;
    const kind = rand(10);
    const value = `c${c}-${serial++}`;
    const input: KvInput = kind < 5
      ? { op: "get", key }
      : kind < 8
      ? { op: "put", key, value }
      : kind < 9
      ? { op: "delete", key }
      : {
        op: "cas",
        key,
        expected: rand(2) === 0 ? null : `c${rand(clients)}-${rand(serial)}`,
        value,
      };
    const call = free[c]!;
    const o: KvOperation = { clientId: c, input, call };
    history.push(o);
    issued++;
    const lost = timeoutEvery > 0 && rand(timeoutEvery) === 0;
    pending.push({ op: o, at: call + 1 + rand(20), lost });
    // A client that times out moves on after its deadline.
    free[c] = lost ? call + 50 : Infinity;
  }
  return history;
}

Deno.test("2,000 operations over 20 keys from 5 concurrent clients are checked well within 5 s", () => {
  const scale = LONG ? 5 : 1;
  for (const seed of [1, 2, 3]) {
    const h = simulatedHistory(seed, 2_000 * scale, 20, 5, 40);
    assert.equal(h.length, 2_000 * scale);
    assert.ok(
      h.some((o) => o.return === undefined),
      "some outcomes should be unknown",
    );
    const started = performance.now();
    const res = checkKvHistory(h);
    const took = performance.now() - started;
    assert.equal(res.result, "ok", res.info ?? "");
    assert.ok(took < 5_000 * scale, `took ${took} ms`);
  }
});

Deno.test("a stale read planted in a simulated history is found", () => {
  const h = simulatedHistory(7, 2_000, 20, 5, 40);
  // Find a completed get of a key that was overwritten by a put completed before the get's call.
  let planted = false;
  for (let i = 0; i < h.length && !planted; i++) {
    const o = h[i]!;
    if (o.input.op !== "get" || o.output === undefined) continue;
    const key = o.input.key;
    const puts = h.filter((p) =>
      p.input.key === key && p.input.op === "put" && p.return !== undefined
    );
    const before = puts.filter((p) => p.return! < o.call).sort((a, b) =>
      a.return! - b.return!
    );
    if (before.length < 2) continue;
    const older = before[before.length - 2]!;
    const newest = before[before.length - 1]!;
    if (
      older.input.op !== "put" || newest.input.op !== "put" ||
      newest.call <= older.return!
    ) continue;
    h[i] = { ...o, output: { value: older.input.value } };
    planted = true;
  }
  assert.ok(planted);
  const res = checkKvHistory(h);
  assert.equal(res.result, "illegal");
});
