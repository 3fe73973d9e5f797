/**
 * `deno task start`: the first thing a new user runs. Starts, on loopback
 * with data under ./data/playground (reused by the next start), a 3-node raft-kv
 * cluster, a GFS cell (3 masters on Raft, 3 chunkservers) and the search cluster (the
 * SpamAssassin corpus indexed on first start), every node its own process,
 * then serves the dashboard and prints its URL. Ctrl-C stops everything.
 */
import { randomSecret } from "@strata/edge";
import { createDashboardApp } from "./dashboard_server.ts";
import { LiveBackend } from "./live_backend.ts";
import { startPlayground } from "./playground.ts";
import { isPlaygroundError, PlaygroundError } from "./playground_error.ts";
import { createSimApi } from "./sim_api.ts";
import {
  findTakenPort,
  fixedPorts,
  parseStartFlags,
  START_USAGE,
} from "./start_flags.ts";

async function main(): Promise<number> {
  const parsed = parseStartFlags(Deno.args);
  if (parsed.kind === "help") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`${parsed.message}\n\n${START_USAGE}`);
    return 2;
  }
  const flags = parsed.flags;
  // Check every fixed port before starting anything, so a second start
  // fails in a second with a clear line instead of half-starting.
  const taken = findTakenPort(fixedPorts(flags));
  if (taken) {
    console.error(taken.message);
    return 1;
  }

  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  // Ctrl-C while the clusters start: startPlayground stops what it has
  // started and rejects; wait for that, so no node outlives this process.
  const aborter = new AbortController();
  let starting: Promise<unknown> | undefined;
  const onSignal = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping every process…");
    aborter.abort(new PlaygroundError("unavailable", "stopped by a signal"));
    await starting?.catch(() => {});
    await stopAll();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  try {
    const base = flags["raft-http-base"];
    const started = startPlayground({
      dataDir: flags["data-dir"],
      raftHttpPorts: base === 0 ? undefined : [base, base + 1, base + 2],
      index: !flags["no-index"],
      indexLimit: flags["index-limit"],
      onProgress: (line) => console.log(line),
      signal: aborter.signal,
    });
    starting = started;
    const pg = await started;
    cleanups.push(() => pg.stop());
    starting = undefined;
    // The signal handler owns the exit from here.
    if (stopping) return await new Promise<number>(() => {});
    const backend = new LiveBackend(pg);
    await backend.start();
    cleanups.push(() => backend.close());
    // A fresh token per run: only the page this process serves holds it.
    const app = createDashboardApp({
      backend,
      sim: createSimApi(),
      pageToken: randomSecret(),
    });
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve(
        { hostname: "127.0.0.1", port: flags.port, onListen: () => {} },
        app.fetch,
      );
    } catch (e) {
      // Taken between the check and now.
      throw new Error(
        e instanceof Deno.errors.AddrInUse
          ? `port ${flags.port} (the dashboard) is taken; pick another with --port`
          : String(e),
      );
    }
    cleanups.push(() => server.shutdown());
    console.log(
      `\nstrata playground: http://127.0.0.1:${server.addr.port}/  (Ctrl-C stops every process)`,
    );
    await new Promise(() => {});
    return 0;
  } catch (e) {
    if (stopping) return await new Promise<number>(() => {});
    console.error(
      `start failed: ${
        isPlaygroundError(e) || e instanceof Error ? e.message : e
      }`,
    );
    await stopAll();
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
