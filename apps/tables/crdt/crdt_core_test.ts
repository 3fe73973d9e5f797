/**
 * Properties of the pure CRDT core (fast-check): merge is commutative,
 * associative and idempotent on every state replicas can reach; replicas
 * that exchange states in any order, with duplicates and stale copies,
 * converge to the merge of everything; the values are what the operations
 * say (counter = sum of increments, register = the write with the highest
 * timestamp, set = a plain set for one replica, add wins over a concurrent
 * remove); the hybrid logical clock never goes back, whatever the wall clock
 * does, and refuses a peer too far ahead.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import { compareHlc, type Hlc, HybridClock } from "./hlc.ts";
import {
  applyOp,
  canonicalValue,
  type CrdtOp,
  type CrdtValue,
  crdtValueSchema,
  mergeValue,
  sameValue,
  viewOf,
} from "./crdt_value.ts";

const NODES = ["a", "b", "c"];
const opArb: fc.Arbitrary<CrdtOp> = fc.oneof(
  fc.record({
    op: fc.constant("incr" as const),
    by: fc.integer({ min: -5, max: 5 }).filter((n) => n !== 0),
  }),
  fc.record({
    op: fc.constantFrom("add" as const, "remove" as const),
    elements: fc.array(fc.constantFrom("x", "y", "z", "w"), {
      minLength: 1,
      maxLength: 2,
    }),
  }),
  fc.record({ op: fc.constant("set" as const), value: fc.string() }),
);
type Step =
  | { kind: "op"; node: number; op: CrdtOp; wall: number }
  | { kind: "merge"; from: number; to: number };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("op" as const),
    node: fc.nat({ max: 2 }),
    op: opArb,
    wall: fc.integer({ min: 0, max: 20 }),
  }),
  fc.record({
    kind: fc.constant("merge" as const),
    from: fc.nat({ max: 2 }),
    to: fc.nat({ max: 2 }),
  }),
);

/** Runs a history over 3 replicas (each with its own clock); their states and every write. */
function run(steps: Step[]) {
  const states: CrdtValue[] = NODES.map(() => ({}));
  let wall = 0;
  const clocks = NODES.map((node) =>
    new HybridClock({ node, wallClock: () => wall })
  );
  const writes: { value: string; ts: Hlc }[] = [];
  let sum = 0;
  const seen: CrdtValue[] = [];
  for (const s of steps) {
    if (s.kind === "op") {
      wall = s.wall; // the wall clock jumps about, backwards too
      const st = states[s.node]!;
      states[s.node] = applyOp(st, s.op, NODES[s.node]!, () => {
        if (st.r) clocks[s.node]!.observe(st.r.ts);
        const ts = clocks[s.node]!.now();
        writes.push({ value: s.op.op === "set" ? s.op.value : "", ts });
        return ts;
      });
      if (s.op.op === "incr") sum += s.op.by;
    } else {
      states[s.to] = mergeValue(states[s.to]!, states[s.from]!);
    }
    seen.push(states[s.kind === "op" ? s.node : s.to]!);
  }
  return { states, writes, sum, seen };
}

const eq = (a: CrdtValue, b: CrdtValue) =>
  deepStrictEqual(canonicalValue(a), canonicalValue(b));

Deno.test("crdt: merge is commutative, associative and idempotent on reachable states", () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { maxLength: 40 }),
      fc.nat(),
      fc.nat(),
      fc.nat(),
      (steps, i, j, k) => {
        const { seen } = run(steps);
        if (seen.length === 0) return;
        const a = seen[i % seen.length]!;
        const b = seen[j % seen.length]!;
        const c = seen[k % seen.length]!;
        eq(mergeValue(a, b), mergeValue(b, a));
        eq(mergeValue(mergeValue(a, b), c), mergeValue(a, mergeValue(b, c)));
        eq(mergeValue(a, a), a);
        // The wire schema accepts every reachable state.
        ok(crdtValueSchema.safeParse(a).success);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("crdt: replicas converge whatever the delivery order, duplicates and stale copies", () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 })), { maxLength: 30 }),
      (steps, deliveries) => {
        const { states, writes, sum, seen } = run(steps);
        // Every state ever held is a message: delivered at random (some
        // twice, some stale), then every replica's final state to all.
        const finals = states.map((s) => ({ ...s }));
        const got = states.map((s) => s);
        for (const [m, to] of deliveries) {
          if (seen.length) {
            got[to] = mergeValue(got[to]!, seen[m % seen.length]!);
          }
        }
        for (let to = 0; to < 3; to++) {
          for (const from of [2, 0, 1, 0]) {
            got[to] = mergeValue(got[to]!, finals[from]!);
          }
        }
        const all = finals.reduce((x, y) => mergeValue(x, y), {});
        for (const g of got) ok(sameValue(g, all));
        const view = viewOf(all);
        // The counter is the sum of every increment.
        if (view.counter !== undefined) strictEqual(view.counter, sum);
        // The register holds the write with the highest timestamp.
        const last = writes.sort((x, y) => compareHlc(x.ts, y.ts)).at(-1);
        if (last) deepStrictEqual(view.register, last);
        else strictEqual(view.register, undefined);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("crdt: one replica's set is a plain set; add wins over a concurrent remove", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
      let v: CrdtValue = {};
      const model = new Set<string>();
      for (const op of ops) {
        v = applyOp(v, op, "a", () => ({ wall: 0, logical: 0, node: "a" }));
        if (op.op === "add") op.elements.forEach((e) => model.add(e));
        if (op.op === "remove") op.elements.forEach((e) => model.delete(e));
      }
      deepStrictEqual(viewOf(v).set ?? [], [...model].sort());
    }),
  );
  const ts = () => ({ wall: 0, logical: 0, node: "n" });
  const base = applyOp({}, { op: "add", elements: ["x"] }, "a", ts);
  const removed = applyOp(base, { op: "remove", elements: ["x"] }, "b", ts);
  const readded = applyOp(base, { op: "add", elements: ["x"] }, "a", ts);
  deepStrictEqual(viewOf(mergeValue(removed, readded)).set, ["x"]);
  deepStrictEqual(viewOf(mergeValue(removed, base)).set, []);
});

Deno.test("crdt: the hybrid clock is monotonic and refuses a peer too far ahead", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ wall: fc.integer({ min: 0, max: 1000 }) }),
          fc.record({
            wall: fc.integer({ min: 0, max: 1000 }),
            remote: fc.record({
              wall: fc.integer({ min: 0, max: 2000 }),
              logical: fc.nat({ max: 5 }),
              node: fc.constantFrom("p", "q"),
            }),
          }),
        ),
        { maxLength: 60 },
      ),
      (events) => {
        let wall = 0;
        const clock = new HybridClock({
          node: "n",
          wallClock: () => wall,
          maxOffsetMs: 500,
        });
        let prev: Hlc | undefined;
        for (const e of events) {
          wall = e.wall;
          let mustFollow: Hlc | undefined;
          if ("remote" in e) {
            const adopted = clock.observe(e.remote);
            strictEqual(adopted, e.remote.wall - wall <= 500);
            if (adopted) mustFollow = e.remote;
          }
          const t = clock.now();
          if (prev) ok(compareHlc(t, prev) > 0, "never backwards");
          if (mustFollow) ok(compareHlc(t, mustFollow) > 0, "after the peer");
          ok(t.wall >= wall, "never behind the wall clock");
          prev = t;
        }
      },
    ),
  );
});
