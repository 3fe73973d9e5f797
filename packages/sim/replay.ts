/**
 * Simulation replay for the playground: runs a named scenario with a seed
 * on production `ReplicatedNode`s ({@link ReplicaCluster}: simulated disk,
 * network with the real codec, clocks and timers) and records a timeline
 * of the events a person cares about (elections, votes, role changes,
 * proposals, commits, partitions, crashes, snapshots, checks), each with a
 * picture of the cluster at that moment, read after every simulated event
 * from what each node exposes. The same scenario and seed always give the
 * same timeline, so a failing seed from a test can be pasted in and stepped
 * through.
 */
import type { ReplicatedNode } from "@strata/replication";
import { z } from "zod";
import {
  jointReplacement,
  learnerJoinsAndLeaderLeaves,
  MEMBERSHIP_CLUSTER,
  type ScriptCheck,
} from "./membership_script.ts";
import {
  ReplicaCluster,
  type ReplicaClusterOptions,
  type ReplicaSimNode,
} from "./replica_cluster.ts";
import { SimError } from "./sim_error.ts";
import type { SimLinkFaults } from "./sim_peer_network.ts";

/** A scenario the replay can run. */
export interface ReplayScenario {
  /** Identifier passed to {@link replayScenario}, e.g. "partition". */
  name: string;
  /** Short title for a menu. */
  title: string;
  /** One or two sentences on what happens. */
  description: string;
}

/** What a timeline step is about. */
export type TimelineStepKind =
  | "election"
  | "vote"
  | "role"
  | "commit"
  | "propose"
  | "partition"
  | "heal"
  | "crash"
  | "restart"
  | "drop"
  | "snapshot"
  | "check";

/** One node as it stands at a step. Indexes are raft log indexes. */
export interface NodeView {
  id: number;
  /** False while the node is crashed (the other fields are its last state). */
  up: boolean;
  /** "follower" | "preCandidate" | "candidate" | "leader". */
  role: string;
  term: number;
  /** The leader it follows (0: none known). */
  lead: number;
  commit: number;
  applied: number;
  lastIndex: number;
  /** Whom it voted for in `term` (0: nobody). */
  vote: number;
}

/**
 * A network link at a step: one entry per pair of nodes (`from` < `to`) when
 * both directions agree, one entry per direction when only one is cut.
 */
export interface LinkView {
  from: number;
  to: number;
  up: boolean;
}

/** One recorded event and the cluster right after it. */
export interface TimelineStep {
  /** Position in `steps`, from 0. */
  index: number;
  /** Virtual time of the event, ms since the start of the run. */
  timeMs: number;
  kind: TimelineStepKind;
  /** A sentence, e.g. "node 2 becomes leader in term 3". */
  text: string;
  /** The nodes the event concerns. */
  nodeIds: number[];
  cluster: NodeView[];
  links: LinkView[];
}

/** The result of a replay (plain data: JSON round-trips it unchanged). */
export interface Timeline {
  scenario: string;
  seed: number;
  /** Every node id that took part, ascending. */
  nodes: number[];
  steps: TimelineStep[];
  /** Whether the run passed its checks, and what happened. */
  outcome: { ok: boolean; summary: string };
  /** True when more events happened than `maxSteps` allowed to record. */
  truncated: boolean;
  /**
   * Set by {@link replayInput} when the pasted line came from a test that
   * has no scenario of its own (so this run is not that test's run).
   */
  note?: string;
}

/** Options of {@link replayScenario}. */
export interface ReplayOptions {
  /** Most steps recorded (default 2000, at most 20,000); the run still finishes. */
  maxSteps?: number;
}

/** What {@link parseSeed} found in a pasted line. */
export interface ParsedSeed {
  /** The scenario the line names (e.g. a failing test's file), if any. */
  scenario?: string;
  /** The seed, an integer in [0, 2^32). */
  seed: number;
  /** What printed the line: a test file ("packages/sim/raft_lab_test.ts") or "deno task sim" / "deno task sim:replicated". */
  source?: string;
}

const MAX_SEED = 0xffff_ffff;
const seedSchema = z.number().int().min(0).max(MAX_SEED);
const optionsSchema = z.object({
  maxSteps: z.number().int().min(1).max(20_000).optional(),
}).strict();
const inputSchema = z.string().max(20_000);

/** Frequent events (proposals, commits, snapshots, drops) are merged over this window, ms. */
const BATCH_WINDOW_MS = 100;

