/**
 * A failing `sim:replicated` seed, step by step (pure): the run's
 * messages and ticks (as `observe` saw them), its faults and leader
 * changes (its trace), its client operations (its history) merged into one
 * timeline in virtual time, each step with the cluster as it stands after
 * it, and the steps where the check failed marked: the operations the
 * linearizability checker could not place, or the invariant that broke.
 */
import type { KvOperation } from "@strata/sim";
import type { SimObservation } from "@strata/sim/replicated";

/** A message sent or a tick, as the simulation's `observe` reports it. */
export type Observation = SimObservation;

/** What a step is about. */
export type ReplayStepKind =
  | "message"
  | "tick"
  | "crash"
  | "restart"
  | "partition"
  | "heal"
  | "pause"
  | "resume"
  | "clock"
  | "leader"
  | "fsync"
  | "op"
  | "fail"
  | "note";

/** One node after a step. */
export interface ReplayNode {
  id: number;
  up: boolean;
  paused: boolean;
  /** The highest term it has sent a message in (0: none yet). */
  term: number;
  /** It became leader (the trace says so) and has not crashed or seen a newer leader since. */
  leads: boolean;
}

/** One step of the replay. */
export interface ReplayStep {
  index: number;
  /** Virtual time, ms since the start of the run. */
  atMs: number;
  kind: ReplayStepKind;
  text: string;
  /** The nodes it concerns. */
  nodes: number[];
  /** A step where the check found the violation. */
  violation?: true;
  /** The cluster right after this step. */
  cluster: ReplayNode[];
}

/** What one seed did, as the page steps through it. */
export interface ReplicatedReplay {
  machine: string;
  seed: number;
  bug: string | null;
  /** The command that replays it in a terminal. */
  command: string;
  ok: boolean;
  /** The failed check's kind and words (null when every check passed). */
  code: string | null;
  failure: string | null;
  nodes: number[];
  steps: ReplayStep[];
  /** Indexes of the steps marked as the violation. */
  violationSteps: number[];
  /** What was left out to stay under the step limit (empty: nothing). */
  omitted: string[];
}

/** What {@link buildReplay} reads: a finished run and what `observe` saw. */
export interface ReplayInput {
  machine: string;
  seed: number;
  bug: string | null;
  command: string;
  ok: boolean;
  code?: string;
  failure?: string;
  nodes: number;
  trace: readonly string[];
  history: readonly KvOperation[];
  observed: readonly Observation[];
}

/** Steps kept at most (a run has about 2,000). */
export const MAX_REPLAY_STEPS = 6000;

interface Raw {
  atMs: number;
  /** Ties at one time: trace first, then messages and ticks, then operations. */
  rank: number;
  seq: number;
  kind: ReplayStepKind;
  text: string;
  nodes: number[];
  violation?: true;
  /** Applied to the cluster state when the step is reached. */
  effect?: (s: Map<number, ReplayNode>) => void;
}

const TRACE_LINE = /^(\d+(?:\.\d+)?) (.*)$/s;

