import { deepStrictEqual, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import { LIMITS, mutateBody } from "./wire.ts";
import { acceptMutateBody } from "./mutate_body_accept.ts";

/** Key order too (deepStrictEqual ignores it). */
function sameShape(a: unknown, b: unknown): void {
  if (typeof a !== "object" || a === null) return;
  deepStrictEqual(Object.keys(a), Object.keys(b as object));
  for (const k of Object.keys(a)) {
    sameShape(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
    );
  }
}

const family = fc.oneof(
  fc.constantFrom("f", "cf", "_x", "0", "a.b-c", "a".repeat(64)),
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/),
);
const timestamp = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 31 }),
  fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, 1796501081344),
);
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }));
/** Mutations zod accepts, with and without timestamps. */
const mutation = fc.oneof(
  fc.record({
    op: fc.constant("put"),
    family,
    qualifier: text,
    value: text,
    timestamp,
  }, { requiredKeys: ["op", "family", "qualifier", "value"] }),
  fc.record({
    op: fc.constant("deleteCells"),
    family,
    qualifier: text,
    timestamp,
  }, {
    requiredKeys: ["op", "family", "qualifier"],
  }),
  fc.record({ op: fc.constant("deleteFamily"), family }),
  fc.record({ op: fc.constant("deleteRow") }),
);
/** Bodies zod accepts (encoding missing, or either value). */
const validBody = fc.record({
  row: text,
  encoding: fc.constantFrom("utf8", "base64"),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 5 }),
}, { requiredKeys: ["row", "mutations"] });

/** Anything JSON.parse can give, near-valid bodies broken in one place. */
const wrong = fc.oneof(
  fc.constantFrom(
    -1,
    1.5,
    2 ** 53,
    "",
    "F",
    "put",
    "utf-8",
    null,
    true,
    [],
    {},
    "a".repeat(65),
    "-f",
    ".f",
    "f g",
    "f\n",
    "é",
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const broken = fc.tuple(
  validBody,
  fc.array(fc.tuple(fc.nat(), fc.string(), wrong), {
    minLength: 1,
    maxLength: 3,
  }),
)
  .map(([body, edits]) => {
    const b = structuredClone(body) as Record<string, unknown>;
    for (const [at, key, value] of edits) {
      // Put a value somewhere: the body, or one of its mutations; under a
      // known key (often) or any key (an unknown one).
      const ms = b.mutations;
      const target = at % 3 === 0 || !Array.isArray(ms) || ms.length === 0
        ? b
        : ms[at % ms.length];
      if (typeof target !== "object" || target === null) continue;
      const keys = at % 3 === 0
        ? ["row", "encoding", "mutations", key]
        : ["op", "family", "qualifier", "value", "timestamp", key];
      target[keys[at % keys.length]!] = value;
    }
    return b;
  });

/** `v` with every object's keys in an order `seed` picks (JSON keeps it). */
function reorder(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => reorder(x, seed + i));
  if (typeof v !== "object" || v === null) return v;
  const keys = Object.keys(v);
  // A rotation and maybe a reversal: enough to put any key first or last.
  const r = seed % Math.max(1, keys.length);
  const turned = [...keys.slice(r), ...keys.slice(0, r)];
  if ((seed >> 3) % 2 === 1) turned.reverse();
  const out: Record<string, unknown> = {};
  for (const k of turned) {
    out[k] = reorder((v as Record<string, unknown>)[k], seed >> 1);
  }
  return out;
}

Deno.test("acceptMutateBody never accepts what zod refuses, and gives zod's exact output", () => {
  fc.assert(
    fc.property(
      fc.oneof(validBody, broken, fc.jsonValue({ maxDepth: 4 })),
      fc.nat(),
      fc.boolean(),
      (body, seed, shuffle) => {
        const raw = shuffle ? reorder(body, seed) : body;
        // Through JSON, as a request body arrives (and so as plain objects).
        const x = JSON.parse(JSON.stringify(raw));
        const fast = acceptMutateBody(x);
        if (fast === undefined) return;
        const z = mutateBody.safeParse(x);
        strictEqual(z.success, true);
        deepStrictEqual(fast, z.data);
        sameShape(fast, z.data);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("acceptMutateBody accepts every body zod accepts that a client sends", () => {
  fc.assert(
    fc.property(validBody, fc.nat(), (body, seed) => {
      const x = JSON.parse(JSON.stringify(reorder(body, seed)));
      strictEqual(mutateBody.safeParse(x).success, true);
      const fast = acceptMutateBody(x);
      strictEqual(fast !== undefined, true);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("acceptMutateBody leaves to zod: unknown keys, __proto__, the limits, bad families and timestamps", () => {
  const put = { op: "put", family: "f", qualifier: "q", value: "v" };
  const body = (m: unknown, extra: Record<string, unknown> = {}) =>
    JSON.parse(JSON.stringify({ row: "r", mutations: [m], ...extra }));
  for (
    const raw of [
      body(put, { extra: 1 }),
      body({ ...put, extra: 1 }),
      JSON.parse('{"row":"r","mutations":[],"__proto__":{}}'),
      JSON.parse(
        '{"row":"r","mutations":[{"op":"put","family":"f","qualifier":"q","value":"v","__proto__":1}]}',
      ),
      body({ ...put, family: "" }),
      body({ ...put, family: "a".repeat(65) }),
      body({ ...put, timestamp: -1 }),
      body({ ...put, timestamp: 1.5 }),
      body({ ...put, timestamp: 2 ** 53 }),
      body({ ...put, timestamp: "1" }),
      body({ op: "deleteRow", family: "f" }),
      body({ op: "nope" }),
      body(put, { encoding: "hex" }),
      body(put, { encoding: null }),
      { row: "r", mutations: [] },
      { row: "r", mutations: Array(LIMITS.maxMutations + 1).fill(put) },
      { row: 1, mutations: [put] },
      [put],
      null,
    ]
  ) {
    strictEqual(acceptMutateBody(raw), undefined);
    strictEqual(mutateBody.safeParse(raw).success, false);
  }
  // The largest accepted count still goes the fast way.
  const most = { row: "r", mutations: Array(LIMITS.maxMutations).fill(put) };
  deepStrictEqual(acceptMutateBody(most), mutateBody.parse(most));
});
