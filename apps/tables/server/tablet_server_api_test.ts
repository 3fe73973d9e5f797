import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { createTabletServerApi } from "./tablet_server_api.ts";
import { TabletHost } from "./tablet_host.ts";
import { SessionLease } from "./session_lease.ts";
import { openTabletStorage } from "./tablet_storage.ts";

Deno.test("a tablet server whose lease ran out answers not_serving to reads and writes of a tablet it still has open", async () => {
  const root = await Deno.makeTempDir({ prefix: "tserver_api_" });
  let now = 0;
  const lease = new SessionLease(1000, 0.75, () => now);
  lease.renewed(0);
  const host = new TabletHost(openTabletStorage(root));
  await host.openTablet(
    {
      id: "t1",
      table: "t",
      start: "",
      end: null,
      dir: "t/t1",
      server: "s1",
    },
    { name: "t", families: [{ name: "f" }] },
    1,
  );
  const app = createTabletServerApi({
    id: "s1",
    host,
    lease: () => lease,
    notServingReason: () => "the session lease ran out",
  }, { auth: "off", hosts: "any" });
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
    await host.closeAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("/v1/status names the server log's blocks and records when there is one", async () => {
  const root = await Deno.makeTempDir({ prefix: "tserver_api_" });
  const host = new TabletHost(openTabletStorage(root));
  let stats: { blocks: number; records: number } | undefined;
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
  } finally {
    await host.closeAll();
    await Deno.remove(root, { recursive: true });
  }
});
