/**
 * The chunkserver process: `deno run -A apps/gfs/chunkserver_main.ts
 * --data-dir DIR --master URL[,URL...] [--id cs1] [--rack r1] [--capacity-bytes 10GiB]
 * [--chunk-bytes 64MiB]`. Prints one JSON line
 * `{"event":"listening","role":"chunkserver","id":...,"url":...}`.
 */
import { EDGE_FLAGS } from "@strata/edge";
import { z } from "zod";
import { startChunkserver } from "./chunkserver/chunkserver.ts";
import { num, parseGfsFlags, size } from "./shared/flags.ts";

const Flags = z.object({
  "data-dir": z.string().min(1),
  master: z.string().min(1), // one URL or comma-separated URLs, checked by the config schema
  id: z.string().optional(),
  rack: z.string().optional(),
  "capacity-bytes": size.optional(),
  "chunk-bytes": size.optional(),
  "heartbeat-ms": num.optional(),
  "scrub-pause-ms": num.optional(),
  "scrub-every-ms": num.optional(),
  host: z.string().optional(),
  port: num.optional(),
  "data-port": num.optional(),
  "bulk-port": num.optional(),
  ...EDGE_FLAGS,
});

const USAGE =
  "usage: chunkserver_main.ts --data-dir DIR --master URL[,URL,...] [--id ID] [--rack R] " +
  "[--capacity-bytes 100GiB] [--chunk-bytes 64MiB] [--heartbeat-ms 1000] [--scrub-pause-ms 200] [--scrub-every-ms 600000] [--port 0] [--data-port 0 (framed TCP data port; -1: none)] [--bulk-port 0 (raw TCP bulk port; -1: none)] " +
  "[--auth-dir DIR (default: the data dir; every process of a cell needs the same)] [--insecure-no-auth (loopback only)] [--allowed-hosts a,b] " +
  "[--tls-cert FILE --tls-key FILE (serve HTTPS; every process of a cell needs TLS)] [--ca-cert FILE (trust it calling the others; default: --tls-cert)]";

if (import.meta.main) {
  const flags = parseGfsFlags(Deno.args, Flags, USAGE);
  try {
    const cs = await startChunkserver(flags);
    console.log(
      JSON.stringify({
        event: "listening",
        role: "chunkserver",
        id: cs.id,
        url: cs.url,
        dataPort: cs.dataPort,
        bulkPort: cs.bulkPort,
      }),
    );
    const stop = async () => {
      await cs.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (e) {
    console.error(
      JSON.stringify({
        event: "error",
        role: "chunkserver",
        message: e instanceof Error ? e.message : String(e),
      }),
    );
    Deno.exit(1);
  }
}
