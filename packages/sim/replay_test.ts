import assert from "node:assert/strict";
import fc from "fast-check";
import {
  jointReplacement,
  learnerJoinsAndLeaderLeaves,
  MEMBERSHIP_CLUSTER,
} from "./membership_script.ts";
import { ReplicaCluster } from "./replica_cluster.ts";
import {
  listScenarios,
  parseSeed,
  replayInput,
  replayScenario,
  type Timeline,
} from "./replay.ts";
import { runSeeded } from "./seeded_test_runner.ts";
import { isSimError, SimError } from "./sim_error.ts";

/**
 * Two leaders in one term, or a node's term going down (the timeline shows
 * the term a node's loop has persisted, so a restart cannot lower it).
 */
function safetyProblems(t: Timeline): string[] {
  const problems: string[] = [];
  const leaderOf = new Map<number, number>();
  const lastTerm = new Map<number, number>();
  for (const step of t.steps) {
    for (const n of step.cluster) {
      const before = lastTerm.get(n.id) ?? 0;
      if (n.term < before) {
        problems.push(
          `node ${n.id} went from term ${before} to ${n.term} at step ${step.index}`,
        );
      }
      lastTerm.set(n.id, n.term);
      if (n.role !== "leader") continue;
      const other = leaderOf.get(n.term);
      if (other !== undefined && other !== n.id) {
        problems.push(`term ${n.term} has leaders ${other} and ${n.id}`);
      }
      leaderOf.set(n.term, n.id);
    }
  }
  return problems;
}

function leadersOf(t: Timeline): Set<number> {
  const ids = new Set<number>();
  for (const s of t.steps) {
    if (s.kind === "role" && s.text.includes("becomes leader")) {
      ids.add(s.nodeIds[0]!);
    }
  }
  return ids;
}

function kinds(t: Timeline): string[] {
  return t.steps.map((s) => s.kind);
}

function quietly<T>(fn: () => T): { value?: T; error?: unknown; err: string } {
  const error = console.error;
  let err = "";
  console.error = (...args: unknown[]) => {
    err += args.join(" ") + "\n";
  };
  try {
    return { value: fn(), err };
  } catch (e) {
    return { error: e, err };
  } finally {
    console.error = error;
  }
}

Deno.test("every scenario replays to an identical, JSON-clean timeline from the same seed", async () => {
  for (const { name } of listScenarios()) {
    const a = await replayScenario(name, 5);
    const b = await replayScenario(name, 5);
    assert.deepEqual(a, b, name);
    assert.deepEqual(JSON.parse(JSON.stringify(a)), a, name);
    assert.equal(a.scenario, name);
    assert.equal(a.seed, 5);
    assert.ok(a.steps.length > 3, `${name}: only ${a.steps.length} steps`);
    a.steps.forEach((s, i) => {
      assert.equal(s.index, i);
      assert.ok(i === 0 || s.timeMs >= a.steps[i - 1]!.timeMs);
      assert.ok(s.text.length > 0);
      assert.ok(s.cluster.length > 0);
    });
  }
});

Deno.test("different seeds give different timelines", async () => {
  const a = await replayScenario("partition", 1);
  const b = await replayScenario("partition", 2);
  assert.notDeepEqual(a.steps, b.steps);
});

Deno.test("every scenario passes its own checks for seeds 1 to 10 (membership ones: 1 to 3)", async () => {
  for (const { name } of listScenarios()) {
    // The membership scripts cost about ten times the others; their test
    // (membership_sim_test.ts) and the property below (any seed) run them
    // too.
    const last = name.includes("membership") ? 3 : 10;
    for (let seed = 1; seed <= last; seed++) {
      const t = await replayScenario(name, seed);
      assert.ok(t.outcome.ok, `${name} seed ${seed}: ${t.outcome.summary}`);
      assert.equal(t.truncated, false);
    }
  }
});

