/**
 * A generic linearizability checker: the Wing & Gong search as refined by
 * Lowe and implemented by Porcupine (github.com/anishathalye/porcupine).
 *
 * A history is a list of operations, each with the time its call was issued
 * and (when known) the time its response arrived. The search walks a doubly
 * linked list of call/return events ordered by time; at each step it tries to
 * linearize one of the calls that precede the first pending return, and
 * backtracks when it meets a return whose operation has not been linearized
 * yet. Visited (linearized set, model state) pairs are memoised so each is
 * expanded once. Models that split into independent parts (a key-value store
 * splits by key: P-compositionality) are checked part by part.
 *
 * @module
 */

/**
 * One operation of a history. Times are in any unit as long as it is the
 * same for every operation (simulated ms, `performance.now()`...).
 */
export interface Operation<In, Out> {
  /** The client that issued it (informational: used in failure reports). */
  clientId: number;
  /** What the client asked for. */
  input: In;
  /** When the call was issued. */
  call: number;
  /**
   * When the response arrived; `undefined` when it never did (timeout,
   * crash): the operation may then take effect at any time after its call,
   * or never.
   */
  return?: number;
  /** What the client received; `undefined` when unknown (any output fits). */
  output?: Out;
}

/**
 * A sequential specification: the object the history should behave like.
 * `step` must be pure (never mutate `state`).
 */
export interface Model<State, In, Out> {
  /** The state before any operation. */
  init(): State;
  /**
   * Applies `input` to `state`. Returns whether `output` is what the
   * sequential object would answer (always true when `output` is
   * `undefined`, i.e. unknown) and the state afterwards.
   */
  step(state: State, input: In, output: Out | undefined): [boolean, State];
  /** True when two states are the same. */
  equal(a: State, b: State): boolean;
  /** A string equal for equal states (collisions only cost time). */
  hash(state: State): string;
  /**
   * Splits a history into independent parts, as indices into `history`; an
   * operation may be left out of every part when the model knows it cannot
   * matter (for instance a read whose answer never arrived). Defaults to one
   * part holding everything.
   */
  partition?(history: readonly Operation<In, Out>[]): number[][];
  /** Names a part in failure reports (defaults to its index). */
  describePartition?(
    history: readonly Operation<In, Out>[],
    part: readonly number[],
  ): string;
  /** Renders an operation for failure reports. */
  describeOperation?(input: In, output: Out | undefined): string;
  /** Renders a state for failure reports. */
  describeState?(state: State): string;
}

/** The verdict on a history. */
export type CheckOutcome = "ok" | "illegal" | "unknown";

/** Options of {@link checkOperations} and {@link checkPartition}. */
export interface CheckOptions {
  /**
   * Time budget in ms for the whole check (default 30,000; `Infinity` for
   * none). When it runs out the verdict is `"unknown"` unless a part was
   * already found illegal.
   */
  timeoutMs?: number;
}

/** What {@link checkOperations} found. */
export interface OperationsCheckResult {
  /** True only when every part is linearizable. */
  ok: boolean;
  /** `"unknown"` only when the time budget ran out. */
  result: CheckOutcome;
  /** Index (into the model's partition) of the part that failed or timed out. */
  partition?: number;
  /** Why the check failed, in words. */
  info?: string;
  /**
   * When ok: one linearization per part, as indices into the history, in
   * linearization order (operations the model left out are absent).
   */
  linearizations?: number[][];
}

/** What {@link checkPartition} found for one part. */
export interface PartitionCheckResult {
  /** The verdict on this part. */
  result: CheckOutcome;
  /** When ok: indices into the part's operations, in linearization order. */
  order?: number[];
  /** When illegal: why, in words. */
  info?: string;
}

/** Default time budget of a check, in ms. */
export const DEFAULT_CHECK_TIMEOUT_MS = 30_000;

/** How many search steps run between two looks at the clock. */
const CLOCK_EVERY = 1024;

interface CacheEntry<State> {
  bits: Uint32Array;
  state: State;
}

/**
 * 32-bit Zobrist keys for the operations of a part, so the hash of the
 * linearized set is updated with one xor per step. Deterministic (splitmix32)
 * so runs are reproducible.
 */
function zobristKeys(n: number): Int32Array {
  const keys = new Int32Array(n);
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < n; i++) {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    keys[i] = z ^ (z >>> 16);
  }
  return keys;
}

