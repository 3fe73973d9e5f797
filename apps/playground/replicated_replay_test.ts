import assert from "node:assert/strict";
import type { KvOperation } from "@strata/sim";
import { buildReplay, misfits, opText } from "./replicated_replay.ts";

const put: KvOperation = {
  clientId: 1,
  input: { op: "put", key: "a", value: "1.1" },
  call: 100.25,
  return: 180.5,
  output: { ok: true },
};
const staleGet: KvOperation = {
  clientId: 2,
  input: { op: "get", key: "a" },
  call: 200.123456789,
  return: 260,
  output: { value: null },
};
const lost: KvOperation = {
  clientId: 3,
  input: { op: "put", key: "a", value: "3.1" },
  call: 150,
};
const failure =
  `not linearizable: key "a": no linearization of these 3 operations exists; the longest linearizable prefix has 1, ending with: client 1 put "1.1" -> ok [100.25, 180.5]; it leaves the state "1.1"
none of these can come next:
  client 3 put "3.1" -> ? [150, ∞] (fits here, but every continuation fails)
  client 2 get -> null [200.123456789, 260] (does not fit this state)`;

const input = {
  machine: "kv",
  seed: 5,
  bug: "lease_counts_ticks",
  command: "deno task sim:replicated --seed 5 --bug lease_counts_ticks",
  ok: false,
  code: "not_linearizable",
  failure,
  nodes: 3,
  trace: [
    "50.0 node 1 leads term 2",
    "120.0 node 1 is stopped for 900 ms and cut off from its peers",
    "140.0 node 2 crashes",
    "170.0 node 2 restarts",
    "190.0 node 3 leads term 3",
    "1020.0 node 1 resumes",
    '12403.6 FAIL not linearizable: key "a"',
  ],
  history: [put, staleGet, lost],
  observed: [
    { kind: "tick" as const, atMs: 10, node: 1 },
    {
      kind: "send" as const,
      atMs: 40,
      from: 1,
      to: 2,
      type: "voteResp",
      term: 2,
      reject: false,
    },
    {
      kind: "send" as const,
      atMs: 60,
      from: 1,
      to: 3,
      type: "app",
      term: 2,
      entries: 2,
    },
    {
      kind: "send" as const,
      atMs: 185,
      from: 3,
      to: 1,
      type: "heartbeat",
      term: 4,
    },
  ],
};

Deno.test("a replicated replay merges trace, messages, ticks and operations in time order, with the cluster after each step", () => {
  const r = buildReplay(input);
  assert.deepEqual(r.nodes, [1, 2, 3]);
  const times = r.steps.map((s) => s.atMs);
  assert.deepEqual(times, [...times].sort((a, b) => a - b));
  assert.deepEqual(
    r.steps.map((s) => s.kind),
    [
      "tick",
      "message",
      "leader",
      "message",
      "pause",
      "crash",
      "op", // the put with no answer, at its call
      "restart",
      "op", // the put answered at 180.5
      "message",
      "leader",
      "op",
      "resume",
      "fail",
    ],
  );
  assert.equal(r.steps[3]!.text, "1 → 3 app (term 2, 2 entries)");
  const at = (kind: string, n = 0) =>
    r.steps.filter((s) => s.kind === kind)[n]!.cluster;
  assert.deepEqual(at("pause")[0], {
    id: 1,
    up: true,
    paused: true,
    term: 2,
    leads: true,
  });
  assert.equal(at("crash")[1]!.up, false);
  assert.equal(at("restart")[1]!.up, true);
  // A newer leader: the old one (paused) no longer counts as leading.
  const after = at("leader", 1);
  assert.deepEqual(after.map((n) => n.leads), [false, false, true]);
  assert.equal(at("resume")[0]!.paused, false);
});

Deno.test("the operations the checker could not place and the failed check are the violation steps", () => {
  assert.deepEqual([...misfits(failure, input.history)], [staleGet]);
  const r = buildReplay(input);
  const marked = r.violationSteps.map((i) => r.steps[i]!);
  assert.deepEqual(marked.map((s) => s.kind), ["op", "fail"]);
  assert.equal(marked[0]!.text, opText(staleGet));
  assert.match(marked[0]!.text, /^client 2 get a -> \(none\)/);
  assert.match(opText(lost), /-> \? \(no answer/);
  // An invariant failure marks only its FAIL line.
  const inv = buildReplay({
    ...input,
    code: "invariant",
    failure: "two leaders in term 3: 1 and 3",
  });
  assert.deepEqual(inv.violationSteps.map((i) => inv.steps[i]!.kind), [
    "fail",
  ]);
  const passed = buildReplay({
    ...input,
    ok: true,
    code: undefined,
    failure: undefined,
    trace: input.trace.slice(0, -1),
  });
  assert.deepEqual(passed.violationSteps, []);
  assert.equal(passed.failure, null);
});

Deno.test("over the step limit, ticks go first, then heartbeats, then the earliest steps; the cluster state still counts them", () => {
  const r = buildReplay(input, 12);
  assert.deepEqual(r.omitted, ["1 ticks", "1 heartbeats"]);
  assert.equal(r.steps.length, 12);
  const tight = buildReplay(input, 5);
  assert.deepEqual(tight.omitted, [
    "1 ticks",
    "1 heartbeats",
    "the first 7 steps",
  ]);
  assert.equal(tight.steps.length, 5);
  assert.equal(tight.steps.at(-1)!.kind, "fail");
  // The heartbeat left out still raised node 3's term.
  assert.equal(tight.steps.at(-1)!.cluster[2]!.term, 4);
});

Deno.test("observing a replicated run does not change it: the same seed gives the same trace and history with or without observe", async () => {
  const { runReplicatedKvSimulation } = await import("@strata/sim/replicated");
  const seen: string[] = [];
  const plain = await runReplicatedKvSimulation({ seed: 3, workloadMs: 4000 });
  const watched = await runReplicatedKvSimulation({
    seed: 3,
    workloadMs: 4000,
    observe: (e) => seen.push(e.kind),
  });
  assert.ok(seen.includes("send") && seen.includes("tick"));
  assert.deepEqual(watched.trace, plain.trace);
  assert.deepEqual(watched.history, plain.history);
  assert.deepEqual(watched.stats, plain.stats);
});
