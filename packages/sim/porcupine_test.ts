import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkOperations,
  checkPartition,
  type Model,
  type Operation,
} from "./porcupine.ts";

// A single integer register: writes return nothing useful, reads return it.
type RegIn = { op: "write"; value: number } | { op: "read" };
type RegOp = Operation<RegIn, number>;

const register: Model<number, RegIn, number> = {
  init: () => 0,
  step: (s, input, output) =>
    input.op === "write"
      ? [true, input.value]
      : [output === undefined || output === s, s],
  equal: (a, b) => a === b,
  hash: (s) => String(s),
  describeOperation: (input, output) =>
    input.op === "write" ? `write ${input.value}` : `read -> ${output ?? "?"}`,
};

const w = (
  clientId: number,
  value: number,
  call: number,
  ret?: number,
): RegOp => ({
  clientId,
  input: { op: "write", value },
  call,
  return: ret,
  output: ret === undefined ? undefined : 0,
});
const r = (
  clientId: number,
  value: number | undefined,
  call: number,
  ret?: number,
): RegOp => ({
  clientId,
  input: { op: "read" },
  call,
  return: ret,
  output: value,
});

/** Asserts `order` is a linearization of `ops`: every op once, real time kept, model accepts. */
function assertWitness(ops: readonly RegOp[], order: readonly number[]): void {
  assert.equal(new Set(order).size, order.length);
  assert.equal(order.length, ops.length);
  let s = register.init();
  for (let a = 0; a < order.length; a++) {
    const op = ops[order[a]!]!;
    for (let b = a + 1; b < order.length; b++) {
      const later = ops[order[b]!]!;
      assert.ok(
        !(later.return !== undefined && later.return < op.call),
        "real-time order broken",
      );
    }
    const [ok, next] = register.step(s, op.input, op.output);
    assert.ok(ok, "model rejects the witness");
    s = next;
  }
}

Deno.test("an empty history is linearizable", () => {
  assert.deepEqual(checkPartition(register, []), { result: "ok", order: [] });
  assert.equal(checkOperations(register, []).result, "ok");
});

Deno.test("a sequential register history is linearizable in its own order", () => {
  const ops = [w(0, 1, 0, 1), r(1, 1, 2, 3), w(0, 2, 4, 5), r(1, 2, 6, 7)];
  assert.deepEqual(checkPartition(register, ops), {
    result: "ok",
    order: [0, 1, 2, 3],
  });
});

Deno.test("the witness for overlapping writes is the only legal order, not the call order", () => {
  // write 1 is called first but must take effect after the read of 2.
  const ops = [w(0, 1, 0, 10), w(1, 2, 1, 2), r(2, 2, 3, 4), r(3, 1, 5, 6)];
  const res = checkPartition(register, ops);
  assert.equal(res.result, "ok");
  assert.deepEqual(res.order, [1, 2, 0, 3]);
});

Deno.test("a read that goes back in time after a completed write is illegal", () => {
  const ops = [w(0, 1, 0, 1), w(0, 2, 2, 3), r(1, 1, 4, 5)];
  const res = checkPartition(register, ops);
  assert.equal(res.result, "illegal");
  assert.match(res.info!, /longest linearizable prefix has 2/);
  assert.match(
    res.info!,
    /client 1 read -> 1 \[4, 5\] \(does not fit this state\)/,
  );
});

Deno.test("an unknown-outcome write may take effect long after its call, or never", () => {
  assert.equal(
    checkPartition(register, [w(0, 7, 0), r(1, 0, 5, 6), r(1, 7, 8, 9)]).result,
    "ok",
  );
  assert.equal(
    checkPartition(register, [w(0, 7, 0), r(1, 0, 5, 6), r(1, 0, 8, 9)]).result,
    "ok",
  );
  // Once seen, its effect cannot be undone.
  assert.equal(
    checkPartition(register, [w(0, 7, 0), r(1, 7, 5, 6), r(1, 0, 8, 9)]).result,
    "illegal",
  );
});

Deno.test("intervals that only touch count as concurrent", () => {
  assert.equal(
    checkPartition(register, [w(0, 1, 0, 5), r(1, 0, 5, 6)]).result,
    "ok",
  );
  assert.equal(
    checkPartition(register, [w(0, 1, 0, 5), r(1, 0, 6, 7)]).result,
    "illegal",
  );
});

Deno.test("memoisation refutes fourteen concurrent writes followed by an impossible read", () => {
  // Without the (linearized set, state) cache this explores 14! orders.
  const ops: RegOp[] = [];
  for (let i = 0; i < 14; i++) ops.push(w(i, (i % 4) + 1, 0, 100));
  ops.push(r(99, 1, 200, 201), r(99, 2, 202, 203));
  const started = performance.now();
  const res = checkPartition(register, ops);
  assert.equal(res.result, "illegal");
  assert.ok(performance.now() - started < 20_000);
});

Deno.test("the search gives up with unknown when the deadline has passed", () => {
  const ops: RegOp[] = [];
  for (let i = 0; i < 24; i++) ops.push(w(i, i + 1, 0, 100));
  ops.push(r(99, 1, 200, 201), r(99, 2, 202, 203));
  assert.deepEqual(checkPartition(register, ops, performance.now() + 50), {
    result: "unknown",
  });
  const res = checkOperations(register, ops, { timeoutMs: 50 });
  assert.equal(res.result, "unknown");
  assert.equal(res.ok, false);
  assert.match(res.info!, /time budget of 50 ms ran out/);
});

