import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import {
  fromWireChecked,
  positionalStructure,
} from "./positional_structure.ts";
import { compileSchemaReader, REJECT } from "./schema_reader.ts";

// The fast reader must agree with zod, the definition: same verdict, same value.
const schemas = {
  numbers: z.object({
    a: z.number().int().nonnegative(),
    b: z.number().gt(-1).lt(10),
    c: z.int(),
    d: z.number().min(2).max(2),
  }),
  strings: z.object({
    s: z.string().min(1).max(5),
    t: z.string().length(2),
    e: z.enum(["x", "y"]),
    l: z.literal(3),
    o: z.string().optional(),
    n: z.boolean().nullable(),
  }),
  nested: z.object({
    items: z.array(z.object({ k: z.string(), v: z.instanceof(Uint8Array) }))
      .max(3),
    inner: z.object({ x: z.number() }).optional(),
    any: z.unknown(),
    union: z.union([z.string(), z.number()]),
    email: z.string().email().optional(),
  }),
};

const wireValue = fc.oneof(
  fc.integer({ min: -5, max: 20 }),
  fc.double(),
  fc.constantFrom(
    null,
    undefined,
    true,
    "x",
    "y",
    "",
    "ab",
    "abcdef",
    "a@b.co",
    3,
    2,
    new Uint8Array(2),
    [],
  ),
  fc.string({ maxLength: 6 }),
);
const wireFor = (n: number) =>
  fc.oneof(
    fc.array(wireValue, { minLength: n, maxLength: n }),
    fc.array(wireValue, { maxLength: n + 1 }),
    wireValue,
  );
const nestedWire = fc.tuple(
  fc.oneof(
    fc.array(
      fc.oneof(
        fc.tuple(fc.string({ maxLength: 3 }), fc.constant(new Uint8Array(1))),
        fc.tuple(wireValue, wireValue),
        wireValue,
      ),
      { maxLength: 4 },
    ),
    wireValue,
  ),
  fc.oneof(fc.constant(undefined), fc.tuple(wireValue), wireValue),
  wireValue,
  wireValue,
  wireValue,
);

function zodVerdict(schema: z.ZodType, wire: unknown) {
  try {
    const obj = fromWireChecked(positionalStructure(schema), wire, "M");
    const r = schema.safeParse(obj);
    return r.success ? { ok: true, value: r.data } : { ok: false };
  } catch {
    return { ok: false };
  }
}

function fastVerdict(schema: z.ZodType, wire: unknown) {
  try {
    return { ok: true, value: compileSchemaReader(schema)(wire) };
  } catch (e) {
    if (e !== REJECT) throw e;
    return { ok: false };
  }
}

Deno.test("the compiled reader gives zod's verdict and value on arbitrary wire values", () => {
  const cases: Array<[z.ZodType, fc.Arbitrary<unknown>]> = [
    [schemas.numbers, wireFor(4)],
    [schemas.strings, wireFor(6)],
    [schemas.nested, fc.oneof(nestedWire, wireFor(5))],
  ];
  for (const [schema, arb] of cases) {
    fc.assert(
      fc.property(arb, (wire) => {
        assert.deepEqual(fastVerdict(schema, wire), zodVerdict(schema, wire));
      }),
      { numRuns: 3000 },
    );
  }
});

Deno.test("a field named __proto__ is refused when the message is defined", () => {
  assert.throws(
    () => compileSchemaReader(z.object({ ["__proto__"]: z.number() })),
    /__proto__/,
  );
});