/** FNV-1a over UTF-16 code units. */
function stringHash(s: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return h;
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Renders a time for reports: unknown returns print as ∞. */
function formatTime(t: number): string {
  return Number.isFinite(t) ? String(t) : "∞";
}

/**
 * Checks one part of a history (no partitioning) against `model`.
 *
 * @param ops the operations of the part.
 * @param deadline absolute `performance.now()` time at which to give up.
 * @returns the verdict, a witness order when ok, an explanation when illegal.
 */
export function checkPartition<State, In, Out>(
  model: Model<State, In, Out>,
  ops: readonly Operation<In, Out>[],
  deadline: number = performance.now() + DEFAULT_CHECK_TIMEOUT_MS,
): PartitionCheckResult {
  const n = ops.length;
  if (n === 0) return { result: "ok", order: [] };

  // Event ids: e < n is the call of operation e, e >= n its return.
  const total = 2 * n;
  const head = total;
  const time = new Float64Array(total);
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    time[i] = op.call;
    // An unknown return may happen after everything: it stays pending to the end.
    time[n + i] = op.return ?? Infinity;
  }
  const sorted = Array.from({ length: total }, (_, e) => e);
  // At equal times calls come first, so touching intervals count as
  // concurrent (the permissive reading, as Porcupine does).
  sorted.sort((a, b) => {
    const d = time[a]! - time[b]!;
    if (d !== 0 && !Number.isNaN(d)) return d;
    const ka = a < n ? 0 : 1;
    const kb = b < n ? 0 : 1;
    return ka !== kb ? ka - kb : a - b;
  });
  const next = new Int32Array(total + 1);
  const prev = new Int32Array(total + 1);
  let last = head;
  for (const e of sorted) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = -1;
  prev[head] = -1;

  // Dancing links: lift unlinks a call and its return; unlift undoes the most
  // recent lift (they are always undone in stack order).
  const lift = (e: number): void => {
    const pe = prev[e]!;
    const ne = next[e]!;
    next[pe] = ne;
    prev[ne] = pe;
    const m = e + n;
    const pm = prev[m]!;
    const nm = next[m]!;
    next[pm] = nm;
    if (nm !== -1) prev[nm] = pm;
  };
  const unlift = (e: number): void => {
    const m = e + n;
    const pm = prev[m]!;
    const nm = next[m]!;
    next[pm] = m;
    if (nm !== -1) prev[nm] = m;
    const pe = prev[e]!;
    const ne = next[e]!;
    next[pe] = e;
    prev[ne] = e;
  };

  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const zobrist = zobristKeys(n);
  let zob = 0;
  // Keyed by the xor of the set's and the state's hashes; buckets compare
  // exactly, so collisions only cost time.
  const cache = new Map<number, CacheEntry<State>[]>();
  const stackOp = new Int32Array(n);
  const stackState: State[] = new Array(n);
  let depth = 0;
  let state = model.init();
  // The deepest point reached, for failure reports. The prefix is copied
  // lazily, when the search first backs off from a new maximum depth, to keep
  // long legal histories linear.
  let bestDepth = 0;
  let bestOrder = new Int32Array(0);
  let bestState = state;
  let bestUnsaved = false;
  let steps = 0;
  let entry = next[head]!;

  while (next[head] !== -1) {
    if (steps++ % CLOCK_EVERY === 0 && performance.now() >= deadline) {
      return { result: "unknown" };
    }
    if (entry < n) {
      const op = ops[entry]!;
      const [legal, after] = model.step(state, op.input, op.output);
      if (legal) {
        const w = entry >>> 5;
        const bit = 1 << (entry & 31);
        bits[w] = bits[w]! | bit;
        const z = zob ^ zobrist[entry]!;
        const key = z ^ stringHash(model.hash(after));
        let bucket = cache.get(key);
        let seen = false;
        if (bucket === undefined) {
          bucket = [];
          cache.set(key, bucket);
        } else {
          for (const c of bucket) {
            if (sameBits(c.bits, bits) && model.equal(c.state, after)) {
              seen = true;
              break;
            }
          }
        }
        if (!seen) {
          bucket.push({ bits: bits.slice(), state: after });
          stackOp[depth] = entry;
          stackState[depth] = state;
          depth++;
          state = after;
          zob = z;
          lift(entry);
          if (depth > bestDepth) {
            bestDepth = depth;
            bestState = state;
            bestUnsaved = true;
          }
          entry = next[head]!;
          continue;
        }
        bits[w] = bits[w]! & ~bit;
      }
      entry = next[entry]!;
    } else {
      // A return whose call is still in the list: that operation had to take
      // effect before now, and no choice made so far allows it. Backtrack.
      if (bestUnsaved) {
        bestOrder = stackOp.slice(0, depth);
        bestUnsaved = false;
      }
      if (depth === 0) {
        return {
          result: "illegal",
          info: describeFailure(model, ops, bestOrder, bestState),
        };
      }
      depth--;
      const undone = stackOp[depth]!;
      state = stackState[depth]!;
      stackState[depth] = undefined as State;
      zob ^= zobrist[undone]!;
      bits[undone >>> 5] = bits[undone >>> 5]! & ~(1 << (undone & 31));
      unlift(undone);
      entry = next[undone]!;
    }
  }
  return { result: "ok", order: Array.from(stackOp.subarray(0, depth)) };
}