const SCENARIOS: readonly ReplayScenario[] = [
  {
    name: "election",
    title: "First election",
    description:
      "Three nodes start as followers; the first to time out asks for pre-votes, then votes, wins and commits its no-op entry.",
  },
  {
    name: "leader-crash",
    title: "Leader crash",
    description:
      "Three nodes commit a few entries, the leader crashes, the others elect a new leader and keep committing; the old leader restarts from its disk and catches up.",
  },
  {
    name: "partition",
    title: "Partitioned leader",
    description:
      "Five nodes; the leader and one follower are cut off from the other three. The old leader accepts writes it can never commit, the majority elects a new leader and commits; after healing, the old leader follows and its uncommitted entries are replaced.",
  },
  {
    name: "lossy-network",
    title: "Lossy network",
    description:
      "Three nodes under a steady client write workload on a network that drops 10% of messages, duplicates 5% and holds some back; then the network recovers and every node converges.",
  },
  {
    name: "membership",
    title: "Membership change",
    description:
      "A learner joins and catches up from a snapshot, is promoted, a node crashes, and the leader removes itself, under loss: the run of membership_sim_test.ts's first test for that seed. Paste a failing seed from it.",
  },
  {
    name: "joint-membership",
    title: "Joint membership change",
    description:
      "Two of three voters are replaced by two new servers in one joint change (enter and leave a joint configuration) while a voter crashes, under loss: the run of membership_sim_test.ts's joint test for that seed. Paste a failing seed from it.",
  },
];

/** The scenarios {@link replayScenario} knows, in menu order. */
export function listScenarios(): ReplayScenario[] {
  return SCENARIOS.map((s) => ({ ...s }));
}

function bad(message: string): SimError {
  return new SimError("bad_argument", message);
}

/**
 * Finds the seed (and, when the line names one, the scenario) in what a
 * user pasted: a bare number, `partition 42` / `partition:42`, or the lines
 * a failing seeded test or `deno task sim` prints, e.g.
 * `simulation failed with seed 19` /
 * `replay: STRATA_SEED=19 deno test -A packages/sim/membership_sim_test.ts --filter "a learner ..."`
 * (the `membership` scenario; its joint test's lines, `joint-membership`)
 * or `replay: deno task sim --seed 1775` (the
 * seed and its source only: the dashboard's replicated panel replays it).
 *
 * @throws SimError `bad_argument` when no seed in [0, 2^32) is found.
 */
