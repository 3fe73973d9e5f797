// Joint membership requests: the pure planner, and the HTTP route on a real
// (in-process, single-voter) node: 400 for a malformed request, duplicate
// ids or no voter left, 404/409 for changes that do not fit the members,
// 403 without the admin role, and 409 for a change while another one holds
// the cluster in a joint configuration (which /v1/cluster reports).
import assert from "node:assert/strict";
import { TokenAuth } from "@strata/edge";
import { createHttpApi, DEFAULT_LIMITS } from "./http_api.ts";
import { startOneNode } from "./_one_node.ts";
import { ServiceError } from "./kv_service.ts";
import { jointChangesSchema, planMemberChanges } from "./member_changes.ts";

const THREE = { voters: [1, 2, 3], learners: [] };
const add = (id: number) => ({
  action: "add" as const,
  id,
  peerAddress: `127.0.0.1:${7000 + id}`,
  learner: false,
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ServiceError) return e.code;
    throw e;
  }
  return undefined;
}

Deno.test("planning: replacing two of three voters gives one joint change carrying the new addresses", () => {
  const plan = planMemberChanges(THREE, [
    add(4),
    add(5),
    { action: "remove", id: 2 },
    { action: "remove", id: 3 },
  ]);
  assert.deepEqual(plan.changes, [
    { type: "addNode", nodeId: 4 },
    { type: "addNode", nodeId: 5 },
    { type: "removeNode", nodeId: 2 },
    { type: "removeNode", nodeId: 3 },
  ]);
  assert.deepEqual(plan.addresses, {
    4: { peer: "127.0.0.1:7004" },
    5: { peer: "127.0.0.1:7005" },
  });
  assert.deepEqual(plan.after, { voters: [1, 4, 5], learners: [] });
  assert.deepEqual(plan.removed, [2, 3]);
});

Deno.test("planning: promote and demote swap roles; learners are added as learners", () => {
  const plan = planMemberChanges({ voters: [1, 2, 3], learners: [4] }, [
    { action: "promote", id: 4 },
    { action: "demote", id: 3 },
    { ...add(6), learner: true },
  ]);
  assert.deepEqual(plan.changes, [
    { type: "addNode", nodeId: 4 },
    { type: "addLearner", nodeId: 3 },
    { type: "addLearner", nodeId: 6 },
  ]);
  assert.deepEqual(plan.after, { voters: [1, 2, 4], learners: [3, 6] });
});

Deno.test("planning: changes that do not fit the members are refused with the right code", () => {
  const remove = (id: number) => ({ action: "remove" as const, id });
  assert.equal(codeOf(() => planMemberChanges(THREE, [add(2)])), "conflict");
  assert.equal(
    codeOf(() => planMemberChanges(THREE, [{ action: "promote", id: 2 }])),
    "conflict",
  );
  assert.equal(
    codeOf(() => planMemberChanges(THREE, [{ action: "demote", id: 9 }])),
    "conflict",
  );
  assert.equal(
    codeOf(() => planMemberChanges(THREE, [remove(9)])),
    "not_found",
  );
  assert.equal(
    codeOf(() => planMemberChanges(THREE, [remove(1), remove(2), remove(3)])),
    "bad_request",
  );
  assert.equal(
    codeOf(() =>
      planMemberChanges({ voters: [1, 2], learners: [3] }, [
        { action: "demote", id: 1 },
        { action: "demote", id: 2 },
      ])
    ),
    "bad_request",
  );
  assert.equal(
    codeOf(() =>
      planMemberChanges({ ...THREE, votersOutgoing: [1, 2] }, [add(4)])
    ),
    "conflict",
  );
});

Deno.test("the request schema refuses duplicate ids, empty lists and bad addresses", () => {
  const bad = (body: unknown) => !jointChangesSchema.safeParse(body).success;
  assert.ok(bad({ changes: [] }));
  assert.ok(bad({ changes: [add(4), { action: "remove", id: 4 }] }));
  assert.ok(bad({ changes: [{ ...add(4), peerAddress: "nowhere" }] }));
  assert.ok(bad({ changes: [{ ...add(4), peerAddress: "h:99999" }] }));
  assert.ok(bad({ changes: [{ action: "remove", id: 0 }] }));
  assert.ok(bad({ changes: [{ action: "remove", id: 2, extra: 1 }] }));
  assert.ok(!bad({ changes: [add(4), { action: "remove", id: 2 }] }));
});

const TOKENS = {
  read: "read-token-0123456789",
  write: "write-token-0123456789",
  admin: "admin-token-0123456789",
};

Deno.test({
  name:
    "POST /v1/cluster/changes on a real node: clear 4xx answers, and 409 while a change holds the cluster joint",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "strata-kv-changes-" });
    const node = await startOneNode(dir);
    const app = createHttpApi(
      node,
      { auth: new TokenAuth(TOKENS), hosts: ["localhost"] },
      // A short deadline: the stuck change below answers 504 quickly.
      { ...DEFAULT_LIMITS, requestTimeoutMs: 1500 },
    );
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      token = TOKENS.admin,
    ) => {
      const res = await app.request(path, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
      });
      return {
        status: res.status,
        json: await res.json() as Record<string, unknown> & {
          error?: { code: string; message: string };
        },
      };
    };
    try {
      // Leading once a write goes through.
      const end = performance.now() + 10_000;
      while ((await call("POST", "/v1/txn", {})).status !== 200) {
        assert.ok(performance.now() < end, "the single node never led");
        await new Promise((r) => setTimeout(r, 20));
      }
      const path = "/v1/cluster/changes";
      let r = await call("POST", path, { changes: [add(4), add(4)] });
      assert.equal(r.status, 400);
      assert.equal(r.json.error?.code, "bad_request");
      assert.match(r.json.error!.message, /more than one change/);

      r = await call("POST", path, { changes: [{ action: "remove", id: 1 }] });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(r.json.error!.message, /no voter/);

      r = await call("POST", path, { changes: [{ action: "remove", id: 7 }] });
      assert.equal(r.status, 404);
      r = await call("POST", path, { changes: [add(1)] });
      assert.equal(r.status, 409);
      r = await call("POST", path, "not an object");
      assert.equal(r.status, 400);
      r = await call("POST", path, { changes: [add(4)] }, TOKENS.write);
      assert.equal(r.status, 403);

      // Two unreachable voters: the joint configuration is entered (the old
      // voter set, {1}, commits it) but cannot be left without a majority of
      // {1, 4, 5}. The request times out; the cluster stays joint.
      r = await call("POST", path, { changes: [add(4), add(5)] });
      assert.equal(r.status, 504, JSON.stringify(r.json));
      const cluster = await call("GET", "/v1/cluster");
      assert.equal(cluster.json.joint, true);
      assert.deepEqual(cluster.json.votersOutgoing, [1]);
      assert.deepEqual(cluster.json.voters, [1, 4, 5]);

      r = await call("POST", path, { changes: [add(6)] });
      assert.equal(r.status, 409);
      assert.match(r.json.error!.message, /joint configuration/);
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
