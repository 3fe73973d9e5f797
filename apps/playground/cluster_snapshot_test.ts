import assert from "node:assert/strict";
import {
  type MasterInput,
  type MasterStatus,
  summarizeMasters,
} from "./cluster_snapshot.ts";
import { MasterStatusSchema } from "./node_responses.ts";

/** What the collector keeps of a `/v1/master` answer (null: not that shape). */
function parseMasterStatus(raw: unknown): MasterStatus | null {
  const r = MasterStatusSchema.safeParse(raw);
  return r.success ? r.data : null;
}

const url = (i: number) => `http://127.0.0.1:${7400 + i}`;

function status(
  role: string,
  term: number,
  extra: Partial<MasterStatus> = {},
): MasterStatus {
  return {
    serving: role === "leader",
    role,
    term,
    leader: 1,
    commitIndex: 10,
    appliedIndex: 9,
    ...extra,
  };
}

Deno.test("the /v1/master schema keeps the shown fields of GET /v1/master and refuses other shapes", () => {
  const replicated = parseMasterStatus({
    url: url(0),
    serving: true,
    appliedIndex: 12,
    replicated: true,
    id: 1,
    role: "leader",
    term: 3,
    leader: 1,
    leaderUrl: url(0),
    commitIndex: 12,
    members: [],
  });
  assert.deepEqual(replicated, {
    serving: true,
    role: "leader",
    term: 3,
    leader: 1,
    commitIndex: 12,
    appliedIndex: 12,
  });
  // A single master on a local op log: no term, no commit index.
  assert.deepEqual(
    parseMasterStatus({
      url: url(0),
      serving: true,
      appliedIndex: 4,
      replicated: false,
      role: "leader",
    }),
    { serving: true, role: "leader", appliedIndex: 4 },
  );
  for (
    const bad of [
      null,
      "leader",
      {},
      { serving: "yes", role: "leader" },
      { serving: true, role: "leader", term: -1 },
      { serving: true, role: "leader", term: 1.5 },
    ]
  ) {
    assert.equal(parseMasterStatus(bad), null, JSON.stringify(bad));
  }
});

Deno.test("summarizeMasters: one card per master, the serving one is the leader", () => {
  const inputs: MasterInput[] = [
    { url: url(0), process: "up", status: status("follower", 2) },
    { url: url(1), process: "up", status: status("leader", 2, { leader: 2 }) },
    { url: url(2), process: "up", status: status("preCandidate", 1) },
  ];
  const { masters, leaderIndex } = summarizeMasters(inputs);
  assert.equal(leaderIndex, 1);
  assert.deepEqual(masters.map((m) => [m.index, m.role, m.term]), [
    [0, "follower", 2],
    [1, "leader", 2],
    // The pre-vote phase is shown as the election it is.
    [2, "candidate", 1],
  ]);
  assert.deepEqual(masters[1], {
    index: 1,
    url: url(1),
    process: "up",
    reachable: true,
    role: "leader",
    serving: true,
    term: 2,
    leader: 2,
    commitIndex: 10,
    appliedIndex: 9,
  });
});

Deno.test("summarizeMasters: a killed or silent master is unknown and never leads; no serving master means no leader", () => {
  const { masters, leaderIndex } = summarizeMasters([
    // A stale answer of a killed process is ignored.
    { url: url(0), process: "killed", status: status("leader", 2) },
    { url: url(1), process: "up", status: null },
    {
      url: url(2),
      process: "up",
      status: status("candidate", 3, { leader: 0 }),
    },
  ]);
  assert.equal(leaderIndex, null);
  assert.deepEqual(
    masters.map((m) => [m.process, m.reachable, m.role, m.serving, m.term]),
    [
      ["killed", false, "unknown", false, null],
      ["up", false, "unknown", false, null],
      ["up", true, "candidate", false, 3],
    ],
  );
  assert.equal(masters[2]!.leader, null, "leader 0 means none");
});

Deno.test("summarizeMasters: a leader that has not caught up does not serve yet; of two serving, the newer term wins", () => {
  const catchingUp = summarizeMasters([
    {
      url: url(0),
      process: "up",
      status: status("leader", 4, { serving: false }),
    },
    { url: url(1), process: "up", status: status("follower", 4) },
  ]);
  assert.equal(catchingUp.leaderIndex, null);
  assert.equal(catchingUp.masters[0]!.role, "leader");
  const twoClaims = summarizeMasters([
    { url: url(0), process: "up", status: status("leader", 5) },
    { url: url(1), process: "up", status: status("leader", 6) },
    { url: url(2), process: "up", status: status("leader", 4) },
  ]);
  assert.equal(twoClaims.leaderIndex, 1);
});