export function parseSeed(input: string): ParsedSeed {
  const parsed = inputSchema.safeParse(input);
  if (!parsed.success) {
    throw bad("seed input must be a string of at most 20,000 characters");
  }
  const text = parsed.data.trim();
  const patterns = [
    /STRATA_SEED=(\d+)/,
    /--seed[ =](\d+)/,
    /\bseed\b[ \t:=#]*(\d+)/i,
    /^(?:[a-z][a-z0-9-]*[ \t]*[: \t][ \t]*)?(\d+)$/i,
  ];
  let digits: string | undefined;
  for (const p of patterns) {
    const m = p.exec(text);
    if (m) {
      digits = m[1];
      break;
    }
  }
  if (digits === undefined) {
    throw bad(
      `no seed found in ${
        JSON.stringify(text.slice(0, 80))
      }: paste a number or the line a failing test printed`,
    );
  }
  const seed = Number(digits);
  if (!seedSchema.safeParse(seed).success) {
    throw bad(`seed ${digits} is out of range (0 to ${MAX_SEED})`);
  }
  const out: ParsedSeed = { seed };
  const scenario = scenarioOf(text);
  if (scenario !== undefined) out.scenario = scenario;
  // `deno task sim` (and `sim:replicated`) runs have no scenario here (the
  // dashboard's replicated panel replays them).
  const source = /[\w./-]*_test\.ts/.exec(text)?.[0] ??
    /deno task sim(?::replicated)?\b/.exec(text)?.[0];
  if (source !== undefined) out.source = source;
  return out;
}

function scenarioOf(text: string): string | undefined {
  // membership_sim_test.ts's two tests run the two membership scripts.
  if (/membership_sim_test\.ts/.test(text)) {
    return /joint/i.test(text) ? "joint-membership" : "membership";
  }
  const named = /^([a-z][a-z0-9-]*)[ \t]*[: \t][ \t]*\d+$/i.exec(text) ??
    /\bscenario[ \t]*[=:][ \t]*([a-z][a-z0-9-]*)/i.exec(text);
  const name = named?.[1]?.toLowerCase();
  return SCENARIOS.some((s) => s.name === name) ? name : undefined;
}

/**
 * Replays what the user typed: {@link parseSeed} on `input`, then
 * {@link replayScenario} with the scenario the input names, or
 * `defaultScenario` when it names none. The timeline's `scenario` says
 * which one ran.
 *
 * @throws SimError `bad_argument` for an unknown scenario or no valid seed.
 */
export async function replayInput(
  defaultScenario: string,
  input: string,
  options: ReplayOptions = {},
): Promise<Timeline> {
  const p = parseSeed(input);
  const t = await replayScenario(
    p.scenario ?? defaultScenario,
    p.seed,
    options,
  );
  if (p.scenario === undefined && p.source !== undefined) {
    t.note =
      `${p.source} has no replay scenario of its own: this is the "${t.scenario}" scenario with seed ${p.seed}, not that test's run`;
  }
  return t;
}

/**
 * Runs scenario `name` with `seed` and records its timeline. Deterministic:
 * equal arguments give identical timelines. A run that breaks a safety
 * check or a scenario check is not an error: the timeline ends with a
 * "check" step and `outcome.ok` is false.
 *
 * @throws SimError `bad_argument` for an unknown scenario, a seed that is
 *   not an integer in [0, 2^32), or bad options.
 */
export async function replayScenario(
  name: string,
  seed: number,
  options: ReplayOptions = {},
): Promise<Timeline> {
  const script = SCRIPTS[name as keyof typeof SCRIPTS];
  if (typeof name !== "string" || !Object.hasOwn(SCRIPTS, name) || !script) {
    throw bad(
      `unknown scenario ${JSON.stringify(name)}; known: ${
        SCENARIOS.map((s) => s.name).join(", ")
      }`,
    );
  }
  if (!seedSchema.safeParse(seed).success) {
    throw bad(`seed must be an integer from 0 to ${MAX_SEED}, got ${seed}`);
  }
  const opts = optionsSchema.safeParse(options);
  if (!opts.success) {
    throw bad(`bad replay options: ${z.prettifyError(opts.error)}`);
  }
  return await script(seed, opts.data.maxSteps ?? 2000, name);
}

// ---- recording ----

interface Seen {
  up: boolean;
  incarnation: number;
  role: string;
  term: number;
  lead: number;
  vote: number;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshot: number;
}

/** Frequent events merged until the window closes or a rarer event comes. */
interface Pending {
  since: number;
  proposes: Map<number, { from: number; to: number; term: number }>;
  commitFrom: number;
  commitTo: number;
  snapshots: Map<number, number>;
  /** The cluster as of the last merged event (what its steps show). */
  view: View;
}

interface View {
  timeMs: number;
  cluster: NodeView[];
  links: LinkView[];
}

/**
 * What a running node exposes, read without side effects (not `status()`,
 * which samples the clocks): its role from its raft events, term, vote and
 * commit from the hard state its Ready loop recorded, log positions from
 * its in-memory raft log.
 */
function readNode(
  n: ReplicaSimNode,
  replica: ReplicatedNode<number>,
): Omit<Seen, "up" | "incarnation"> {
  const log = replica.raftLog();
  const hs = log.initialState().hardState;
  return {
    role: roleOf(replica),
    term: hs.term,
    lead: replica.leader,
    vote: hs.vote,
    commit: hs.commit,
    applied: n.sm.appliedIndex,
    lastIndex: log.lastIndex(),
    snapshot: log.snapshot().meta.index,
  };
}

/** The role of the node's latest role event ("follower" before any). */
function roleOf(replica: ReplicatedNode<number>): string {
  if (replica.isLeader) return "leader";
  const events = replica.events();
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.kind === "role") return e.role;
  }
  return "follower";
}

/**
 * Watches a cluster after every simulated event and turns state changes
 * into steps. It only reads, so the run it watches is the same run a test
 * makes with the same seed. Frequent events (proposals, commits, local
 * snapshots, drops) are merged per {@link BATCH_WINDOW_MS}; everything else
 * is a step of its own.
 */
class TimelineRecorder {
  readonly steps: TimelineStep[] = [];
  truncated = false;
  readonly #seen = new Map<number, Seen>();
  #down = new Set<string>();
  #maxCommit = 0;
  #membership = "";
  #dropped = 0;
  /** Dropped messages not reported yet, counted since #dropsSince (ms). */
  #drops = 0;
  #dropsSince = 0;
  #pending: Pending | undefined;
  /** Frequent events of the current observation, merged at its end. */
  #delta: Omit<Pending, "since" | "view"> = emptyDelta();
  #ids: number[] = [];
  #started = false;

  constructor(readonly cluster: ReplicaCluster, readonly maxSteps: number) {
    this.#dropped = cluster.net.stats.dropped;
  }

  /** Observes after every event the cluster runs. */
  attach(): void {
    this.cluster.afterEvent = () => this.observe();
  }