Deno.test("the election scenario shows a pre-vote, an election, votes and one winner", async () => {
  const t = await replayScenario("election", 3);
  const k = kinds(t);
  assert.ok(k.includes("election") && k.includes("vote"), k.join());
  assert.ok(t.steps.some((s) => s.text.includes("pre-votes")));
  assert.equal(leadersOf(t).size, 1);
  assert.deepEqual(t.nodes, [1, 2, 3]);
  const last = t.steps.at(-1)!;
  assert.equal(last.kind, "check");
  assert.equal(last.cluster.filter((n) => n.role === "leader").length, 1);
});

Deno.test("the leader-crash scenario crashes the leader, elects another and restarts the old one", async () => {
  const t = await replayScenario("leader-crash", 4);
  const crash = t.steps.find((s) => s.kind === "crash")!;
  const restart = t.steps.find((s) => s.kind === "restart")!;
  assert.ok(crash && restart && crash.index < restart.index);
  const old = crash.nodeIds[0]!;
  assert.equal(crash.cluster.find((n) => n.id === old)!.up, false);
  const after = t.steps.slice(crash.index).find((s) =>
    s.kind === "role" && s.text.includes("becomes leader")
  )!;
  assert.notEqual(after.nodeIds[0], old);
  // The restarted node ends caught up with the new leader.
  const end = t.steps.at(-1)!.cluster;
  const oldView = end.find((n) => n.id === old)!;
  const leader = end.find((n) => n.role === "leader")!;
  assert.equal(oldView.up, true);
  assert.equal(oldView.lead, leader.id);
  assert.ok(oldView.applied >= leader.commit - 1);
});

Deno.test("the partition scenario partitions, heals, and has two leaders, the old one's entries replaced", async () => {
  const t = await replayScenario("partition", 7);
  const partition = t.steps.findIndex((s) => s.kind === "partition");
  const heal = t.steps.findIndex((s) => s.kind === "heal");
  assert.ok(partition >= 0 && heal > partition, kinds(t).join());
  const cut = t.steps[partition]!;
  assert.ok(cut.links.some((l) => !l.up));
  assert.ok(t.steps[heal]!.links.every((l) => l.up));
  assert.ok(leadersOf(t).size >= 2, `leaders ${[...leadersOf(t)]}`);
  assert.ok(t.steps.some((s) => s.text.includes("steps down")));
  assert.ok(
    t.steps.some((s) => s.kind === "check" && s.text.includes("replaced")),
  );
  assert.equal(t.outcome.ok, true);
});

Deno.test("the lossy-network scenario drops messages and still commits the client writes", async () => {
  const t = await replayScenario("lossy-network", 2);
  const k = kinds(t);
  for (const kind of ["drop", "propose", "commit", "check"]) {
    assert.ok(k.includes(kind), `no ${kind} step`);
  }
  assert.match(t.outcome.summary, /[1-9]\d* committed/);
  const end = t.steps.at(-1)!.cluster;
  assert.equal(new Set(end.map((n) => n.applied)).size, 1);
});

Deno.test("the membership scenarios replay the same runs as membership_sim_test's two tests", async () => {
  const seed = 3;
  for (
    const [name, script] of [
      ["membership", learnerJoinsAndLeaderLeaves],
      ["joint-membership", jointReplacement],
    ] as const
  ) {
    // The test's run: the shared script on a cluster nobody watches.
    const c = new ReplicaCluster({ seed, ...MEMBERSHIP_CLUSTER });
    const summary = await script(c, (ok, text) => assert.ok(ok, text));
    const t = await replayScenario(name, seed);
    assert.ok(t.outcome.ok, t.outcome.summary);
    assert.equal(t.outcome.summary, summary, name);
    const last = t.steps.at(-1)!;
    assert.equal(last.kind, "check");
    // Same virtual time and the same logs at the end.
    assert.equal(last.timeMs, Math.round(c.scheduler.now * 10) / 10, name);
    for (const n of last.cluster.filter((n) => n.up)) {
      assert.equal(
        n.lastIndex,
        c.node(n.id).replica!.raftLog().lastIndex(),
        `${name}: node ${n.id}`,
      );
    }
  }
});