Deno.test("a long sequential history is checked without recursion limits", () => {
  const ops: RegOp[] = [];
  for (let i = 0; i < 20_000; i++) {
    ops.push(
      i % 2 === 0 ? w(0, i, 2 * i, 2 * i + 1) : r(0, i - 1, 2 * i, 2 * i + 1),
    );
  }
  const res = checkPartition(register, ops);
  assert.equal(res.result, "ok");
  assert.equal(res.order!.length, ops.length);
});

Deno.test("parts of a partitioned model are checked independently and named in reports", () => {
  // Two registers in one history: even clients use register A, odd ones B.
  const model: Model<number, RegIn, number> = {
    ...register,
    partition: (h) =>
      [0, 1].map((k) => h.flatMap((op, i) => op.clientId % 2 === k ? [i] : [])),
    describePartition: (h, part) =>
      `register ${h[part[0]!]!.clientId % 2 === 0 ? "A" : "B"}`,
  };
  const ok = [w(0, 1, 0, 1), w(1, 2, 0, 1), r(2, 1, 2, 3), r(3, 2, 2, 3)];
  const res = checkOperations(model, ok);
  assert.equal(res.result, "ok");
  assert.deepEqual(res.linearizations, [[0, 2], [1, 3]]);
  // As one register the same history is illegal (reads 1 and 2 after both writes).
  assert.equal(checkOperations(register, ok).result, "illegal");
  const bad = [...ok, r(5, 1, 4, 5)];
  const res2 = checkOperations(model, bad);
  assert.equal(res2.result, "illegal");
  assert.equal(res2.partition, 1);
  assert.match(res2.info!, /^register B: /);
});

Deno.test("histories of a register run with overlapping intervals are linearizable with a valid witness", () => {
  const step = fc.record({
    write: fc.boolean(),
    value: fc.integer({ min: 0, max: 3 }),
    pre: fc.integer({ min: 0, max: 40 }),
    post: fc.integer({ min: 0, max: 40 }),
    unknown: fc.integer({ min: 0, max: 9 }),
  });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      let reg = 0;
      const ops: RegOp[] = steps.map((s, i) => {
        const at = 10 * (i + 1);
        if (s.write) reg = s.value;
        const op = s.write
          ? w(i, s.value, at - s.pre, at + s.post)
          : r(i, reg, at - s.pre, at + s.post);
        if (s.unknown === 0) {
          return { ...op, return: undefined, output: undefined };
        }
        return op;
      });
      const res = checkPartition(register, ops);
      assert.equal(res.result, "ok");
      assertWitness(ops, res.order!);
    }),
    { numRuns: 300 },
  );
});

/** Every order respecting real time; unknown outcomes may be left out. */
function bruteForce(ops: readonly RegOp[]): boolean {
  const used = ops.map(() => false);
  const search = (s: number): boolean => {
    if (ops.every((o, i) => used[i] || o.return === undefined)) return true;
    for (let i = 0; i < ops.length; i++) {
      if (used[i]) continue;
      const o = ops[i]!;
      const blocked = ops.some((p, j) =>
        j !== i && !used[j] && p.return !== undefined && p.return < o.call
      );
      if (blocked) continue;
      const [ok, next] = register.step(s, o.input, o.output);
      if (!ok) continue;
      used[i] = true;
      const found = search(next);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(register.init());
}

Deno.test("verdicts with many unknown-outcome twins match an exhaustive search", () => {
  // Unknown writes with repeated values exercise the twin and dominance rules.
  const withTwins: Model<number, RegIn, number> = {
    ...register,
    hashInput: (input) => input.op === "write" ? `w${input.value}` : "r",
    isBlind: (input) => input.op === "write",
  };
  const opArb = fc.record({
    write: fc.boolean(),
    value: fc.integer({ min: 0, max: 2 }),
    call: fc.integer({ min: 0, max: 10 }),
    length: fc.integer({ min: 0, max: 4 }),
    unknown: fc.boolean(),
  });
  let legal = 0;
  let illegal = 0;
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 8 }), (raw) => {
      const ops = raw.map((o, i) =>
        o.write
          ? w(i, o.value, o.call, o.unknown ? undefined : o.call + o.length)
          : r(i, o.value, o.call, o.call + o.length)
      );
      const expected = bruteForce(ops) ? "ok" : "illegal";
      if (expected === "ok") legal++;
      else illegal++;
      const plain = checkPartition(register, ops);
      const twins = checkPartition(withTwins, ops);
      assert.equal(plain.result, expected);
      assert.equal(twins.result, expected);
      if (expected === "ok") {
        assertWitness(ops, plain.order!);
        assertWitness(ops, twins.order!);
      }
    }),
    { numRuns: Deno.env.get("STRATA_LONG") === "1" ? 20_000 : 2_000 },
  );
  assert.ok(legal > 200 && illegal > 200, `legal ${legal}, illegal ${illegal}`);
});