  /** Every node id seen so far, ascending. */
  get nodes(): number[] {
    return [...this.#seen.keys()].sort((a, b) => a - b);
  }

  /** Records a scenario-level step (a check), after any merged events. */
  note(kind: TimelineStepKind, text: string, nodeIds: number[] = []): void {
    this.observe();
    this.#flush();
    this.#flushDrops(true);
    this.#push(kind, text, nodeIds);
  }

  /** Flushes merged events at the end of a run. */
  finish(): void {
    this.observe();
    this.#flush();
    this.#flushDrops(true);
  }

  observe(): void {
    const c = this.cluster;
    const now = c.scheduler.now;
    const ids = [...c.nodes.keys()].sort((a, b) => a - b);
    if (ids.length !== this.#ids.length) this.#ids = ids;
    this.#observeLinks();
    for (const id of this.#ids) this.#observeNode(c.nodes.get(id)!);
    this.#observeMembership();
    let top = this.#maxCommit;
    for (const n of this.#seen.values()) top = Math.max(top, n.commit);
    const d = this.#delta;
    if (top > this.#maxCommit) {
      d.commitFrom = this.#maxCommit;
      d.commitTo = top;
      this.#maxCommit = top;
    }
    const dropped = c.net.stats.dropped;
    if (dropped > this.#dropped) {
      const f = c.net.faults;
      if (f.loss > 0 || f.duplicate > 0 || (f.longDelay ?? 0) > 0) {
        if (this.#drops === 0) this.#dropsSince = now;
        this.#drops += dropped - this.#dropped;
      }
      this.#dropped = dropped;
    }
    this.#mergeDelta(now);
    if (this.#pending && now - this.#pending.since >= BATCH_WINDOW_MS) {
      this.#flush();
    }
    this.#flushDrops(false);
    this.#started = true;
  }

  #observeNode(node: ReplicaSimNode): void {
    const id = node.id;
    const prev = this.#seen.get(id);
    const incarnation = node.proc.generation;
    const replica = node.alive ? node.replica : undefined;
    // A server's first start (opening its empty disk) is not a restart: it
    // shows as up with nothing yet.
    const booting = !replica && node.proc.up && incarnation === 0;
    const cur: Seen = replica
      ? { up: true, incarnation, ...readNode(node, replica) }
      : prev && !booting
      ? { ...prev, up: false, incarnation }
      : {
        up: true,
        incarnation,
        role: "follower",
        term: 0,
        lead: 0,
        vote: 0,
        commit: 0,
        applied: 0,
        lastIndex: 0,
        snapshot: 0,
      };
    this.#seen.set(id, cur);
    if (!prev) {
      if (this.#started) {
        this.#push("role", `node ${id} is added with an empty disk`, [id]);
      }
      return;
    }
    if (prev.up && !cur.up) {
      this.#push(
        "crash",
        `node ${id} crashes (${prev.role} in term ${prev.term}); writes it had not synced may be lost`,
        [id],
      );
      return;
    }
    if (!cur.up) return;
    if (!prev.up || cur.incarnation !== prev.incarnation) {
      this.#push(
        "restart",
        `node ${id} restarts from its disk: term ${cur.term}, log up to ${cur.lastIndex}, commit ${cur.commit}`,
        [id],
      );
      return;
    }
    if (cur.role !== prev.role) this.#roleChange(id, prev, cur, cur.lead);
    if (
      cur.vote !== 0 && cur.vote !== id &&
      (cur.vote !== prev.vote || cur.term !== prev.term)
    ) {
      this.#push(
        "vote",
        `node ${id} votes for node ${cur.vote} in term ${cur.term}`,
        [id, cur.vote],
      );
    }
    if (cur.snapshot > prev.snapshot) {
      if (cur.applied - prev.applied > 1 && cur.applied === cur.snapshot) {
        this.#push(
          "snapshot",
          `node ${id} installs the leader's snapshot at index ${cur.snapshot} (it was at ${prev.applied})`,
          [id],
        );
      } else {
        this.#delta.snapshots.set(id, cur.snapshot);
      }
    }
    if (
      cur.role === "leader" && prev.role === "leader" &&
      cur.term === prev.term && cur.lastIndex > prev.lastIndex
    ) {
      this.#delta.proposes.set(id, {
        from: prev.lastIndex + 1,
        to: cur.lastIndex,
        term: cur.term,
      });
    }
  }

  #roleChange(id: number, prev: Seen, cur: Seen, lead: number): void {
    switch (cur.role) {
      case "preCandidate":
        this.#push(
          "election",
          `node ${id} times out and asks for pre-votes for term ${
            cur.term + 1
          }`,
          [id],
        );
        return;
      case "candidate":
        this.#push(
          "election",
          `node ${id} starts an election for term ${cur.term} and votes for itself`,
          [id],
        );
        return;
      case "leader":
        this.#push(
          "role",
          `node ${id} becomes leader in term ${cur.term}`,
          [id],
        );
        return;
      default: {
        const follows = lead !== 0 ? `; node ${lead} leads` : "";
        const nodes = lead !== 0 ? [id, lead] : [id];
        if (prev.role === "leader") {
          const why = cur.term === prev.term
            ? "it no longer hears from a quorum"
            : `it saw term ${cur.term}`;
          this.#push(
            "role",
            `node ${id} steps down to follower: ${why}${follows}`,
            nodes,
          );
        } else {
          this.#push(
            "role",
            `node ${id} goes back to follower in term ${cur.term}${follows}`,
            nodes,
          );
        }
      }
    }
  }

  #observeLinks(): void {
    const net = this.cluster.net;
    const ids = this.#ids;
    const down = new Set<string>();
    for (const a of ids) {
      for (const b of ids) {
        if (a !== b && net.isCut(a, b)) down.add(`${a}>${b}`);
      }
    }
    const before = this.#down;
    if (down.size === before.size && [...down].every((k) => before.has(k))) {
      return;
    }
    this.#down = down;
    const touched = new Set<number>();
    for (const k of [...down, ...before]) {
      if (down.has(k) !== before.has(k)) {
        for (const part of k.split(">")) touched.add(Number(part));
      }
    }
    const nodeIds = [...touched].sort((a, b) => a - b);
    if (down.size === 0) {
      this.#push("heal", "the network heals: every link is up again", nodeIds);
      return;
    }
    const onlyRestored = [...down].every((k) => before.has(k));
    const shape = describeCuts(ids, down);
    this.#push(
      onlyRestored ? "heal" : "partition",
      onlyRestored ? `some links come back; ${shape}` : shape,
      nodeIds,
    );
  }

  #observeMembership(): void {
    let leader: ReplicaSimNode | undefined;
    let term = -1;
    for (const n of this.cluster.nodes.values()) {
      const seen = this.#seen.get(n.id);
      if (!n.alive || !seen || seen.role !== "leader") continue;
      if (seen.term > term) [leader, term] = [n, seen.term];
    }
    if (!leader?.replica) return;
    const cs = leader.replica.confState();
    const sorted = (ids: readonly number[]) => [...ids].sort((a, b) => a - b);
    const voters = sorted(cs.voters);
    const learners = sorted(cs.learners);
    const outgoing = sorted(cs.votersOutgoing ?? []);
    const key = `${voters.join(",")}|${learners.join(",")}|${
      outgoing.join(",")
    }`;
    if (key === this.#membership) return;
    const first = this.#membership === "";
    this.#membership = key;
    if (first) return;
    const joint = outgoing.length > 0
      ? ` (joint: outgoing voters ${outgoing.join(", ")} must agree too)`
      : "";
    this.#push(
      "role",
      `membership (as node ${leader.id} sees it): voters ${voters.join(", ")}${
        learners.length > 0 ? `; learners ${learners.join(", ")}` : ""
      }${joint}`,
      [...new Set([...voters, ...learners, ...outgoing])],
    );
  }

  /**
   * Adds this observation's frequent events to the pending batch, after
   * the rarer events of the same observation were recorded (those flushed
   * the batch as it stood, with the cluster as it was then).
   */
  #mergeDelta(now: number): void {
    const d = this.#delta;
    if (
      d.proposes.size === 0 && d.commitTo === 0 && d.snapshots.size === 0
    ) return;
    this.#delta = emptyDelta();
    const view = this.#view();
    const p = this.#pending ??= { since: now, ...emptyDelta(), view };
    for (const [id, r] of d.proposes) {
      const got = p.proposes.get(id);
      if (got && got.term === r.term) got.to = r.to;
      else p.proposes.set(id, r);
    }
    if (d.commitTo > 0) {
      if (p.commitTo === 0) p.commitFrom = d.commitFrom;
      p.commitTo = d.commitTo;
    }
    for (const [id, at] of d.snapshots) p.snapshots.set(id, at);
    p.view = view;
  }

  #view(): View {
    return {
      timeMs: Math.round(this.cluster.scheduler.now * 10) / 10,
      cluster: this.#clusterView(),
      links: this.#linkView(),
    };
  }

  #flush(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    for (const [id, { from, to, term }] of p.proposes) {
      const n = to - from + 1;
      this.#push(
        "propose",
        n === 1
          ? `leader ${id} appends entry ${from} in term ${term}`
          : `leader ${id} appends ${n} entries (${from}–${to}) in term ${term}`,
        [id],
        p.view,
      );
    }
    if (p.commitTo > 0) {
      const holders = p.view.cluster
        .filter((n) => n.commit === p.commitTo)
        .map((n) => n.id);
      const range = p.commitTo - p.commitFrom === 1
        ? `entry ${p.commitTo} is committed`
        : `entries ${p.commitFrom + 1}–${p.commitTo} are committed`;
      this.#push("commit", range, holders, p.view);
    }
    if (p.snapshots.size > 0) {
      const parts = [...p.snapshots].map(([id, at]) => `node ${id} at ${at}`);
      this.#push(
        "snapshot",
        `snapshot and log compaction: ${parts.join(", ")}`,
        [...p.snapshots.keys()],
        p.view,
      );
    }
  }

  /**
   * Reports dropped messages once per window (drops change no node's
   * state, so they do not need to come before other events).
   */
  #flushDrops(force: boolean): void {
    if (this.#drops === 0) return;
    const now = this.cluster.scheduler.now;
    if (!force && now - this.#dropsSince < BATCH_WINDOW_MS) return;
    const n = this.#drops;
    this.#drops = 0;
    const span = Math.max(1, Math.round(now - this.#dropsSince));
    this.#push(
      "drop",
      `${n} message${n === 1 ? "" : "s"} dropped in ${span} ms (loss rate ${
        pct(this.cluster.net.faults.loss)
      })`,
      [],
    );
  }

  #push(
    kind: TimelineStepKind,
    text: string,
    nodeIds: number[],
    view?: View,
  ): void {
    // Merged events that happened before this one come first (a no-op
    // when called from #flush, which has already taken them).
    this.#flush();
    if (this.steps.length >= this.maxSteps) {
      this.truncated = true;
      return;
    }
    const v = view ?? this.#view();
    this.steps.push({
      index: this.steps.length,
      timeMs: v.timeMs,
      kind,
      text,
      nodeIds: [...new Set(nodeIds)].sort((a, b) => a - b),
      cluster: v.cluster,
      links: v.links,
    });
  }

  #clusterView(): NodeView[] {
    // Nodes added in this instant and not observed yet are left out (their
    // "added" step, next, shows them).
    return this.#ids.filter((id) => this.#seen.has(id)).map((id) => {
      const n = this.#seen.get(id)!;
      return {
        id,
        up: n.up,
        role: n.role,
        term: n.term,
        lead: n.lead,
        commit: n.commit,
        applied: n.applied,
        lastIndex: n.lastIndex,
        vote: n.vote,
      };
    });
  }

  #linkView(): LinkView[] {
    const out: LinkView[] = [];
    const ids = this.#ids;
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const a = ids[i]!;
        const b = ids[j]!;
        const ab = !this.#down.has(`${a}>${b}`);
        const ba = !this.#down.has(`${b}>${a}`);
        if (ab === ba) out.push({ from: a, to: b, up: ab });
        else {
          out.push({ from: a, to: b, up: ab });
          out.push({ from: b, to: a, up: ba });
        }
      }
    }
    return out;
  }
}