Deno.test("the membership scenario shows the learner joining and the membership changing", async () => {
  const t = await replayScenario("membership", 1);
  assert.ok(t.outcome.ok, t.outcome.summary);
  assert.deepEqual(t.nodes, [1, 2, 3, 4]);
  assert.ok(
    t.steps.some((s) => s.text === "node 4 is added with an empty disk"),
  );
  assert.ok(t.steps.some((s) => s.text.includes("learners 4")));
});

Deno.test("the joint-membership scenario enters and leaves a joint configuration", async () => {
  const t = await replayScenario("joint-membership", 1);
  assert.ok(t.outcome.ok, t.outcome.summary);
  assert.deepEqual(t.nodes, [1, 2, 3, 4, 5]);
  const joint = t.steps.findIndex((s) =>
    s.text.includes("voters 1, 4, 5 (joint: outgoing voters 1, 2, 3")
  );
  const left = t.steps.findIndex((s) =>
    s.text.endsWith("voters 1, 4, 5") && s.text.startsWith("membership")
  );
  assert.ok(joint >= 0 && left > joint, kinds(t).join());
});

Deno.test("maxSteps bounds the timeline and marks it truncated, and the run still finishes", async () => {
  const t = await replayScenario("lossy-network", 1, { maxSteps: 10 });
  assert.equal(t.steps.length, 10);
  assert.equal(t.truncated, true);
  assert.equal(t.outcome.ok, true);
});

Deno.test("unknown scenarios, bad seeds and bad options are SimErrors with code bad_argument", async () => {
  const bad = (fn: () => Promise<unknown>) =>
    assert.rejects(fn, (e) => isSimError(e, "bad_argument"));
  await bad(() => replayScenario("nope", 1));
  await bad(() => replayScenario("toString", 1));
  await bad(() => replayScenario("__proto__", 1));
  await bad(() => replayScenario("election", -1));
  await bad(() => replayScenario("election", 1.5));
  await bad(() => replayScenario("election", 2 ** 32));
  await bad(() => replayScenario("election", Number.NaN));
  await bad(() => replayScenario("election", 1, { maxSteps: 0 }));
  await bad(() => replayScenario("election", 1, { maxSteps: 1e9 }));
  await bad(() =>
    replayScenario("election", 1, { maxSteps: 5, extra: 1 } as {
      maxSteps: number;
    })
  );
});

const MEMBERSHIP_TEST = "packages/sim/membership_sim_test.ts";

Deno.test("parseSeed reads the lines a failing seeded test prints", () => {
  const file = MEMBERSHIP_TEST;
  const name =
    "a learner catches up, is promoted, and the leader removes itself, under loss and crashes";
  const { error, err } = quietly(() =>
    runSeeded(file, name, [19], () => {
      throw new SimError("not_linearizable", "stale read");
    })
  );
  assert.ok(isSimError(error));
  assert.match(err, /simulation failed with seed 19/);
  // The whole block, the replay line alone, and the first line alone.
  const membership = { scenario: "membership", seed: 19, source: file };
  assert.deepEqual(parseSeed(err), membership);
  const replayLine = err.split("\n").find((l) => l.startsWith("replay:"))!;
  assert.deepEqual(parseSeed(replayLine), membership);
  assert.deepEqual(parseSeed("simulation failed with seed 19"), { seed: 19 });
  assert.deepEqual(parseSeed((error as SimError).replay!), membership);
  // The file's joint-consensus test is the joint-membership scenario.
  assert.deepEqual(
    parseSeed(
      `replay: STRATA_SEED=4 deno test -A ${file} --filter "two of three voters are replaced at once through a joint configuration"`,
    ),
    { scenario: "joint-membership", seed: 4, source: file },
  );
});

