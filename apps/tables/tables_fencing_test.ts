/**
 * Fencing and bad input on a real cell (kv ×3, one master, tablet servers
 * ×2; tablets on GFS with 3 chunkservers under STRATA_LONG=1, else in a
 * shared local directory), started once for the file: a tablet server paused with SIGSTOP past
 * its kv session's TTL answers neither the reads nor the writes queued at
 * its door when it resumes; bad input to a master and a tablet server is
 * a clear 4xx and the cell keeps serving.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { startTablesStack } from "./stack_launcher.ts";
import { rowText, TablesClient } from "./client/tables_client.ts";
import { checkKvHistory, type KvInput, type KvOperation } from "@strata/sim";
import { runKvOp } from "./_kv_history.ts";

/**
 * With STRATA_LONG=1 the tablets live on GFS (as the design has them),
 * with a longer session TTL: GFS's processes load the machine, and a 2 s
 * TTL then lapses by itself. By default they live in a shared local
 * directory, which keeps this file short.
 */
const ON_GFS = Deno.env.get("STRATA_LONG") === "1";
const TTL_MS = ON_GFS ? 4000 : 2000;
const dec = new TextDecoder();
/** Masters split a tablet past this size in this test. */
const SPLIT_BYTES = 256 * 1024;

Deno.test(`tables cell (${ON_GFS ? "GFS" : "local"} storage): a paused tablet server is fenced; bad input is a 4xx`, async (t) => {
  const dataRoot = await Deno.makeTempDir({ prefix: "tables_fencing_" });
  const stack = await startTablesStack({
    dataRoot,
    masters: 1,
    servers: 2,
    sessionTtlMs: TTL_MS,
    reconcileMs: 300,
    splitBytes: SPLIT_BYTES,
    // No moves by load: on an idle machine the linearizability step's
    // four clients pass 500 ops/s on one tablet, and the master would
    // move the tablet it just moved back before the step checks it.
    masterFlags: ["--balance-factor", "0"],
    ...(ON_GFS
      ? { gfs: { masters: 1, chunkservers: 3, chunkBytes: 1 << 20 } }
      : {}),
  });
  const { admin, write, read } = stack.secrets.tokens;
  using client = new TablesClient(stack.masterUrls(), { token: admin });
  /**
   * Waits (bounded) until every tablet is served and the map stays the
   * same for a second: on GFS opening a tablet takes a while, and the
   * master's balancing pass may still be moving one.
   */
  const settled = async () => {
    const end = performance.now() + 30_000;
    let last = "";
    while (performance.now() < end) {
      const map = (await client.tablets()).map((x) => [x.id, x.url]);
      const now = JSON.stringify(map);
      if (now === last && map.every(([, url]) => url !== null)) return;
      last = now;
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error("the tablet map did not settle in 30 s");
  };
  try {
    await client.createTable("fence", [{ name: "f" }]);
    await client.put("fence", "r", "f", "q", "v1");

    await t.step(
      `a tablet server stopped with SIGSTOP for ${
        2.5 * TTL_MS
      } ms answers no queued read or write when resumed`,
      async () => {
        const [tablet] = await client.tablets("fence");
        const paused = stack.servers.get(tablet!.server!)!;
        const other = [...stack.servers.values()].find((s) =>
          s.id !== paused.id
        )!;
        await stack.signal("server", paused.id, "SIGSTOP");
        const stoppedAt = performance.now();
        // Requests queued at the stopped server's door.
        const h = { authorization: `Bearer ${write}` };
        const queuedRead = fetch(`${paused.url}/v1/tables/fence/row?key=r`, {
          headers: h,
        });
        const queuedWrite = fetch(`${paused.url}/v1/tables/fence/mutate`, {
          method: "POST",
          headers: { ...h, "content-type": "application/json" },
          body: JSON.stringify({
            row: "r",
            mutations: [{
              op: "put",
              family: "f",
              qualifier: "q",
              value: "stale",
            }],
          }),
        });
        await new Promise((r) => setTimeout(r, 2.5 * TTL_MS));
        await stack.signal("server", paused.id, "SIGCONT");
        const [r1, r2] = await Promise.all([queuedRead, queuedWrite]);
        const b1 = await r1.json();
        const b2 = await r2.json();
        console.log(
          `after ${
            Math.round(performance.now() - stoppedAt)
          } ms stopped: read ${r1.status} ${b1.error?.code}, write ${r2.status} ${b2.error?.code}`,
        );
        ok(
          r1.status === 503 || r1.status === 409,
          `read answered ${r1.status}`,
        );
        strictEqual(b1.error.code, "not_serving");
        ok(
          r2.status === 503 || r2.status === 409,
          `write answered ${r2.status}`,
        );
        strictEqual(b2.error.code, "not_serving");
        // The tablet is served again (by whichever server the master chose),
        // with the value written before the pause, not the fenced one.
        deepStrictEqual(rowText(await client.getRow("fence", "r")), {
          "f:q": "v1",
        });
        await client.put("fence", "r", "f", "q", "v2");
        deepStrictEqual(rowText(await client.getRow("fence", "r")), {
          "f:q": "v2",
        });
        const [now] = await client.tablets("fence");
        console.log(
          `tablet now on ${
            now!.server
          } (paused ${paused.id}, other ${other.id})`,
        );
      },
    );

    await t.step(
      `a tablet grown past ${SPLIT_BYTES} bytes is split by the master, and every row stays readable`,
      async () => {
        await client.createTable("big", [{ name: "f" }]);
        const value = "x".repeat(1024);
        const rows = Array.from(
          { length: 400 },
          (_, i) => `row-${String(i).padStart(4, "0")}`,
        );
        for (let i = 0; i < rows.length; i += 20) {
          await Promise.all(
            rows.slice(i, i + 20).map((r) =>
              client.put("big", r, "f", "q", value)
            ),
          );
        }
        const started = performance.now();
        let tablets = await client.tablets("big");
        while (tablets.length < 2 && performance.now() - started < 20_000) {
          await new Promise((r) => setTimeout(r, 200));
          tablets = await client.tablets("big");
        }
        console.log(
          `"big" has ${tablets.length} tablets ${
            Math.round(performance.now() - started)
          } ms after its last write`,
        );
        ok(tablets.length >= 2, "split by size");
        let n = 0;
        for await (const r of client.scan("big")) {
          strictEqual(dec.decode(r.key), rows[n]);
          n++;
        }
        strictEqual(n, rows.length);
      },
    );

    await t.step(
      "concurrent clients during a split and a move: every row's history is linearizable",
      async () => {
        await client.createTable("lin", [{ name: "f" }]);
        await settled();
        const rows = ["r1", "r2", "r3"];
        const history: KvOperation[] = [];
        const t0 = performance.now();
        const now = () => performance.now() - t0;
        let stop = false;
        const worker = async (id: number) => {
          using c = new TablesClient(stack.masterUrls(), {
            token: write,
            retryForMs: 20_000,
          });
          for (let n = 0; !stop; n++) {
            const key = rows[(id + n) % rows.length]!;
            const value = `${id}-${n}`;
            const kind = n % 3;
            const input: KvInput = kind === 0
              ? { op: "put", key, value }
              : kind === 1
              ? { op: "get", key }
              : { op: "cas", key, expected: `${id}-${n - 2}`, value };
            history.push(await runKvOp(c, "lin", id, input, now));
          }
        };
        const workers = [0, 1, 2, 3].map(worker);
        await new Promise((r) => setTimeout(r, 700));
        const [whole] = await client.tablets("lin");
        const halves = await client.splitTablet(whole!.id, "r2");
        await settled();
        const right = (await client.tablets("lin")).find((x) =>
          dec.decode(x.start) === "r2"
        )!;
        const target = [...stack.servers.keys()].find((id) =>
          id !== right.server
        )!;
        await client.moveTablet(right.id, target);
        await new Promise((r) => setTimeout(r, 1500));
        stop = true;
        await Promise.all(workers);
        const after = await client.tablets("lin");
        strictEqual(after.length, 2, JSON.stringify(halves));
        strictEqual(
          after.find((x) => x.id === right.id)?.server,
          target,
          "moved",
        );
        const done = history.filter((o) => o.output !== undefined).length;
        console.log(
          `${history.length} operations (${done} answered) across a split and a move`,
        );
        ok(done > 30, "the clients made progress");
        const verdict = checkKvHistory(history);
        ok(verdict.ok, JSON.stringify(verdict));
      },
    );

    await t.step(
      "bad input gets a clear 4xx and the cell keeps serving",
      async () => {
        const master = stack.masterUrls()[0]!;
        await settled();
        const [tablet] = await client.tablets("fence");
        const server = stack.servers.get(tablet!.server!)!.url;
        const call = async (
          url: string,
          init: RequestInit & { token?: string } = {},
        ) => {
          const headers: Record<string, string> = {
            ...(init.token === ""
              ? {}
              : { authorization: `Bearer ${init.token ?? admin}` }),
            ...(init.body !== undefined
              ? { "content-type": "application/json" }
              : {}),
            ...(init.headers as Record<string, string> | undefined),
          };
          const r = await fetch(url, { ...init, headers });
          const body = await r.json();
          return {
            status: r.status,
            code: body.error?.code as string,
            message: body.error?.message as string,
          };
        };
        const post = (url: string, body: unknown, token?: string) =>
          call(url, {
            method: "POST",
            body: JSON.stringify(body),
            ...(token !== undefined ? { token } : {}),
          });
        const mutate = (body: unknown) =>
          post(`${server}/v1/tables/fence/mutate`, body);
        const cases: Array<
          [
            string,
            Promise<{ status: number; code: string; message: string }>,
            number,
          ]
        > = [
          [
            "bad table name at the master",
            post(`${master}/v1/tables`, {
              name: "9 bad!",
              families: [{ name: "f" }],
            }),
            400,
          ],
          [
            "no families",
            post(`${master}/v1/tables`, { name: "nofam", families: [] }),
            400,
          ],
          [
            "table exists",
            post(`${master}/v1/tables`, {
              name: "fence",
              families: [{ name: "f" }],
            }),
            409,
          ],
          [
            "bad table name at a server",
            call(`${server}/v1/tables/bad%20name/row?key=a`),
            400,
          ],
          ["unknown table", call(`${master}/v1/tables/nosuch`), 404],
          [
            "malformed mutation",
            mutate({ row: "r", mutations: [{ op: "put", family: "f" }] }),
            400,
          ],
          [
            "unknown op",
            mutate({ row: "r", mutations: [{ op: "explode" }] }),
            400,
          ],
          [
            "unknown family",
            mutate({
              row: "r",
              mutations: [{
                op: "put",
                family: "nope",
                qualifier: "q",
                value: "v",
              }],
            }),
            400,
          ],
          [
            "empty row key",
            mutate({ row: "", mutations: [{ op: "deleteRow" }] }),
            400,
          ],
          [
            "row key too long",
            mutate({ row: "k".repeat(5000), mutations: [{ op: "deleteRow" }] }),
            400,
          ],
          [
            "value too large",
            mutate({
              row: "r",
              mutations: [{
                op: "put",
                family: "f",
                qualifier: "q",
                value: "x".repeat(1.5 * 2 ** 20),
              }],
            }),
            413,
          ],
          [
            "bad base64",
            mutate({
              row: "!!",
              encoding: "base64",
              mutations: [{ op: "deleteRow" }],
            }),
            400,
          ],
          [
            "not JSON",
            call(`${server}/v1/tables/fence/mutate`, {
              method: "POST",
              body: "{nope",
            }),
            400,
          ],
          [
            "text/plain body",
            call(`${server}/v1/tables/fence/mutate`, {
              method: "POST",
              body: "{}",
              headers: { "content-type": "text/plain" },
            }),
            415,
          ],
          [
            "inverted scan",
            call(`${server}/v1/tables/fence/scan?start=z&end=a`),
            400,
          ],
          ["bad limit", call(`${server}/v1/tables/fence/scan?limit=-1`), 400],
          [
            "bad versions",
            call(`${server}/v1/tables/fence/row?key=r&versions=0`),
            400,
          ],
          [
            "no token",
            call(`${server}/v1/tables/fence/row?key=r`, { token: "" }),
            401,
          ],
          [
            "read token writes",
            post(`${server}/v1/tables/fence/mutate`, {
              row: "r",
              mutations: [{ op: "deleteRow" }],
            }, read),
            403,
          ],
          [
            "write token opens a tablet",
            post(`${server}/v1/tablets/open`, {}, write),
            403,
          ],
          [
            "a tablet path leaving the storage root",
            post(`${server}/v1/tablets/open`, {
              tablet: {
                id: "x",
                table: "fence",
                start: "",
                end: null,
                dir: "../../etc",
                server: "ts1",
              },
              schema: { name: "fence", families: [{ name: "f" }] },
              token: 1,
            }),
            400,
          ],
          [
            "row of a tablet elsewhere",
            call(`${server}/v1/tables/nosuch/row?key=r`),
            409,
          ],
        ];
        for (const [what, pending, status] of cases) {
          const r = await pending;
          strictEqual(
            r.status,
            status,
            `${what}: ${r.status} ${r.code} ${r.message}`,
          );
          ok(
            typeof r.code === "string" && typeof r.message === "string" &&
              r.message.length > 0,
            what,
          );
        }
        deepStrictEqual(rowText(await client.getRow("fence", "r")), {
          "f:q": "v2",
        });
      },
    );
  } finally {
    await stack.stop();
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
});