/** Renders operation `i` of `ops` for a failure report. */
function describeOp<State, In, Out>(
  model: Model<State, In, Out>,
  ops: readonly Operation<In, Out>[],
  i: number,
): string {
  const op = ops[i]!;
  const what = model.describeOperation
    ? model.describeOperation(op.input, op.output)
    : `${JSON.stringify(op.input)} -> ${
      op.output === undefined ? "?" : JSON.stringify(op.output)
    }`;
  return `client ${op.clientId} ${what} [${formatTime(op.call)}, ${
    formatTime(op.return ?? Infinity)
  }]`;
}

/**
 * Explains an illegal part from the deepest point the search reached: the
 * end of the longest linearizable prefix, the state it leaves, and the
 * operations that were candidates to come next (calls preceding the first
 * pending return), none of which leads to a full linearization.
 */
function describeFailure<State, In, Out>(
  model: Model<State, In, Out>,
  ops: readonly Operation<In, Out>[],
  prefix: Int32Array,
  state: State,
): string {
  const done = new Set(prefix);
  let firstReturn = Infinity;
  for (let i = 0; i < ops.length; i++) {
    if (!done.has(i)) {
      firstReturn = Math.min(firstReturn, ops[i]!.return ?? Infinity);
    }
  }
  const candidates: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    if (!done.has(i) && ops[i]!.call <= firstReturn) candidates.push(i);
  }
  const stateText = model.describeState
    ? model.describeState(state)
    : JSON.stringify(state);
  const shownPrefix = Array.from(
    prefix.subarray(Math.max(0, prefix.length - 3)),
  );
  const lines = [
    `no linearization of these ${ops.length} operations exists; the longest linearizable prefix has ${prefix.length}` +
    (prefix.length === 0
      ? ""
      : `, ending with: ${
        shownPrefix.map((i) => describeOp(model, ops, i)).join("; ")
      }`) +
    `; it leaves the state ${stateText}`,
    "none of these can come next:",
  ];
  const LIMIT = 8;
  for (const i of candidates.slice(0, LIMIT)) {
    const op = ops[i]!;
    const [legal] = model.step(state, op.input, op.output);
    lines.push(
      `  ${describeOp(model, ops, i)}${
        legal
          ? " (fits here, but every continuation fails)"
          : " (does not fit this state)"
      }`,
    );
  }
  if (candidates.length > LIMIT) {
    lines.push(`  ... and ${candidates.length - LIMIT} more`);
  }
  return lines.join("\n");
}

/**
 * Checks that `history` is linearizable with respect to `model`, part by
 * part when the model partitions histories.
 *
 * @returns `ok` with one witness linearization per part; `illegal` with the
 * failing part and an explanation; `unknown` when `options.timeoutMs` (ms,
 * default 30,000) ran out first. Never throws for a well-formed history.
 */
export function checkOperations<State, In, Out>(
  model: Model<State, In, Out>,
  history: readonly Operation<In, Out>[],
  options: CheckOptions = {},
): OperationsCheckResult {
  const deadline = performance.now() +
    (options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  const parts = model.partition
    ? model.partition(history)
    : [history.map((_, i) => i)];
  const linearizations: number[][] = [];
  let timedOut: number | undefined;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    const ops = part.map((i) => history[i]!);
    const r = checkPartition(model, ops, deadline);
    if (r.result === "illegal") {
      const name = model.describePartition
        ? model.describePartition(history, part)
        : `part ${p}`;
      return {
        ok: false,
        result: "illegal",
        partition: p,
        info: `${name}: ${r.info}`,
      };
    }
    if (r.result === "unknown") {
      // Keep going: a later part may still be shown illegal within the budget
      // (each gives up at its first look at the clock otherwise).
      timedOut ??= p;
    } else {
      linearizations.push(r.order!.map((i) => part[i]!));
    }
  }
  if (timedOut !== undefined) {
    const name = model.describePartition
      ? model.describePartition(history, parts[timedOut]!)
      : `part ${timedOut}`;
    return {
      ok: false,
      result: "unknown",
      partition: timedOut,
      info: `${name}: the time budget of ${
        options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS
      } ms ran out`,
    };
  }
  return { ok: true, result: "ok", linearizations };
}
