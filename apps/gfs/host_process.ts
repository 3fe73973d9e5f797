/**
 * A GFS process (master or chunkserver) on a network host of
 * `@strata/hosts`, binding that host's address: the one way the tests on
 * hosts (gfs's partition test, tables' on GFS) start GFS processes, so a
 * flag is spelled in one place.
 */
import type { Host, HostNetwork } from "@strata/hosts";
import type { ReadyProcess } from "@strata/process";

const HERE = new URL(".", import.meta.url).pathname;

/**
 * Starts `role` inside `host` with `--host <its address>` and `flags`
 * (`{ port: 7300, "auth-dir": dir, … }` become `--port 7300 --auth-dir
 * dir …`), and waits for its `listening` line.
 * @returns the process; `ready` is its URL. It is stopped by the
 * network's `close()` if not before.
 */
export function startGfsOnHost(
  net: HostNetwork,
  host: Host,
  role: "master" | "chunkserver",
  flags: Record<string, string | number>,
): Promise<ReadyProcess<string>> {
  const args = [
    "run",
    "-A",
    `${HERE}${role === "master" ? "master_main.ts" : "chunkserver_main.ts"}`,
    "--host",
    host.address,
  ];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, String(v));
  return net.spawn(
    host,
    args,
    (line) => {
      const l = line as { event?: unknown; url?: unknown };
      return l?.event === "listening" && typeof l.url === "string"
        ? l.url
        : undefined;
    },
    { name: `gfs ${role} on ${host.name}`, stderr: "null", timeoutMs: 60_000 },
  );
}
