/**
 * The master process: `deno run -A apps/gfs/master_main.ts --data-dir DIR
 * [--port 0] [--chunk-bytes 64MiB] ...`. Prints one JSON line
 * `{"event":"listening","role":"master","url":...}` once serving; stops
 * cleanly on SIGINT/SIGTERM.
 */
import { EDGE_FLAGS } from "@strata/edge";
import { z } from "zod";
import { num, parseGfsFlags, size } from "./shared/flags.ts";
import { startMaster } from "./master/master_server.ts";
import { corruptDataExitCode, exitOnReplicaFailure } from "@strata/replication";

const Flags = z.object({
  "data-dir": z.string().min(1),
  host: z.string().optional(),
  port: num.pipe(z.number().int().min(0).max(65535)).optional(),
  "chunk-bytes": size.optional(),
  replication: num.optional(),
  "max-file-bytes": size.optional(),
  "dead-after-ms": num.optional(),
  "lease-ms": num.optional(),
  "gc-delay-ms": num.optional(),
  "pending-timeout-ms": num.optional(),
  "tick-ms": num.optional(),
  "max-clones-per-server": num.optional(),
  "max-moves-per-tick": num.optional(),
  "checkpoint-every": num.optional(),
  id: num.optional(),
  peers: z.string().min(1).optional(),
  join: z.boolean().optional(),
  "raft-tick-ms": num.optional(),
  "election-ticks": num.optional(),
  ...EDGE_FLAGS,
});

const USAGE =
  "usage: master_main.ts --data-dir DIR [--port N] [--chunk-bytes 64MiB] [--replication 3] " +
  "[--max-file-bytes N] [--dead-after-ms N] [--lease-ms N] [--gc-delay-ms N] [--pending-timeout-ms N] [--tick-ms N] " +
  "[--id N --peers 1=raftHost:port/httpHost:port,2=...,3=... [--raft-tick-ms 100] [--election-ticks 10] [--join (a new master: add it with POST /v1/master/members)]] " +
  "[--auth-dir DIR (default: the data dir; every process of a cell needs the same)] [--insecure-no-auth (loopback only)] [--allowed-hosts a,b] " +
  "[--tls-cert FILE --tls-key FILE (serve HTTPS; every process of a cell needs TLS)] [--ca-cert FILE (trust it calling the others; default: --tls-cert)]";

if (import.meta.main) {
  const flags = parseGfsFlags(Deno.args, Flags, USAGE);
  try {
    const m = await startMaster(flags);
    // A master whose Raft replica (alone or in a group) halts on a failed
    // disk write exits (code 74), so a supervisor restarts it from what is
    // durable.
    exitOnReplicaFailure(m.store, `gfs master ${flags.id ?? ""}`.trim());
    console.log(
      JSON.stringify({
        event: "listening",
        role: "master",
        url: m.url,
        recovery: m.store.recovery,
      }),
    );
    const stop = async () => {
      await m.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (e) {
    // Damaged metadata or log: refuse with exit code 65 (a restart cannot help).
    const code = corruptDataExitCode(
      e,
      `gfs master ${flags.id ?? ""}`.trim(),
      flags.dataDir,
    );
    if (code !== undefined) Deno.exit(code);
    console.error(
      JSON.stringify({
        event: "error",
        role: "master",
        message: e instanceof Error ? e.message : String(e),
      }),
    );
    Deno.exit(1);
  }
}
