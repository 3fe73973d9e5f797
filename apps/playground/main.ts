/**
 * `deno task start`: the first thing a new user runs. Starts, on loopback
 * with data under ./data/playground (reused by the next start), a 3-node raft-kv
 * cluster, a GFS cell (3 masters on Raft, 3 chunkservers) and the search cluster (the
 * SpamAssassin corpus indexed on first start), every node its own process,
 * then serves the dashboard and prints its URL. Ctrl-C stops everything.
 */
import {
  EdgeConfigError,
  isLoopback,
  LOOPBACK_NAMES,
  onShutdown,
  randomSecret,
  resolveAccess,
  selfSignedCert,
  serveHttp,
} from "@strata/edge";
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
  type StartFlags,
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
  const ports = fixedPorts(flags);
  const taken = findTakenPort(
    ports.filter((p) => p.flag === "--port"),
    flags.listen,
  ) ?? findTakenPort(ports.filter((p) => p.flag !== "--port"));
  if (taken) {
    console.error(taken.message);
    return 1;
  }
  // Off loopback the page token alone would be handed to anyone who can
  // load the page: every request then needs the dashboard's tokens too.
  const offLoopback = !isLoopback(flags.listen);
  let access;
  try {
    access = offLoopback
      ? await resolveAccess({
        listenHost: flags.listen,
        secretsDir: `${flags["data-dir"]}/auth`,
        allowedHosts: flags["allowed-hosts"],
      })
      : undefined;
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return e instanceof EdgeConfigError ? 2 : 1;
  }

  let tls: { certFile: string; keyFile: string } | undefined;
  try {
    tls = await playgroundTls(flags);
  } catch (e) {
    console.error(
      `--tls: cannot make a certificate: ${e instanceof Error ? e.message : e}`,
    );
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
  onShutdown(async () => {
    stopping = true;
    console.log("\nstopping every process…");
    aborter.abort(new PlaygroundError("unavailable", "stopped by a signal"));
    await starting?.catch(() => {});
    await stopAll();
  });

  try {
    const base = flags["raft-http-base"];
    const started = startPlayground({
      dataDir: flags["data-dir"],
      raftHttpPorts: base === 0 ? undefined : [base, base + 1, base + 2],
      index: !flags["no-index"],
      indexLimit: flags["index-limit"],
      tls,
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
      hosts: access?.hosts ?? [...LOOPBACK_NAMES, ...flags["allowed-hosts"]],
      operatorTokens: access?.secrets && {
        read: access.secrets.tokens.read,
        admin: access.secrets.tokens.admin,
      },
    });
    const listener = await serveHttp({
      hostname: flags.listen,
      port: flags.port,
      tls,
      handler: app.fetch,
    });
    cleanups.push(() => listener.server.shutdown());
    console.log(
      `\nstrata playground: ${listener.url}/  (Ctrl-C stops every process)`,
    );
    if (tls) {
      console.log(
        `every cluster and the dashboard serve HTTPS with ${tls.certFile}: trust it in the browser, or curl --cacert ${tls.certFile} ${listener.url}/api/snapshot`,
      );
    }
    if (access?.secrets) {
      console.log(
        `every request needs the dashboard token: a browser asks for it (any user name, password: the contents of ${access.secrets.dir}/read.token, or admin.token to act); curl -H "Authorization: Bearer $(cat ${access.secrets.dir}/read.token)" ${listener.url}/api/snapshot`,
      );
    }
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

/**
 * The certificate of a TLS start: `--tls-cert/--tls-key` as given, or with
 * `--tls` a self-signed one in DATA/tls (made once, reused by later
 * starts, so a browser that trusted it keeps trusting it).
 */
async function playgroundTls(
  flags: StartFlags,
): Promise<{ certFile: string; keyFile: string } | undefined> {
  if (flags["tls-cert"] && flags["tls-key"]) {
    return { certFile: flags["tls-cert"], keyFile: flags["tls-key"] };
  }
  if (!flags.tls) return undefined;
  const dir = `${flags["data-dir"]}/tls`;
  const have = { certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` };
  try {
    await Deno.stat(have.certFile);
    await Deno.stat(have.keyFile);
    return have;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const made = await selfSignedCert(dir);
  await Deno.chmod(made.keyFile, 0o600);
  return made;
}

if (import.meta.main) Deno.exit(await main());
