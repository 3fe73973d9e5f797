/**
 * The "kill a chunkserver under load; restart the whole stack:
 * nothing acknowledged lost", through the tables stack with real
 * processes: kv ×3, GFS (one master, 4 chunkservers), one tables master,
 * tablet servers ×2. Writers put distinct rows; a chunkserver holding a
 * replica of a tablet's commit log is killed with SIGKILL; the writers go
 * on; then every process is stopped and the stack is started again on the
 * same data. Every acknowledged row is read back exactly once.
 *
 * It starts the stack twice (~1.5–3 min on a loaded machine), so it runs
 * only with STRATA_LONG=1 (`deno task test:long`). Before the chunkserver
 * kill, a tablet server's commit log is sealed under it: it must drop its
 * session, register again with a new log, and lose nothing acknowledged.
 */
import { ok, strictEqual } from "node:assert/strict";
import { GfsClient } from "@strata/gfs";
import { freePort } from "@strata/process";
import { startTablesStack, type TablesStackOptions } from "./stack_launcher.ts";
import { TablesClient, TablesClientError } from "./client/tables_client.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const dec = new TextDecoder();

/** Polls `done` every 50 ms. @throws Error after `ms`. */
async function waitFor(what: string, done: () => boolean, ms: number) {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePorts(n: number): number[] {
  return Array.from({ length: n }, () => freePort());
}

Deno.test({
  name:
    "tables on GFS: a chunkserver killed under writes, then the whole stack restarted: nothing acknowledged is lost or doubled",
  ignore: !LONG,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataRoot = await Deno.makeTempDir({ prefix: "tables_restart_" });
    const options: TablesStackOptions = {
      dataRoot,
      masters: 1,
      servers: 2,
      sessionTtlMs: 3000,
      reconcileMs: 300,
      // Frequent sweeps: the previous run's logs go soon after the restart.
      // A dead server's log split is not waited for (nor skipped when small).
      masterFlags: ["--sweep-ms", "500", "--log-split-wait-ms", "0"],
      serverFlags: ["--log-split-min-bytes", "0"],
      // kv keeps its Raft membership by address: the same ports again.
      kvPorts: freePorts(3),
      gfs: {
        masters: 1,
        chunkservers: 4,
        chunkBytes: 1 << 20,
        master: { tickMs: 200, deadAfterMs: 3000 },
        chunkserver: () => ({ heartbeatMs: 200 }),
      },
    };
    let stack = await startTablesStack(options);
    const acked: string[] = [];
    const unknown: string[] = [];
    try {
      const admin = () =>
        new TablesClient(stack.masterUrls(), {
          token: stack.secrets.tokens.admin,
          retryForMs: 60_000,
        });
      await admin().createTable("t", [{ name: "f" }], ["m"]);
      let stop = false;
      const writer = async (w: number) => {
        using c = new TablesClient(stack.masterUrls(), {
          token: stack.secrets.tokens.write,
          retryForMs: 60_000,
        });
        for (let n = 0; !stop; n++) {
          // Rows on both sides of "m": both tablets take writes.
          const row = `${n % 2 ? "a" : "x"}-${w}-${n}`;
          try {
            await c.put("t", row, "f", "v", `${w}/${n}`);
            acked.push(row);
          } catch (e) {
            if (
              e instanceof TablesClientError && e.code === "unknown_outcome"
            ) {
              unknown.push(row);
            } else throw e;
          }
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      try {
        await waitFor("50 writes", () => acked.length >= 50, 60_000);
        const gfs = new GfsClient(stack.gfs!.masterUrls, {
          token: stack.gfs!.secrets!.tokens.write,
        });
        // A server whose commit log fails (here: sealed under it, as a
        // splitter does; GFS giving up on an append does the same) refuses
        // its writes, drops its kv session and registers again with a new
        // log; its tablets are recovered from the failed one.
        const logsOf = async (server: string) =>
          new Set(
            (await gfs.ls(`/tables/_logs/${server}/`)).map((f) =>
              f.path.split("/").slice(0, 5).join("/")
            ),
          );
        // A server the writers write to.
        const server = (await admin().tablets("t"))[0]!.server!;
        const [failing] = [...await logsOf(server)];
        ok(failing, `${server} has a commit log`);
        await gfs.upload(`${failing}/sealed`, new Uint8Array(0));
        const sealedAt = performance.now();
        const beforeSeal = acked.length;
        await waitFor(
          "50 writes after the seal",
          () => acked.length >= beforeSeal + 50,
          60_000,
        );
        const servedMs = performance.now() - sealedAt;
        // The sweep deletes the failed log only once its session is over
        // (the server dropped it) and its tablets' new owners raised their
        // floors past it.
        while ((await logsOf(server)).has(failing)) {
          ok(
            performance.now() - sealedAt < 60_000,
            `${server} kept its session, or its failed log was not swept`,
          );
          await new Promise((r) => setTimeout(r, 200));
        }
        console.log(
          `${server}'s log sealed: 50 more writes after ${
            Math.round(servedMs)
          } ms, the failed log swept after ${
            Math.round(performance.now() - sealedAt)
          } ms (${unknown.length} unknown outcomes so far)`,
        );
        // Kill a replica of a tablet's commit log while it is appended to.
        // The tablet servers' commit logs: `/tables/_logs/<server>/<log>/<seq>`.
        const logs = (await gfs.ls("/tables/_logs/")).map((f) => f.path)
          .filter((p) => /\/\d{10}$/.test(p)).sort();
        ok(logs.length > 0, "a commit log in GFS");
        const loc = await gfs.locate(logs.at(-1)!);
        const replicas = loc.chunks.at(-1)!.replicas;
        const victim = stack.gfs!.chunkservers.find((s) =>
          replicas.includes(s.url)
        )!;
        await victim.stop(true);
        const before = acked.length;
        await waitFor(
          "50 writes after the chunkserver kill",
          () => acked.length >= before + 50,
          90_000,
        );
        console.log(
          `${before} writes acknowledged before the chunkserver kill, ${
            acked.length - before
          } after (${unknown.length} unknown)`,
        );
      } finally {
        stop = true;
        await Promise.allSettled(writers);
      }
      await Promise.all(writers);

      const started = performance.now();
      await stack.stop();
      stack = await startTablesStack(options);
      const client = admin();
      for (const row of acked) {
        const r = await client.getRow("t", row, { versions: 10 });
        strictEqual(r.cells.length, 1, `${row}: exactly one version`);
      }
      let seen = 0;
      for await (const r of client.scan("t", {})) {
        seen++;
        ok(/^[ax]-\d-\d+$/.test(dec.decode(r.key)));
      }
      console.log(
        `restarted and read back ${acked.length} acknowledged rows in ${
          Math.round(performance.now() - started)
        } ms; scan saw ${seen}`,
      );
      ok(
        seen >= acked.length && seen <= acked.length + unknown.length,
        `${seen} rows for ${acked.length} acknowledged (+${unknown.length} unknown)`,
      );
      // The logs of the servers' previous run are swept once every tablet
      // was recovered and raised its floor: one log per server remains.
      const gfs = new GfsClient(stack.gfs!.masterUrls, {
        token: stack.gfs!.secrets!.tokens.read,
      });
      const logDirs = async () =>
        new Set(
          (await gfs.ls("/tables/_logs/")).map((f) =>
            f.path.split("/").slice(0, 5).join("/")
          ),
        );
      const sweepFrom = performance.now();
      while ((await logDirs()).size > options.servers!) {
        ok(
          performance.now() - sweepFrom < 60_000,
          `old logs left: ${[...await logDirs()].join(", ")}`,
        );
        await new Promise((r) => setTimeout(r, 500));
      }
      console.log(
        `the previous run's logs were swept ${
          Math.round(performance.now() - sweepFrom)
        } ms after the checks`,
      );
      for (const row of acked) {
        const r = await client.getRow("t", row, { versions: 10 });
        strictEqual(r.cells.length, 1, `${row}: readable after the sweep`);
      }
    } finally {
      await stack.stop();
      await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
    }
  },
});