/** The trace line's step (its time and what it does to the cluster). */
function traceStep(line: string, ids: number[], seq: number): Raw | null {
  const m = line.match(TRACE_LINE);
  if (!m) return null;
  const atMs = Number(m[1]);
  const text = m[2]!;
  const raw = (
    kind: ReplayStepKind,
    nodes: number[],
    effect?: Raw["effect"],
  ): Raw => ({ atMs, rank: 0, seq, kind, text, nodes, effect });
  let g: RegExpMatchArray | null;
  if ((g = text.match(/^node (\d+) crashes$/))) {
    const id = Number(g[1]);
    return raw("crash", [id], (s) => {
      const n = s.get(id);
      if (n) Object.assign(n, { up: false, paused: false, leads: false });
    });
  }
  if ((g = text.match(/^node (\d+) restarts$/))) {
    const id = Number(g[1]);
    return raw("restart", [id], (s) => {
      const n = s.get(id);
      if (n) n.up = true;
    });
  }
  if (text.startsWith("power loss")) return raw("crash", ids);
  if ((g = text.match(/^node (\d+) is killed right after voting/))) {
    return raw("crash", [Number(g[1])]);
  }
  if ((g = text.match(/^partition \{([\d,]*)\}/))) {
    return raw("partition", g[1]!.split(",").filter(Boolean).map(Number));
  }
  if (text === "network heals") return raw("heal", ids);
  if (text === "everything heals") {
    return raw("heal", ids, (s) => {
      for (const n of s.values()) n.paused = false;
    });
  }
  if ((g = text.match(/^node (\d+) is stopped for/))) {
    const id = Number(g[1]);
    return raw("pause", [id], (s) => {
      const n = s.get(id);
      if (n) n.paused = true;
    });
  }
  if ((g = text.match(/^node (\d+) resumes$/))) {
    const id = Number(g[1]);
    return raw("resume", [id], (s) => {
      const n = s.get(id);
      if (n) n.paused = false;
    });
  }
  if ((g = text.match(/^node (\d+)'s (?:clocks run|wall clock steps)/))) {
    return raw("clock", [Number(g[1])]);
  }
  if ((g = text.match(/^node (\d+) leads term (\d+)$/))) {
    const id = Number(g[1]);
    const term = Number(g[2]);
    return raw("leader", [id], (s) => {
      for (const n of s.values()) {
        if (n.id === id) {
          n.leads = true;
          n.term = Math.max(n.term, term);
        } else if (n.term <= term) n.leads = false;
      }
    });
  }
  if ((g = text.match(/^node (\d+): an fsync fails$/))) {
    return raw("fsync", [Number(g[1])]);
  }
  if (text.startsWith("FAIL ")) {
    return { ...raw("fail", []), violation: true };
  }
  return raw("note", []);
}

const show = (v: string | null) => v === null ? "(none)" : JSON.stringify(v);

/** An operation in words: `client 3 put a="3.4" -> ok`. */
export function opText(op: KvOperation): string {
  const i = op.input;
  const what = i.op === "put"
    ? `put ${i.key}=${JSON.stringify(i.value)}`
    : i.op === "cas"
    ? `cas ${i.key} ${show(i.expected)} => ${JSON.stringify(i.value)}`
    : `${i.op} ${i.key}`;
  const out = op.output === undefined
    ? "? (no answer: it may or may not have taken effect)"
    : "value" in op.output
    ? show(op.output.value)
    : op.output.ok
    ? "ok"
    : "refused";
  const when = op.return === undefined
    ? `called at ${op.call.toFixed(1)}`
    : `called at ${op.call.toFixed(1)}, answered at ${op.return.toFixed(1)}`;
  return `client ${op.clientId} ${what} -> ${out} (${when})`;
}

/**
 * The operations a linearizability failure names as impossible: lines
 * `client C … [call, return] (does not fit this state)`, matched to the
 * history by client and call time (printed exactly).
 */
export function misfits(
  failure: string,
  history: readonly KvOperation[],
): Set<KvOperation> {
  const out = new Set<KvOperation>();
  const re = /client (\d+) .*? \[([0-9.e+-]+), [^\]]*\] \(does not fit/g;
  for (const m of failure.matchAll(re)) {
    const client = Number(m[1]);
    const call = Number(m[2]);
    const op = history.find((h) => h.clientId === client && h.call === call);
    if (op) out.add(op);
  }
  return out;
}

/** The timeline of a run (see the module doc). */
export function buildReplay(
  input: ReplayInput,
  maxSteps = MAX_REPLAY_STEPS,
): ReplicatedReplay {
  const ids = Array.from({ length: input.nodes }, (_, i) => i + 1);
  const raws: Raw[] = [];
  let seq = 0;
  for (const line of input.trace) {
    const r = traceStep(line, ids, seq++);
    if (r) raws.push(r);
  }
  for (const o of input.observed) {
    if (o.kind === "tick") {
      raws.push({
        atMs: o.atMs,
        rank: 1,
        seq: seq++,
        kind: "tick",
        text: `node ${o.node} ticks`,
        nodes: [o.node],
      });
      continue;
    }
    const extra = [
      o.entries ? `${o.entries} entries` : "",
      o.reject ? "rejects" : "",
    ].filter(Boolean).join(", ");
    raws.push({
      atMs: o.atMs,
      rank: 1,
      seq: seq++,
      kind: "message",
      text: `${o.from} → ${o.to} ${o.type} (term ${o.term}${
        extra ? `, ${extra}` : ""
      })`,
      nodes: [o.from, o.to],
      effect: (s) => {
        const n = s.get(o.from);
        if (n) n.term = Math.max(n.term, o.term);
      },
    });
  }
  const bad = input.code === "not_linearizable" && input.failure
    ? misfits(input.failure, input.history)
    : new Set<KvOperation>();
  for (const op of input.history) {
    raws.push({
      atMs: op.return ?? op.call,
      rank: 2,
      seq: seq++,
      kind: "op",
      text: opText(op),
      nodes: [],
      ...(bad.has(op) ? { violation: true as const } : {}),
    });
  }

  // Over the limit: leave out ticks first, then heartbeats, then the
  // earliest steps (the violation is near the end of a failing run). The
  // cluster state still takes every step's effect.
  raws.sort((a, b) => a.atMs - b.atMs || a.rank - b.rank || a.seq - b.seq);
  const omitted: string[] = [];
  const hidden = new Set<Raw>();
  let shown = raws.length;
  const hide = (what: string, f: (r: Raw) => boolean) => {
    if (shown <= maxSteps) return;
    const these = raws.filter((r) => !hidden.has(r) && f(r));
    for (const r of these) hidden.add(r);
    shown -= these.length;
    if (these.length > 0) omitted.push(`${these.length} ${what}`);
  };
  hide("ticks", (r) => r.kind === "tick");
  hide(
    "heartbeats",
    (r) => r.kind === "message" && /^\d+ → \d+ heartbeat(Resp)? /.test(r.text),
  );
  let skip = Math.max(0, shown - maxSteps);
  if (skip > 0) omitted.push(`the first ${skip} steps`);
  const state = new Map(
    ids.map((id): [number, ReplayNode] => [id, {
      id,
      up: true,
      paused: false,
      term: 0,
      leads: false,
    }]),
  );
  const steps: ReplayStep[] = [];
  for (const r of raws) {
    r.effect?.(state);
    if (hidden.has(r)) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    steps.push({
      index: steps.length,
      atMs: r.atMs,
      kind: r.kind,
      text: r.text,
      nodes: r.nodes,
      ...(r.violation ? { violation: true as const } : {}),
      cluster: [...state.values()].map((n) => ({ ...n })),
    });
  }
  return {
    machine: input.machine,
    seed: input.seed,
    bug: input.bug,
    command: input.command,
    ok: input.ok,
    code: input.code ?? null,
    failure: input.failure ?? null,
    nodes: ids,
    steps,
    violationSteps: steps.filter((s) => s.violation).map((s) => s.index),
    omitted,
  };
}
