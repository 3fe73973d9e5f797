/**
 * The coordinator as an OS process: serves the public API (see
 * coordinator_app.ts) on --host (default 127.0.0.1) and prints `{"ready":true,"port":N}`
 * on stdout once listening.
 *
 * Usage: deno run -A apps/search/coordinator.ts --shards 'http://127.0.0.1:1,http://127.0.0.1:2;http://…' [--host 127.0.0.1] [--port 0] [--ack 2] [--write-timeout-ms 60000] [--max-queued-docs N] [--state-dir DIR] (--help lists the flags)
 * (replicas of a shard separated by commas, shards by semicolons)
 */
import { z } from "zod";
import { hostFlag, parseFlagsOrExit, tlsServeOptions } from "@strata/edge";
import { BehindMarks } from "./behind_marks.ts";
import { createCoordinatorApp } from "./coordinator_app.ts";
import {
  ACCESS_FLAGS,
  ACCESS_FLAGS_USAGE,
  accessFromFlagsOrExit,
} from "./search_access.ts";

const FlagsSchema = z.object({
  shards: z.string().min(1),
  host: hostFlag.default("127.0.0.1"),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  ack: z.coerce.number().int().min(1).max(16).optional(),
  "timeout-ms": z.coerce.number().int().min(10).max(600_000).default(5000),
  "write-timeout-ms": z.coerce.number().int().min(10).max(600_000).default(
    60_000,
  ),
  "max-queued-docs": z.coerce.number().int().min(1).max(10_000_000).optional(),
  "state-dir": z.string().min(1).optional(),
  ...ACCESS_FLAGS,
});

const USAGE =
  `deno run -A apps/search/coordinator.ts --shards URLS [flags]: the public search API in front of the shard replicas

  --shards URLS          replica URLs: commas between a shard's replicas, semicolons
                         between shards (required)
  --host ADDR            listen address (default 127.0.0.1)
  --port N               listen port (default 0: any free port)
  --ack N                replicas that must confirm a write (default all)
  --timeout-ms N         per-attempt shard timeout (default 5000)
  --write-timeout-ms N   timeout of a write (or replay) to one replica (default
                         60000); a write waits for every replica's outcome, even
                         with --ack below all
  --max-queued-docs N    missed documents queued per replica before anti-entropy
                         repairs it instead (default 1000000)
  --state-dir DIR        records which replicas missed writes (behind.json, fsynced
                         before such a write is acknowledged); restarted with it, the
                         coordinator repairs them by anti-entropy before they serve
                         reads. Without it a restart forgets them (deno task search
                         passes DATA/coordinator)
${
    ACCESS_FLAGS_USAGE.replace(
      "(default: the data dir;",
      "(required: the coordinator has no data dir;",
    )
  }
  -h, --help             this text`;

if (import.meta.main) {
  const flags = parseFlagsOrExit(Deno.args, FlagsSchema, USAGE);
  if (flags["auth-dir"] === undefined && !flags["insecure-no-auth"]) {
    console.error(
      `--auth-dir: required (the cluster's tokens and peer secret; the coordinator has no data dir of its own)\n\n${USAGE}`,
    );
    Deno.exit(2);
  }
  const access = await accessFromFlagsOrExit(
    flags,
    flags.host,
    flags["auth-dir"] ?? "",
    "coordinator",
  );
  const shards = flags.shards.split(";").map((s) =>
    s.split(",").filter((u) => u.length > 0)
  );
  let marks: BehindMarks | undefined;
  if (flags["state-dir"] !== undefined) {
    try {
      marks = await BehindMarks.open(
        flags["state-dir"],
        shards,
        (m) => console.error(`coordinator: ${m}`),
      );
    } catch (e) {
      console.error(`coordinator: --state-dir: ${(e as Error).message}`);
      Deno.exit(1);
    }
    if (marks.initial.length > 0) {
      console.error(
        `coordinator: repairing replicas recorded as behind: ${
          marks.initial.map((b) => `${b.shard}/${b.replica}`).join(", ")
        }`,
      );
    }
  }
  let app;
  try {
    app = createCoordinatorApp(
      {
        shards,
        ack: flags.ack,
        searchTimeoutMs: flags["timeout-ms"],
        writeTimeoutMs: flags["write-timeout-ms"],
        maxQueuedDocs: flags["max-queued-docs"],
      },
      access,
      marks,
    ).app;
  } catch (e) {
    console.error(`coordinator: bad configuration: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const ac = new AbortController();
  Deno.serve({
    hostname: flags.host,
    port: flags.port,
    signal: ac.signal,
    ...tlsServeOptions(access.tls),
    onListen: ({ port }) =>
      console.log(
        JSON.stringify({
          ready: true,
          role: "coordinator",
          port,
          scheme: access.tls?.serve ? "https" : "http",
          pid: Deno.pid,
        }),
      ),
  }, app.fetch);
  const stop = () => {
    ac.abort();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
