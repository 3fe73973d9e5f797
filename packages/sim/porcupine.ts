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
 * Operations of unknown outcome (no return, no output: "free") stay pending
 * to the end of the history, and in Porcupine each one roughly doubles the
 * search. Here they follow extra rules that Porcupine lacks, each exact (it
 * never changes a verdict; the tests compare against exhaustive search):
 * - the search succeeds once every other operation is linearized;
 * - a failed (set, state) also rules out the same state reached with more
 *   free operations applied (dominance), and a free operation that would not
 *   change the state is never applied;
 * - free operations with equal inputs (`Model.hashInput`) are applied in call
 *   order only;
 * - a free operation is applied only just before a known one the state
 *   refuses (or whose output is unknown), and a blind one (`Model.isBlind`)
 *   only if right after it such an operation is accepted or another free
 *   operation changes the state.
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
   * A string that is equal only for inputs with the same effect on every
   * state. Optional: lets the search treat unknown-outcome operations with
   * equal inputs as interchangeable, which keeps many timed-out writes cheap.
   */
  hashInput?(input: In): string;
  /**
   * True when the state after `input` never depends on the state before (a
   * blind write). Optional: lets the search skip timed-out blind writes
   * where they cannot matter.
   */
  isBlind?(input: In): boolean;
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
  /**
   * When ok: indices into the part's operations, in linearization order;
   * unknown-outcome operations the witness does not need come last (taking
   * effect after everything is the same as never).
   */
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
  /** Fully explored without success (no longer on the search stack). */
  done: boolean;
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

  // "Free" operations have an unknown outcome: no return and no output. One
  // may take effect at any point after its call, or never, so skipping it is
  // the same as applying it after everything else. Consequences:
  // - the search succeeds as soon as every other operation is linearized;
  // - a visited (set, state) that failed dominates any (set + some free
  //   operations, same state): a continuation from the larger set would also
  //   work from the smaller one, with those operations skipped;
  // - free operations with the same input (same `hashInput`) are
  //   interchangeable: if a linearization applies one while an earlier-called
  //   twin is still pending, swapping their places gives another. So each
  //   class is applied in call order only, and its applied members are
  //   always a prefix of it.
  // Together these keep the cost of timed-out writes local instead of
  // doubling the search for each.
  const free = new Uint8Array(n);
  const knownMask = new Uint32Array((n + 31) >>> 5);
  let knownLeft = 0;
  // For free operations: class id, and rank within the class by call time.
  const freeClass = new Int32Array(n).fill(-1);
  const freeRank = new Int32Array(n);
  const classKeys = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    if (op.return === undefined && op.output === undefined) {
      free[i] = 1;
      const k = model.hashInput ? model.hashInput(op.input) : `#${i}`;
      let members = classKeys.get(k);
      if (members === undefined) classKeys.set(k, members = []);
      members.push(i);
    } else {
      knownLeft++;
      knownMask[i >>> 5] = knownMask[i >>> 5]! | (1 << (i & 31));
    }
  }
  let classCount = 0;
  for (const members of classKeys.values()) {
    members.sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
    members.forEach((i, rank) => {
      freeClass[i] = classCount;
      freeRank[i] = rank;
    });
    classCount++;
  }
  const classApplied = new Int32Array(classCount);
  const isBlind = new Uint8Array(n);
  if (model.isBlind) {
    for (let i = 0; i < n; i++) {
      if (free[i] === 1 && model.isBlind(ops[i]!.input)) isBlind[i] = 1;
    }
  }

  const words = knownMask.length;
  const bits = new Uint32Array(words);
  const zobrist = zobristKeys(n);
  // Hash of the linearized known operations only, so that dominated sets
  // share a bucket with the sets that dominate them.
  let zob = 0;
  // Keyed by the xor of that hash and the state's; entries compare exactly,
  // so collisions only cost time.
  const cache = new Map<number, CacheEntry<State>[]>();
  const stackOp = new Int32Array(n);
  const stackState: State[] = new Array(n);
  const stackEntry: (CacheEntry<State> | undefined)[] = new Array(n);
  const stackRefused: (number[] | null)[] = new Array(n);
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
  // Free operations are applied only where they can help (any linearization
  // can be rearranged so they do): just before a known operation that the
  // current state refuses, or one whose output is unknown. So a node needs
  // those known candidates (null: not computed yet).
  let refused: number[] | null = null;
  const refusedKnownCandidates = (): number[] => {
    const out: number[] = [];
    for (let e = next[head]!; e !== -1 && e < n; e = next[e]!) {
      if (free[e] === 1) continue;
      const op = ops[e]!;
      // An operation with an unknown output is never refused, but what it
      // leaves may depend on the state, so it may need free operations too.
      if (
        op.output === undefined || !model.step(state, op.input, op.output)[0]
      ) out.push(e);
    }
    return out;
  };
  // A blind free operation (its result ignores the state) can only start a
  // chain of free operations that ends in a refused known candidate, so it
  // is useful only if, right after it, a refused candidate is accepted or a
  // non-blind free candidate changes the state.
  const blindHelps = (u: number, after: State): boolean => {
    for (const k of refused!) {
      const op = ops[k]!;
      const [ok, result] = model.step(after, op.input, op.output);
      if (!ok) continue;
      if (op.output !== undefined) return true;
      if (!model.equal(result, model.step(state, op.input, undefined)[1])) {
        return true;
      }
    }
    for (let e = next[head]!; e !== -1 && e < n; e = next[e]!) {
      if (free[e] === 0 || e === u || isBlind[e] === 1) continue;
      if (freeRank[e] !== classApplied[freeClass[e]!]) continue;
      const [ok, further] = model.step(after, ops[e]!.input, undefined);
      if (ok && !model.equal(further, after)) return true;
    }
    return false;
  };

  /** True when (bits, after) was seen, or is dominated by a failed entry. */
  const visited = (bucket: CacheEntry<State>[], after: State): boolean => {
    for (const c of bucket) {
      let covered = true;
      for (let w = 0; w < words; w++) {
        const x = c.bits[w]!;
        const y = bits[w]!;
        if (x === y) continue;
        // Not the same set: c dominates only if it failed (it is off the
        // stack) with the same known operations and a subset of the free ones.
        if (((x ^ y) & knownMask[w]!) !== 0 || (x & ~y) !== 0 || !c.done) {
          covered = false;
          break;
        }
      }
      if (covered && model.equal(c.state, after)) return true;
    }
    return false;
  };

  while (knownLeft > 0) {
    if (steps++ % CLOCK_EVERY === 0 && performance.now() >= deadline) {
      return { result: "unknown" };
    }
    if (entry < n) {
      const isFree = free[entry] === 1;
      if (isFree) {
        refused ??= refusedKnownCandidates();
        if (
          refused.length === 0 ||
          freeRank[entry] !== classApplied[freeClass[entry]!]
        ) {
          // Not needed here, or an earlier-called twin is still pending.
          entry = next[entry]!;
          continue;
        }
      }
      const op = ops[entry]!;
      const [legal, after] = model.step(state, op.input, op.output);
      // A free operation that changes nothing here is better skipped than
      // applied: applying it only uses it up (the dominance rule again).
      if (
        legal &&
        !(isFree &&
          (model.equal(after, state) ||
            (isBlind[entry] === 1 && !blindHelps(entry, after))))
      ) {
        const w = entry >>> 5;
        const bit = 1 << (entry & 31);
        bits[w] = bits[w]! | bit;
        const z = isFree ? zob : zob ^ zobrist[entry]!;
        const key = z ^ stringHash(model.hash(after));
        let bucket = cache.get(key);
        if (bucket === undefined) {
          bucket = [];
          cache.set(key, bucket);
        }
        if (!visited(bucket, after)) {
          const fresh: CacheEntry<State> = {
            bits: bits.slice(),
            state: after,
            done: false,
          };
          bucket.push(fresh);
          stackOp[depth] = entry;
          stackState[depth] = state;
          stackEntry[depth] = fresh;
          stackRefused[depth] = refused;
          depth++;
          if (isFree) {
            const c = freeClass[entry]!;
            classApplied[c] = classApplied[c]! + 1;
          } else knownLeft--;
          state = after;
          zob = z;
          lift(entry);
          if (depth > bestDepth) {
            bestDepth = depth;
            bestState = state;
            bestUnsaved = true;
          }
          entry = next[head]!;
          refused = null;
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
      refused = stackRefused[depth]!;
      stackRefused[depth] = null;
      if (free[undone] === 1) {
        const c = freeClass[undone]!;
        classApplied[c] = classApplied[c]! - 1;
      } else {
        knownLeft++;
        zob ^= zobrist[undone]!;
      }
      state = stackState[depth]!;
      stackState[depth] = undefined as State;
      stackEntry[depth]!.done = true;
      stackEntry[depth] = undefined;
      bits[undone >>> 5] = bits[undone >>> 5]! & ~(1 << (undone & 31));
      unlift(undone);
      entry = next[undone]!;
    }
  }
  // Free operations left over take effect last (or never: the same thing).
  const order = Array.from(stackOp.subarray(0, depth));
  for (let i = 0; i < n; i++) {
    if (free[i] === 1 && (bits[i >>> 5]! & (1 << (i & 31))) === 0) {
      order.push(i);
    }
  }
  return { result: "ok", order };
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
