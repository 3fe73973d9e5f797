/**
 * Linearizability of key-value histories (get/put/delete/cas), checked key by
 * key with the Porcupine search of ./porcupine.ts.
 *
 * @module
 */
import { z } from "zod";
import { SimError } from "./sim_error.ts";
import {
  checkPartition,
  DEFAULT_CHECK_TIMEOUT_MS,
  type Model,
} from "./porcupine.ts";

export {
  checkOperations,
  type CheckOptions,
  type CheckOutcome,
  checkPartition,
  DEFAULT_CHECK_TIMEOUT_MS,
  type Model,
  type Operation,
  type OperationsCheckResult,
  type PartitionCheckResult,
} from "./porcupine.ts";

/**
 * What a client asked the store, about one key. `cas` swaps in `value` when
 * the current value equals `expected` (`null` meaning absent).
 */
export type KvInput =
  | { op: "get"; key: string }
  | { op: "put"; key: string; value: string }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expected: string | null; value: string };

/**
 * What the store answered: `get` gives `{ value }` (`null` when absent);
 * `put` and `delete` give `{ ok: true }`; `cas` gives `{ ok }`, whether it
 * swapped.
 */
export type KvOutput = { value: string | null } | { ok: boolean };

/**
 * One operation of a key-value history: the client that issued it, its
 * input, the time of its call, and, when the response arrived, the time of
 * that response (`return`) and what it said (`output`). Leave `return` and
 * `output` undefined for an unknown outcome (timed out, crashed): the
 * operation may then have taken effect at any time after its call, or never.
 * Times may be in any unit shared by the whole history. Intervals that
 * merely touch (a return at the same time as another call) count as
 * concurrent.
 */
export interface KvOperation {
  /** The client that issued it (used in failure reports). */
  clientId: number;
  /** What it asked. */
  input: KvInput;
  /** Time the call was issued. */
  call: number;
  /** Time the response arrived; undefined = unknown outcome. */
  return?: number;
  /** What the response said; undefined when the outcome is unknown. */
  output?: KvOutput;
}

// The schemas are annotated with the types above, so the compiler keeps the
// two in step.

/** Schema of {@link KvInput}. */
export const KvInputSchema: z.ZodType<KvInput> = z.discriminatedUnion("op", [
  z.object({ op: z.literal("get"), key: z.string() }),
  z.object({ op: z.literal("put"), key: z.string(), value: z.string() }),
  z.object({ op: z.literal("delete"), key: z.string() }),
  z.object({
    op: z.literal("cas"),
    key: z.string(),
    expected: z.string().nullable(),
    value: z.string(),
  }),
]);

/** Schema of {@link KvOutput}. */
export const KvOutputSchema: z.ZodType<KvOutput> = z.union([
  z.object({ value: z.string().nullable() }),
  z.object({ ok: z.boolean() }),
]);

/**
 * Schema of {@link KvOperation}: also checks that `return` is not before
 * `call`, that an output comes with a return time, and that the output has
 * the kind the operation answers (`{ value }` for get, `{ ok }` otherwise).
 */
export const KvOperationSchema: z.ZodType<KvOperation> = z.object({
  clientId: z.number(),
  input: KvInputSchema,
  call: z.number(),
  return: z.number().optional(),
  output: KvOutputSchema.optional(),
}).superRefine((op, ctx) => {
  if (op.return !== undefined && op.return < op.call) {
    ctx.addIssue({
      code: "custom",
      message: `returns at ${op.return}, before its call at ${op.call}`,
      path: ["return"],
    });
  }
  if (op.output !== undefined) {
    if (op.return === undefined) {
      ctx.addIssue({
        code: "custom",
        message:
          "has an output but no return time (leave both undefined for an unknown outcome)",
        path: ["output"],
      });
    }
    const wantsValue = op.input.op === "get";
    if (wantsValue !== ("value" in op.output)) {
      ctx.addIssue({
        code: "custom",
        message: `a ${op.input.op} answers ${
          wantsValue ? "{ value }" : "{ ok }"
        }`,
        path: ["output"],
      });
    }
  }
});

