/**
 * `crdt_value.ts`: the state of one key of a CRDT range, and the pure
 * functions on it. A key may hold a PN counter, an add-wins set and a
 * last-writer-wins register at once (one slot each), so that concurrent
 * writes of different kinds at different replicas still merge: each slot
 * merges on its own. Also the operations a client sends, and how a
 * replica applies one.
 */
import { z } from "zod";
import type { Hlc } from "./hlc.ts";
import {
  counterValue,
  emptyCounter,
  incrementCounter,
  mergeCounter,
  type PnCounter,
} from "./pn_counter.ts";
import {
  addToSet,
  emptySet,
  mergeSet,
  type OrSet,
  removeFromSet,
  setElements,
} from "./or_set.ts";
import { type LwwRegister, mergeRegister } from "./lww_register.ts";

/** One key's state. */
export interface CrdtValue {
  c?: PnCounter;
  s?: OrSet;
  r?: LwwRegister;
}

/** The join of two key states, slot by slot. */
export function mergeValue(a: CrdtValue, b: CrdtValue): CrdtValue {
  const out: CrdtValue = {};
  const c = a.c && b.c ? mergeCounter(a.c, b.c) : a.c ?? b.c;
  const s = a.s && b.s ? mergeSet(a.s, b.s) : a.s ?? b.s;
  const r = a.r && b.r ? mergeRegister(a.r, b.r) : a.r ?? b.r;
  if (c) out.c = c;
  if (s) out.s = s;
  if (r) out.r = r;
  return out;
}

const sortObject = <T>(o: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1));

/** The state with its maps' keys sorted: equal states give equal JSON. */
export function canonicalValue(v: CrdtValue): CrdtValue {
  const out: CrdtValue = {};
  if (v.c) out.c = { p: sortObject(v.c.p), n: sortObject(v.c.n) };
  if (v.s) out.s = { vv: sortObject(v.s.vv), e: sortObject(v.s.e) };
  if (v.r) out.r = { value: v.r.value, ts: v.r.ts };
  return out;
}

/** Whether two states are the same (as sets of facts, not by identity). */
export const sameValue = (a: CrdtValue, b: CrdtValue): boolean =>
  JSON.stringify(canonicalValue(a)) === JSON.stringify(canonicalValue(b));

/** What a reader sees of a key. */
export interface CrdtView {
  counter?: number;
  set?: string[];
  register?: { value: string; ts: Hlc };
}

/** The readable value of a key state. */
export function viewOf(v: CrdtValue): CrdtView {
  const out: CrdtView = {};
  if (v.c) out.counter = counterValue(v.c);
  if (v.s) out.set = setElements(v.s);
  if (v.r) out.register = { value: v.r.value, ts: v.r.ts };
  return out;
}

/** Largest counter step, set element and register value accepted. */
export const CRDT_LIMITS = {
  maxStep: 2 ** 40,
  maxElementBytes: 1024,
  maxElements: 1000,
  maxValueBytes: 64 * 1024,
  maxKeyBytes: 1024,
} as const;

const utf8Max = (max: number, what: string) =>
  z.string().refine((s) => new TextEncoder().encode(s).length <= max, {
    message: `${what} is at most ${max} bytes`,
  });

/** A key of a CRDT range (any non-empty string up to 1 KiB). */
export const crdtKeySchema = utf8Max(CRDT_LIMITS.maxKeyBytes, "a key").refine(
  (s) => s.length > 0,
  { message: "a key is not empty" },
);

/** One client operation on a key. */
export const crdtOpSchema = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("incr"),
    /** Added to the counter (negative: a decrement); not 0. */
    by: z.number().int().min(-CRDT_LIMITS.maxStep).max(CRDT_LIMITS.maxStep)
      .refine((n) => n !== 0, { message: "by is not 0" }),
  }),
  z.strictObject({
    op: z.enum(["add", "remove"]),
    elements: z.array(
      utf8Max(CRDT_LIMITS.maxElementBytes, "an element"),
    ).min(1).max(CRDT_LIMITS.maxElements),
  }),
  z.strictObject({
    op: z.literal("set"),
    value: utf8Max(CRDT_LIMITS.maxValueBytes, "a value"),
  }),
]);
/** One client operation. */
export type CrdtOp = z.infer<typeof crdtOpSchema>;

/**
 * `v` after `op` done at node `node`; `ts` gives a register write its
 * timestamp (called only for `set`).
 */
export function applyOp(
  v: CrdtValue,
  op: CrdtOp,
  node: string,
  ts: () => Hlc,
): CrdtValue {
  switch (op.op) {
    case "incr":
      return { ...v, c: incrementCounter(v.c ?? emptyCounter(), node, op.by) };
    case "add": {
      let s = v.s ?? emptySet();
      for (const el of op.elements) s = addToSet(s, node, el);
      return { ...v, s };
    }
    case "remove": {
      let s = v.s ?? emptySet();
      for (const el of op.elements) s = removeFromSet(s, el);
      return { ...v, s };
    }
    case "set": {
      const w = { value: op.value, ts: ts() };
      return { ...v, r: v.r ? mergeRegister(v.r, w) : w };
    }
  }
}

const nodeSchema = z.string().min(1).max(64);
const countSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A timestamp on the wire. */
export const hlcSchema = z.strictObject({
  wall: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  logical: countSchema,
  node: nodeSchema,
});
/** A key state on the wire (anti-entropy, the local log). */
export const crdtValueSchema = z.strictObject({
  c: z.strictObject({
    p: z.record(nodeSchema, countSchema),
    n: z.record(nodeSchema, countSchema),
  }).optional(),
  s: z.strictObject({
    vv: z.record(nodeSchema, countSchema),
    e: z.record(
      z.string(),
      z.array(z.tuple([nodeSchema, countSchema.min(1)])).min(1),
    ),
  }).optional(),
  r: z.strictObject({ value: z.string(), ts: hlcSchema }).optional(),
});