Deno.test("parseSeed reads sim CLI failures, other tests' lines, bare numbers and scenario:seed", () => {
  // `deno task sim` runs: the seed and the source (the dashboard's
  // replicated panel replays them).
  assert.deepEqual(
    parseSeed(
      "FAILED seed 1775: replicas did not converge\nreplay: deno task sim --seed 1775",
    ),
    { seed: 1775, source: "deno task sim" },
  );
  assert.deepEqual(
    parseSeed("deno task sim:replicated --seed 8 --bug ack_before_fsync"),
    { seed: 8, source: "deno task sim:replicated" },
  );
  // A lab test has no scenario of its own: the seed alone, not the "2" of "2B".
  assert.deepEqual(
    parseSeed(
      'replay: STRATA_SEED=19 deno test -A packages/sim/raft_lab_test.ts --filter "2B count: elections, agreement and idle use few messages"',
    ),
    { seed: 19, source: "packages/sim/raft_lab_test.ts" },
  );
  assert.deepEqual(parseSeed(" 42\n"), { seed: 42 });
  assert.deepEqual(parseSeed("0"), { seed: 0 });
  assert.deepEqual(parseSeed(String(2 ** 32 - 1)), { seed: 2 ** 32 - 1 });
  assert.deepEqual(parseSeed("partition 42"), {
    scenario: "partition",
    seed: 42,
  });
  assert.deepEqual(parseSeed("leader-crash:7"), {
    scenario: "leader-crash",
    seed: 7,
  });
  assert.deepEqual(parseSeed("unknown-thing 7"), { seed: 7 });
  for (
    const bad of ["", "abc", "-5", "1.5", "seed 4294967296", "x".repeat(30_000)]
  ) {
    assert.throws(
      () => parseSeed(bad),
      (e) => isSimError(e, "bad_argument"),
      bad.slice(0, 20),
    );
  }
});

Deno.test("replayInput runs the scenario a pasted line names, else the selected one", async () => {
  const membership = await replayInput(
    "election",
    `replay: STRATA_SEED=3 deno test -A ${MEMBERSHIP_TEST} --filter "a learner"`,
    { maxSteps: 5 },
  );
  assert.equal(membership.scenario, "membership");
  assert.equal(membership.seed, 3);
  assert.equal(membership.note, undefined);
  const election = await replayInput("election", "12");
  assert.equal(election.scenario, "election");
  assert.equal(election.seed, 12);
  assert.equal(election.note, undefined);
  // A line from a test without a scenario runs the selected one, and says so.
  const lab = await replayInput(
    "partition",
    "replay: STRATA_SEED=19 deno test -A packages/sim/raft_lab_test.ts --filter x",
  );
  assert.equal(lab.scenario, "partition");
  assert.equal(lab.seed, 19);
  assert.match(lab.note ?? "", /raft_lab_test\.ts has no replay scenario/);
});

Deno.test("the safety check finds a doctored timeline's second leader and term regression", async () => {
  const t = structuredClone(await replayScenario("election", 1));
  const step = t.steps.at(-1)!;
  const leader = step.cluster.find((n) => n.role === "leader")!;
  const other = step.cluster.find((n) => n.role !== "leader")!;
  other.role = "leader";
  other.term = leader.term;
  assert.ok(safetyProblems(t).some((p) => p.includes("has leaders")));
  step.cluster[0]!.term = 0;
  assert.ok(safetyProblems(t).some((p) => p.includes("went from term")));
});

Deno.test("for any seed, every scenario passes its checks, terms never decrease per node and each term has at most one leader", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...listScenarios().map((s) => s.name)),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      async (name, seed) => {
        const t = await replayScenario(name, seed);
        assert.ok(t.outcome.ok, `${name} seed ${seed}: ${t.outcome.summary}`);
        assert.deepEqual(safetyProblems(t), [], `${name} seed ${seed}`);
        assert.ok(t.steps.length > 0);
      },
    ),
    { numRuns: 60 },
  );
});