/** The verdict of {@link checkKvHistory}. */
export interface CheckResult {
  /** True when the history is linearizable. */
  ok: boolean;
  /** `"unknown"` only when the time budget ran out. */
  result: "ok" | "illegal" | "unknown";
  /** The key whose history failed (or timed out). */
  key?: string;
  /** Why, in words: the operations involved. */
  info?: string;
}

/** Options of {@link checkKvHistory}. */
export interface KvCheckOptions {
  /** Time budget in ms (default 30,000; `Infinity` for none). */
  timeoutMs?: number;
  /**
   * Leave out unknown-outcome writes that nothing could have observed
   * (default true; false only to test that the pruning changes no verdict).
   */
  pruneUnobservedWrites?: boolean;
}

/** The state of one key: its value, `null` when absent. */
export type KvState = string | null;

/**
 * Stands for every value that no operation ever looks at (no read returned
 * it, no cas expected it): such values are indistinguishable to the rest of
 * the history, so the search treats them as one, which shrinks its state
 * space.
 */
const UNREAD = "\u0000<a value no operation reads>";

/** The input an operation had before its value was replaced by UNREAD (for reports). */
const originalInput = new WeakMap<KvInput, KvInput>();

function quote(v: string | null): string {
  if (v === UNREAD) return "<a value no operation reads>";
  return v === null ? "null" : JSON.stringify(v);
}

function describeKvOperation(
  input: KvInput,
  output: KvOutput | undefined,
): string {
  input = originalInput.get(input) ?? input;
  let answer = "?";
  if (output !== undefined) {
    if ("value" in output) answer = quote(output.value);
    else if (input.op === "cas") answer = output.ok ? "swapped" : "not swapped";
    else answer = output.ok ? "ok" : "not ok";
  }
  switch (input.op) {
    case "get":
      return `get -> ${answer}`;
    case "put":
      return `put ${quote(input.value)} -> ${answer}`;
    case "delete":
      return `delete -> ${answer}`;
    case "cas":
      return `cas ${quote(input.expected)} => ${
        quote(input.value)
      } -> ${answer}`;
  }
}

/** The value a write leaves (null for delete); undefined for a get. */
function writtenValue(input: KvInput): string | null | undefined {
  switch (input.op) {
    case "put":
    case "cas":
      return input.value;
    case "delete":
      return null;
    case "get":
      return undefined;
  }
}

/** The operations of one key, prepared for the search. */
export interface KvPart {
  /** The key. */
  key: string;
  /**
   * Its operations, possibly with a tighter `return` for unknown outcomes
   * (see {@link prepareKvHistory}); `output` stays undefined for those.
   */
  ops: KvOperation[];
  /** `indices[i]` is the index in the history of `ops[i]`. */
  indices: number[];
}

/**
 * Splits a history by key and simplifies unknown outcomes without changing
 * the verdict:
 * - reads whose answer is unknown are left out (no effect, any answer fits);
 * - a write of unknown outcome whose value only it writes to that key, and
 *   that some completed operation saw (a read of it, a successful cas
 *   expecting it), did take effect, before every such observer: its `return`
 *   becomes the earliest return among them, so the search stops carrying it
 *   as pending to the end of the history;
 * - with `prune`, a write of unknown outcome that nothing could have seen
 *   (no read of its value, no cas expecting it, and no failed or unknown cas
 *   on the key) is left out: in any linearization applying it, the
 *   operations up to the next write would see its value, and none can, so
 *   dropping it (it "never happened") leaves a valid linearization;
 * - a value no operation looks at (no read returned it, no cas expected it)
 *   is replaced by one shared stand-in, since no operation can tell such
 *   values apart.
 */
