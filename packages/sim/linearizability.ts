/**
 * Linearizability of key-value histories (get/put/delete/cas), checked key by
 * key with the Porcupine search of ./porcupine.ts.
 *
 * @module
 */
import { z } from "zod";
import {
  checkOperations,
  DEFAULT_CHECK_TIMEOUT_MS,
  type Model,
} from "./porcupine.ts";

/** Schema of what a client asked the store: one key per operation. */
export const KvInputSchema = z.discriminatedUnion("op", [
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

/**
 * What a client asked the store. `cas` swaps in `value` when the current
 * value equals `expected` (`null` meaning absent).
 */
export type KvInput = z.infer<typeof KvInputSchema>;

/** Schema of what the store answered. */
export const KvOutputSchema = z.union([
  z.object({ value: z.string().nullable() }),
  z.object({ ok: z.boolean() }),
]);

/**
 * What the store answered: `get` gives `{ value }` (`null` when absent);
 * `put` and `delete` give `{ ok: true }`; `cas` gives `{ ok }`, whether it
 * swapped.
 */
export type KvOutput = z.infer<typeof KvOutputSchema>;

/** Schema of one operation of a history; see {@link KvOperation}. */
export const KvOperationSchema = z.object({
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
export type KvOperation = z.infer<typeof KvOperationSchema>;

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

/** Thrown by {@link checkKvHistory} for a malformed history; `code` is machine-readable. */
export class HistoryError extends Error {
  /** Always `"invalid_history"`. */
  readonly code = "invalid_history";
  /** @param message which operation is malformed and how. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HistoryError";
  }
}

/** The state of one key: its value, `null` when absent. */
export type KvState = string | null;

function quote(v: string | null): string {
  return v === null ? "null" : JSON.stringify(v);
}

function describeKvOperation(
  input: KvInput,
  output: KvOutput | undefined,
): string {
  let answer = "?";
  if (output !== undefined) {
    answer = "value" in output ? quote(output.value) : String(output.ok);
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

/**
 * Groups a history by key, leaving out operations that cannot matter:
 * reads whose answer is unknown (no effect, any answer fits), and, when
 * `prune`, writes of unknown outcome whose value nothing could have observed.
 * Such a write may be assumed never to have happened: if a linearization
 * applies it, the operations after it until the next write would see its
 * value, and the conditions below leave no operation able to see it (no
 * known read of that value, no cas expecting it, no cas that failed or whose
 * answer is unknown), so dropping it leaves a valid linearization.
 */
function partitionByKey(
  history: readonly KvOperation[],
  prune: boolean,
): number[][] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i]!;
    if (op.input.op === "get" && op.output === undefined) continue;
    let part = byKey.get(op.input.key);
    if (part === undefined) byKey.set(op.input.key, part = []);
    part.push(i);
  }
  const parts = [...byKey.values()];
  if (!prune) return parts;
  return parts.map((part) => {
    const observed = new Set<string | null>();
    let riskyCas = false;
    for (const i of part) {
      const { input, output } = history[i]!;
      if (input.op === "get" && output !== undefined && "value" in output) {
        observed.add(output.value);
      } else if (input.op === "cas") {
        observed.add(input.expected);
        if (output === undefined || !("ok" in output) || !output.ok) {
          riskyCas = true;
        }
      }
    }
    if (riskyCas) return part;
    return part.filter((i) => {
      const op = history[i]!;
      if (op.return !== undefined || op.input.op === "get") return true;
      return observed.has(writtenValue(op.input)!);
    });
  });
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
  hash: (s) => s === null ? "" : "=" + s,
  partition: (history) =>
    partitionByKey(history as readonly KvOperation[], true),
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
 * by a single-copy store. Keys are independent and checked one by one.
 *
 * @param history operations in any order; times in one shared unit.
 * @param options `timeoutMs`: time budget in ms (default 30,000).
 * @returns `ok`; `illegal` with the key and the operations involved; or
 * `unknown` when the budget ran out.
 * @throws {HistoryError} when an operation is malformed (bad shape, return
 * before call, an answer of the wrong kind, an output without a return).
 */
export function checkKvHistory(
  history: readonly KvOperation[],
  options: KvCheckOptions = {},
): CheckResult {
  const parsed = z.array(KvOperationSchema).safeParse(history);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HistoryError(
      `invalid history: operation ${issue.path.join(".")}: ${issue.message}`,
      { cause: parsed.error },
    );
  }
  const early = findValueNeverWritten(history);
  if (early !== undefined) return early;
  const parts = partitionByKey(history, options.pruneUnobservedWrites ?? true);
  const model: Model<KvState, KvInput, KvOutput> = {
    ...kvModel,
    partition: () => parts,
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const r = checkOperations(model, history, { timeoutMs });
  if (r.ok) return { ok: true, result: "ok" };
  const key = r.partition === undefined
    ? undefined
    : history[parts[r.partition]![0]!]!.input.key;
  return { ok: false, result: r.result, key, info: r.info };
}