function emptyDelta(): Omit<Pending, "since" | "view"> {
  return {
    proposes: new Map(),
    commitFrom: 0,
    commitTo: 0,
    snapshots: new Map(),
  };
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

/**
 * Describes cut links as a partition when they form one (groups that talk
 * only among themselves), otherwise lists them.
 */
function describeCuts(ids: readonly number[], down: ReadonlySet<string>) {
  const up = (a: number, b: number) =>
    !down.has(`${a}>${b}`) && !down.has(`${b}>${a}`);
  const group = new Map<number, number>();
  for (const a of ids) {
    if (group.has(a)) continue;
    group.set(a, a);
    const stack = [a];
    while (stack.length > 0) {
      const x = stack.pop()!;
      for (const y of ids) {
        if (!group.has(y) && up(x, y)) {
          group.set(y, a);
          stack.push(y);
        }
      }
    }
  }
  let clean = true;
  for (const a of ids) {
    for (const b of ids) {
      if (a === b) continue;
      const same = group.get(a) === group.get(b);
      if (same !== up(a, b) || (!same && (!down.has(`${a}>${b}`)))) {
        clean = false;
      }
    }
  }
  if (clean) {
    const groups = new Map<number, number[]>();
    for (const id of ids) {
      const g = group.get(id)!;
      groups.set(g, [...(groups.get(g) ?? []), id]);
    }
    const list = [...groups.values()];
    const alone = list.filter((g) => g.length === 1);
    if (list.length === ids.length) return "every node is cut off";
    if (alone.length === 1 && list.length === 2) {
      return `node ${alone[0]![0]} is cut off from the others`;
    }
    return `the network splits into ${
      list.map((g) => `{${g.join(", ")}}`).join(" | ")
    }`;
  }
  const cuts: string[] = [];
  for (const k of down) {
    const [a, b] = k.split(">").map(Number) as [number, number];
    if (!down.has(`${b}>${a}`)) cuts.push(`${a}→${b}`);
    else if (a < b) cuts.push(`${a}↔${b}`);
  }
  const shown = cuts.slice(0, 8).join(", ");
  return `links cut: ${shown}${
    cuts.length > 8 ? ` and ${cuts.length - 8} more` : ""
  }`;
}

// ---- scenarios ----

type Script = (
  seed: number,
  maxSteps: number,
  name: string,
) => Promise<Timeline>;

/**
 * Runs a scripted scenario on a fresh cluster. The script returns a
 * summary or throws; a throw is the run's failure (outcome not ok), not
 * the caller's error.
 */
function clusterScript(
  options: Omit<ReplicaClusterOptions, "seed">,
  script: (c: ReplicaCluster, rec: TimelineRecorder) => Promise<string>,
): Script {
  return async (seed, maxSteps, name) => {
    const c = new ReplicaCluster({ ...options, seed });
    const rec = new TimelineRecorder(c, maxSteps);
    rec.observe();
    rec.attach();
    let outcome: Timeline["outcome"];
    try {
      outcome = { ok: true, summary: await script(c, rec) };
      rec.finish();
    } catch (e) {
      const summary = failure(e);
      rec.note("check", `failed: ${summary}`);
      outcome = { ok: false, summary };
    }
    c.afterEvent = undefined;
    return timeline(name, seed, rec, outcome);
  };
}

function failure(e: unknown): string {
  if (e instanceof SimError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function timeline(
  scenario: string,
  seed: number,
  rec: TimelineRecorder,
  outcome: Timeline["outcome"],
): Timeline {
  return {
    scenario,
    seed,
    nodes: rec.nodes,
    steps: rec.steps,
    outcome,
    truncated: rec.truncated,
  };
}

/** Records a passed check, or throws (ending the run) with the failure. */
function check(
  rec: TimelineRecorder,
  ok: boolean,
  text: string,
  nodeIds: number[] = [],
): void {
  if (!ok) throw new SimError("invariant", text);
  rec.note("check", `check passed: ${text}`, nodeIds);
}

/** Waits up to 5 s for a leader among `among` in a term above `above`. */
async function waitLeader(
  c: ReplicaCluster,
  among: readonly number[],
  above = 0,
): Promise<ReplicaSimNode> {
  let found: ReplicaSimNode | undefined;
  await c.runUntil(() => {
    // The node's loop has handled its win (what the timeline shows), not
    // only its raft core.
    found = among.map((id) => c.node(id)).find((n) =>
      n.alive && n.replica!.isLeader && n.term > above
    );
    return found !== undefined;
  }, 5000);
  if (!found) {
    throw new SimError(
      "no_progress",
      `no leader among nodes ${among.join(", ")} within 5 s`,
    );
  }
  return found;
}

/** Whether node `id` applied command `cmd` (in its current life). */
function applied(c: ReplicaCluster, id: number, cmd: string): boolean {
  return [...c.node(id).sm.log.values()].includes(cmd);
}

/** The node's commit index (0 while down). */
function commitOf(n: ReplicaSimNode): number {
  return n.alive ? n.replica!.status().commitIndex : 0;
}

const electionScript = clusterScript({ nodes: 3 }, async (c, rec) => {
  const leader = await waitLeader(c, [1, 2, 3]);
  const at = Math.round(c.scheduler.now);
  await c.run(600);
  const term = leader.term;
  check(
    rec,
    c.leader() === leader &&
      [1, 2, 3].every((id) => c.node(id).term === term),
    `node ${leader.id} is the only leader and every node is in term ${term}`,
    [leader.id],
  );
  check(
    rec,
    [1, 2, 3].every((id) => c.node(id).replica?.leader === leader.id),
    `every node follows node ${leader.id}`,
    [1, 2, 3],
  );
  return `node ${leader.id} won the election for term ${term} at ${at} ms and all three nodes follow it`;
});

const leaderCrashScript = clusterScript({ nodes: 3 }, async (c, rec) => {
  const ids = [1, 2, 3];
  const old = await c.checkOneLeader();
  for (let i = 1; i <= 3; i++) await c.one(`x${i}`, 3, true);
  const oldTerm = c.node(old).term;
  c.crash(old);
  rec.observe();
  const others = ids.filter((id) => id !== old);
  const next = await waitLeader(c, others, oldTerm);
  check(
    rec,
    next.id !== old,
    `node ${next.id} took over from crashed node ${old}`,
    [next.id],
  );
  for (let i = 1; i <= 3; i++) await c.one(`y${i}`, 2, true);
  c.restart(old);
  rec.observe();
  const target = commitOf(next);
  const back = c.node(old);
  const caught = await c.runUntil(
    () =>
      back.alive && back.sm.appliedIndex >= target &&
      back.replica!.leader === next.id,
    5000,
  );
  check(
    rec,
    caught && applied(c, old, "y3"),
    `restarted node ${old} follows node ${next.id} and applied everything up to ${target}`,
    [old, next.id],
  );
  return `leader ${old} crashed, node ${next.id} took over in term ${next.term}, and node ${old} caught up to index ${target} after restarting`;
});

/** Cuts every link between nodes of different groups (both ways). */
function partition(c: ReplicaCluster, groups: number[][]): void {
  for (const a of groups) {
    for (const b of groups) {
      if (a === b) continue;
      for (const x of a) for (const y of b) c.net.cut(x, y);
    }
  }
}

const partitionScript = clusterScript({ nodes: 5 }, async (c, rec) => {
  const ids = [1, 2, 3, 4, 5];
  const old = await c.checkOneLeader();
  await c.one("before", 5, true);
  const buddy = c.prng.pick(ids.filter((id) => id !== old));
  const minority = [old, buddy];
  const majority = ids.filter((id) => !minority.includes(id));
  partition(c, [minority, majority]);
  rec.observe();
  const oldTerm = c.node(old).term;
  const lost: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const r = c.start(old, `lost${i}`);
    if (r.isLeader) lost.push(r.index);
    await c.run(20);
  }
  const next = await waitLeader(c, majority, oldTerm);
  for (let i = 1; i <= 3; i++) c.start(next.id, `new${i}`);
  const committed = await c.runUntil(
    () => majority.every((id) => applied(c, id, "new3")),
    5000,
  );
  check(
    rec,
    committed,
    `the majority ${
      majority.join(", ")
    } elected node ${next.id} and committed new writes`,
    majority,
  );
  await c.run(300);
  c.net.heal();
  rec.observe();
  const newTerm = next.term;
  const settled = await c.runUntil(
    () =>
      ids.every((id) => c.node(id).term >= newTerm && applied(c, id, "new3")),
    5000,
  );
  check(
    rec,
    settled && c.node(old).role === "follower",
    `old leader ${old} follows the term-${newTerm} leader after healing`,
    [old, next.id],
  );
  const log = c.node(old).replica!.raftLog();
  const termAt = (i: number) => {
    try {
      return log.term(i);
    } catch {
      return undefined; // compacted or not there: not the old entry
    }
  };
  const replaced = lost.every((i) => termAt(i) !== oldTerm) &&
    ids.every((id) => ![1, 2, 3].some((k) => applied(c, id, `lost${k}`)));
  check(
    rec,
    replaced,
    lost.length === 0
      ? "no uncommitted write survived"
      : `old leader ${old}'s uncommitted entries ${lost[0]}–${
        lost[lost.length - 1]
      } (term ${oldTerm}) were replaced, and no node applied them`,
    [old],
  );
  return `node ${next.id} led the majority in term ${newTerm}; old leader ${old} rejoined as a follower and dropped ${lost.length} uncommitted entries`;
});

/** The lossy-network scenario's faults (datagram links). */
const LOSSY: Omit<SimLinkFaults, "mode"> = {
  minDelayMs: 1,
  maxDelayMs: 30,
  loss: 0.1,
  duplicate: 0.05,
  longDelay: 0.02,
  longDelayMs: 300,
};

const lossyScript = clusterScript({ nodes: 3 }, async (c, rec) => {
  const ids = [1, 2, 3];
  const healthy = { ...c.net.faults };
  Object.assign(c.net.faults, LOSSY);
  const load = c.prng.fork();
  let proposed = 0;
  let stop = false;
  const write = () => {
    if (stop) return;
    const l = c.leader();
    if (l && c.start(l.id, `w${proposed + 1}`).isLeader) proposed++;
    c.scheduler.after(load.range(20, 80), write);
  };
  c.scheduler.after(300, write);
  await c.run(3000);
  stop = true;
  const dropped = c.net.stats.dropped;
  Object.assign(c.net.faults, healthy, { longDelay: 0, longDelayMs: 0 });
  rec.note(
    "heal",
    "the network recovers: no more loss, duplication or long delays",
  );
  let top = 0;
  const converged = await c.runUntil(() => {
    top = Math.max(...ids.map((id) => commitOf(c.node(id))));
    return ids.every((id) => c.node(id).sm.appliedIndex >= top) &&
      c.leader() !== undefined;
  }, 5000);
  // nCommitted throws SimError `divergence` if two nodes disagree anywhere.
  let writes = 0;
  for (let i = 1; i <= top; i++) {
    const [n, v] = c.nCommitted(i);
    if (n === 3 && v?.startsWith("w")) writes++;
  }
  check(
    rec,
    converged,
    `all three nodes applied the same ${top} entries`,
    ids,
  );
  return `${proposed} writes proposed under loss, ${writes} committed and applied identically on all three nodes; ${dropped} messages dropped`;
});

/** A scenario of a membership script (membership_script.ts). */
function membershipScenario(
  script: (c: ReplicaCluster, check: ScriptCheck) => Promise<string>,
): Script {
  return clusterScript(
    MEMBERSHIP_CLUSTER,
    (c, rec) => script(c, (ok, text, nodeIds) => check(rec, ok, text, nodeIds)),
  );
}

const SCRIPTS: Record<string, Script> = {
  "election": electionScript,
  "leader-crash": leaderCrashScript,
  "partition": partitionScript,
  "lossy-network": lossyScript,
  "membership": membershipScenario(learnerJoinsAndLeaderLeaves),
  "joint-membership": membershipScenario(jointReplacement),
};
