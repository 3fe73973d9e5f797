import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { createTabletServerApi } from "./tablet_server_api.ts";
import { TabletHost } from "./tablet_host.ts";
import { SessionLease } from "./session_lease.ts";
import { openTabletStorage } from "./tablet_storage.ts";
import { mutateBody } from "../shared/wire.ts";
import type { GroupCommitStats } from "../storage/server_log.ts";

/**
 * A tablet server's API over one open tablet `t/t1` (family `f`) whose
 * serving lease (TTL `ttlMs`) reads its time from `clock`.
 */
async function oneTabletApi(ttlMs: number, clock: () => number) {
  const root = await Deno.makeTempDir({ prefix: "tserver_api_" });
  const lease = new SessionLease(ttlMs, 0.75, clock);
  lease.renewed(0);
  const host = new TabletHost(openTabletStorage(root));
  await host.openTablet(
    { id: "t1", table: "t", start: "", end: null, dir: "t/t1", server: "s1" },
    { name: "t", families: [{ name: "f" }] },
    1,
  );
  const app = createTabletServerApi({
    id: "s1",
    host,
    lease: () => lease,
    notServingReason: () => "the session lease ran out",
  }, { auth: "off", hosts: "any" });
  const close = async () => {
    await host.closeAll();
    await Deno.remove(root, { recursive: true });
  };
  return { app, lease, close };
}

Deno.test("a tablet server whose lease ran out answers not_serving to reads and writes of a tablet it still has open", async () => {
  let now = 0;
  const { app, lease, close } = await oneTabletApi(1000, () => now);
  const write = (value: string) =>
    app.request("/v1/tables/t/mutate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        row: "r",
        mutations: [{ op: "put", family: "f", qualifier: "q", value }],
      }),
    });
  const read = () => app.request("/v1/tables/t/row?key=r");
  try {
    strictEqual((await write("v1")).status, 200);
    now = 749;
    strictEqual((await read()).status, 200);
    now = 750; // the send time of the last keep-alive + 0.75 × TTL
    const w = await write("stale");
    strictEqual(w.status, 503);
    strictEqual((await w.json()).error.code, "not_serving");
    const r = await read();
    strictEqual(r.status, 503);
    strictEqual((await r.json()).error.code, "not_serving");
    // The refused write was not applied.
    lease.renewed(now);
    deepStrictEqual(
      (await (await read()).json()).cells.map((c: { value: string }) =>
        c.value
      ),
      ["v1"],
    );
  } finally {
    await close();
  }
});

Deno.test("/v1/status names the server log's blocks and records when there is one, and its group-commit counters (ms rounded)", async () => {
  const root = await Deno.makeTempDir({ prefix: "tserver_api_" });
  const host = new TabletHost(openTabletStorage(root));
  let stats:
    | { blocks: number; records: number } & Partial<GroupCommitStats>
    | undefined;
  const app = createTabletServerApi({
    id: "s1",
    host,
    lease: () => undefined,
    notServingReason: () => "not registered",
    logStats: () => stats,
  }, { auth: "off", hosts: "any" });
  try {
    const status = async () => await (await app.request("/v1/status")).json();
    strictEqual((await status()).log, undefined);
    stats = { blocks: 3, records: 140 };
    deepStrictEqual((await status()).log, { blocks: 3, records: 140 });
    const counters = {
      turnMs: 12.4,
      gathers: 2,
      gathersFilled: 1,
      gatherMs: 7.6,
      blockMs: 30.5,
      idleSpells: 1,
    };
    stats = { blocks: 3, records: 140, ...counters };
    deepStrictEqual((await status()).log, {
      blocks: 3,
      records: 140,
      ...counters,
      turnMs: 12,
      gatherMs: 8,
      blockMs: 31,
    });
  } finally {
    await host.closeAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a row write's body: zod's words for every refusal; bodies with keys in any order are applied", async () => {
  const { app, close } = await oneTabletApi(60_000, () => 0);
  const post = (body: string) =>
    app.request("/v1/tables/t/mutate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  try {
    const put = { op: "put", family: "f", qualifier: "q", value: "v" };
    for (
      const bad of [
        { row: "r", mutations: [put], extra: 1 },
        { row: "r", mutations: [{ ...put, family: "" }] },
        { row: "r", mutations: [{ ...put, timestamp: -1 }] },
        { row: "r", encoding: "hex", mutations: [put] },
        { row: "r", mutations: [] },
        { mutations: [put] },
      ]
    ) {
      const res = await post(JSON.stringify(bad));
      strictEqual(res.status, 400);
      const z = mutateBody.safeParse(bad);
      strictEqual(z.success, false);
      const issue = z.error!.issues[0]!;
      const where = issue.path.length ? `body.${issue.path.join(".")}` : "body";
      strictEqual(
        (await res.json()).error.message,
        `${where}: ${issue.message}`,
      );
    }
    // Keys in another order, no encoding: applied all the same.
    const res = await post(
      '{"mutations":[{"value":"v2","qualifier":"q","family":"f","op":"put"}],"row":"r"}',
    );
    strictEqual(res.status, 200);
    strictEqual((await res.json()).applied, 1);
    const row = await (await app.request("/v1/tables/t/row?key=r")).json();
    deepStrictEqual(row.cells.map((c: { value: string }) => c.value), ["v2"]);
  } finally {
    await close();
  }
});