export function prepareKvHistory(
  history: readonly KvOperation[],
  prune = true,
): KvPart[] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i]!;
    if (op.input.op === "get" && op.output === undefined) continue;
    let part = byKey.get(op.input.key);
    if (part === undefined) byKey.set(op.input.key, part = []);
    part.push(i);
  }
  const parts: KvPart[] = [];
  for (const [key, part] of byKey) {
    const writers = new Map<string, number>();
    // Earliest return of a completed operation that saw each value.
    const firstSeen = new Map<string | null, number>();
    let riskyCas = false;
    const see = (v: string | null, at: number) => {
      firstSeen.set(v, Math.min(at, firstSeen.get(v) ?? Infinity));
    };
    for (const i of part) {
      const { input, output, return: ret } = history[i]!;
      const v = writtenValue(input);
      if (typeof v === "string") writers.set(v, (writers.get(v) ?? 0) + 1);
      if (input.op === "get" && output !== undefined && "value" in output) {
        see(output.value, ret!);
      } else if (input.op === "cas") {
        if (output !== undefined && "ok" in output && output.ok) {
          see(input.expected, ret!);
        } else riskyCas = true;
        // An unknown or failed cas still "looks at" its expected value.
        if (!firstSeen.has(input.expected)) {
          firstSeen.set(input.expected, Infinity);
        }
      }
    }
    const ops: KvOperation[] = [];
    const indices: number[] = [];
    const canonical = !firstSeen.has(UNREAD);
    for (const i of part) {
      let op = history[i]!;
      const written = writtenValue(op.input);
      if (canonical && typeof written === "string" && !firstSeen.has(written)) {
        const input = { ...op.input, value: UNREAD } as KvInput;
        originalInput.set(input, op.input);
        op = { ...op, input };
      }
      if (op.return === undefined && op.input.op !== "get") {
        const v = writtenValue(op.input)!;
        const seenAt = firstSeen.get(v);
        if (seenAt === undefined) {
          if (prune && !riskyCas) continue;
        } else if (
          typeof v === "string" && writers.get(v) === 1 && seenAt >= op.call &&
          seenAt < Infinity
        ) {
          op = { ...op, return: seenAt };
        }
      }
      ops.push(op);
      indices.push(i);
    }
    parts.push({ key, ops, indices });
  }
  return parts;
}

/** Groups a history by key, leaving out reads whose answer is unknown. */
function partitionByKey(history: readonly KvOperation[]): number[][] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i]!;
    if (op.input.op === "get" && op.output === undefined) continue;
    let part = byKey.get(op.input.key);
    if (part === undefined) byKey.set(op.input.key, part = []);
    part.push(i);
  }
  return [...byKey.values()];
}

/**
 * The sequential key-value store as a {@link Model}, partitioned by key (a
 * state is the value of one key). Use it with `checkOperations` to also get
 * witness linearizations.
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case "get":
        return [
          output === undefined || ("value" in output && output.value === state),
          state,
        ];
      case "put":
        return [
          output === undefined || ("ok" in output && output.ok),
          input.value,
        ];
      case "delete":
        return [output === undefined || ("ok" in output && output.ok), null];
      case "cas": {
        const swapped = state === input.expected;
        return [
          output === undefined || ("ok" in output && output.ok === swapped),
          swapped ? input.value : state,
        ];
      }
    }
  },
  equal: (a, b) => a === b,
  isBlind: (input) => input.op === "put" || input.op === "delete",
  hashInput: (input) =>
    input.op === "cas"
      ? `cas\u0001${input.key}\u0001${
        quote(input.expected)
      }\u0001${input.value}`
      : `${input.op}\u0001${input.key}\u0001${
        input.op === "put" ? input.value : ""
      }`,
  hash: (s) => s === null ? "" : "=" + s,
  partition: (history) => partitionByKey(history as readonly KvOperation[]),
  describePartition: (history, part) =>
    `key ${JSON.stringify(history[part[0]!]!.input.key)}`,
  describeOperation: describeKvOperation,
  describeState: quote,
};

/**
 * Finds, without searching, a known answer that no ordering can explain
 * because the value it shows was never written to that key.
 */
