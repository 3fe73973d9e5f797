/**
 * A shard replica as an OS process: opens its data directory, serves the
 * internal shard API on --host (default 127.0.0.1) (port 0 = any free port), prints one JSON
 * line `{"ready":true,"port":N,...}` on stdout once listening, merges
 * segments in the background, and flushes on SIGTERM/SIGINT.
 *
 * Usage: deno run -A apps/search/shard_server.ts --dir DIR --shard 0 --replica 0 [--host 127.0.0.1] [--port 0] [--flush-docs 5000] (--help lists the flags)
 */
import { z } from "zod";
import { hostFlag, parseFlagsOrExit, tlsServeOptions } from "@strata/edge";
import { createShardApp } from "./shard_app.ts";
import {
  ACCESS_FLAGS,
  ACCESS_FLAGS_USAGE,
  accessFromFlagsOrExit,
} from "./search_access.ts";
import { ShardStore } from "./shard_store.ts";

const FlagsSchema = z.object({
  dir: z.string().min(1),
  shard: z.coerce.number().int().min(0).max(1023),
  replica: z.coerce.number().int().min(0).max(15),
  host: hostFlag.default("127.0.0.1"),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  "flush-docs": z.coerce.number().int().min(1).max(10_000_000).default(5000),
  sync: z.enum(["always", "never"]).default("always"),
  ...ACCESS_FLAGS,
});

const USAGE =
  `deno run -A apps/search/shard_server.ts --dir DIR --shard N --replica N [flags]: one shard replica

  --dir DIR              data directory (required)
  --shard N              shard number (required)
  --replica N            replica number (required)
  --host ADDR            listen address (default 127.0.0.1)
  --port N               listen port (default 0: any free port)
  --flush-docs N         flush a segment after this many documents (default 5000)
  --sync always|never    fsync before acknowledging (default always)
${ACCESS_FLAGS_USAGE}
  -h, --help             this text`;

if (import.meta.main) {
  const flags = parseFlagsOrExit(Deno.args, FlagsSchema, USAGE);
  const access = await accessFromFlagsOrExit(
    flags,
    flags.host,
    flags.dir,
    `shard ${flags.shard}/${flags.replica}`,
  );
  const store = await ShardStore.open(flags.dir, {
    flushDocs: flags["flush-docs"],
    sync: flags.sync,
  });
  const app = createShardApp(store, {
    shard: flags.shard,
    replica: flags.replica,
  }, access);
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: flags.host,
    port: flags.port,
    signal: ac.signal,
    ...tlsServeOptions(access.tls),
    onListen: ({ port }) => {
      console.log(JSON.stringify({
        ready: true,
        role: "shard",
        scheme: access.tls?.serve ? "https" : "http",
        shard: flags.shard,
        replica: flags.replica,
        port,
        pid: Deno.pid,
        recovery: store.recovery,
      }));
    },
  }, app.fetch);
  let merging = false;
  const timer = setInterval(async () => {
    if (merging) return;
    merging = true;
    try {
      while (await store.maybeMerge()) {
        /* one merge per step; yields between */
      }
    } catch (e) {
      console.error(
        `shard ${flags.shard}/${flags.replica}: merge failed: ${
          (e as Error).message
        }`,
      );
    } finally {
      merging = false;
    }
  }, 500);
  const stop = async () => {
    clearInterval(timer);
    ac.abort();
    await server.finished.catch(() => {});
    await store.close().catch(() => {});
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