function findValueNeverWritten(
  history: readonly KvOperation[],
): CheckResult | undefined {
  const written = new Map<string, Set<string>>();
  for (const op of history) {
    const v = writtenValue(op.input);
    if (typeof v !== "string") continue;
    let set = written.get(op.input.key);
    if (set === undefined) written.set(op.input.key, set = new Set());
    set.add(v);
  }
  for (const op of history) {
    const { input, output } = op;
    let seen: string | null = null;
    if (input.op === "get" && output !== undefined && "value" in output) {
      seen = output.value;
    } else if (
      input.op === "cas" && output !== undefined && "ok" in output && output.ok
    ) seen = input.expected;
    if (seen === null || written.get(input.key)?.has(seen)) continue;
    return {
      ok: false,
      result: "illegal",
      key: input.key,
      info:
        `key ${JSON.stringify(input.key)}: client ${op.clientId} ${
          describeKvOperation(input, output)
        } [${op.call}, ${op.return}] ` +
        `saw the value ${
          quote(seen)
        }, which no operation ever wrote to this key`,
    };
  }
  return undefined;
}

/**
 * Checks that a key-value history is linearizable: that some total order of
 * its operations, consistent with their real-time order (an operation that
 * returned before another was called comes first), explains every answer
 * by a single-copy store. Keys are independent and checked one by one
 * (smallest first); a read of a value never written to its key is reported
 * without searching; unknown outcomes are simplified first
 * ({@link prepareKvHistory}).
 *
 * @example
 * ```ts
 * const verdict = checkKvHistory([
 *   { clientId: 1, input: { op: "put", key: "x", value: "1" }, call: 0, return: 10, output: { ok: true } },
 *   { clientId: 2, input: { op: "get", key: "x" }, call: 5, return: 8, output: { value: null } },
 *   { clientId: 2, input: { op: "get", key: "x" }, call: 12, return: 13, output: { value: null } },
 * ]);
 * // { ok: false, result: "illegal", key: "x", info: "key \"x\": no linearization ..." }
 * ```
 *
 * @param history operations in any order; times in one shared unit.
 * @param options `timeoutMs`: time budget in ms for the whole check
 * (default 30,000).
 * @returns `ok`; `illegal` with the key and the operations involved; or
 * `unknown` when the budget ran out first.
 * @throws {SimError} with code `"bad_argument"` when an operation is
 * malformed (bad shape, non-finite time, return before call, an answer of
 * the wrong kind, an output without a return).
 */
export function checkKvHistory(
  history: readonly KvOperation[],
  options: KvCheckOptions = {},
): CheckResult {
  const parsed = z.array(KvOperationSchema).safeParse(history);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SimError(
      "bad_argument",
      `invalid history: operation ${issue.path.join(".")}: ${issue.message}`,
    );
  }
  const early = findValueNeverWritten(history);
  if (early !== undefined) return early;
  const deadline = performance.now() +
    (options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  const prune = options.pruneUnobservedWrites ?? true;
  let timedOut: string | undefined;
  // Smaller keys first: when one key is hard, the easy ones still get a
  // verdict (and an illegal one is reported) within the budget.
  const parts = prepareKvHistory(history, prune).sort((a, b) =>
    a.ops.length - b.ops.length
  );
  for (const part of parts) {
    const r = checkPartition(kvModel, part.ops, deadline);
    if (r.result === "illegal") {
      return {
        ok: false,
        result: "illegal",
        key: part.key,
        info: `key ${JSON.stringify(part.key)}: ${r.info}`,
      };
    }
    // Keep going after a timeout: a later key may still be shown illegal at
    // once (the others give up at their first look at the clock).
    if (r.result === "unknown") timedOut ??= part.key;
  }
  if (timedOut !== undefined) {
    return {
      ok: false,
      result: "unknown",
      key: timedOut,
      info: `key ${JSON.stringify(timedOut)}: the time budget of ${
        options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS
      } ms ran out`,
    };
  }
  return { ok: true, result: "ok" };
}
