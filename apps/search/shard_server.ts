/**
 * A shard replica as an OS process: opens its data directory, serves the
 * internal shard API on 127.0.0.1 (port 0 = any free port), prints one JSON
 * line `{"ready":true,"port":N,...}` on stdout once listening, merges
 * segments in the background, and flushes on SIGTERM/SIGINT.
 *
 * Usage: deno run -A apps/search/shard_server.ts --dir DIR --shard 0 --replica 0 [--port 0] [--flush-docs 5000]
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { createShardApp } from "./shard_app.ts";
import { ShardStore } from "./shard_store.ts";

const FlagsSchema = z.object({
  dir: z.string().min(1),
  shard: z.coerce.number().int().min(0).max(1023),
  replica: z.coerce.number().int().min(0).max(15),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  "flush-docs": z.coerce.number().int().min(1).max(10_000_000).default(5000),
  sync: z.enum(["always", "never"]).default("always"),
});

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dir: { type: "string" },
      shard: { type: "string" },
      replica: { type: "string" },
      port: { type: "string" },
      "flush-docs": { type: "string" },
      sync: { type: "string" },
    },
    strict: true,
  });
  const parsed = FlagsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(
      `shard_server: bad flags: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; ")
      }`,
    );
    Deno.exit(2);
  }
  const flags = parsed.data;
  const store = await ShardStore.open(flags.dir, {
    flushDocs: flags["flush-docs"],
    sync: flags.sync,
  });
  const app = createShardApp(store, {
    shard: flags.shard,
    replica: flags.replica,
  });
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: flags.port,
    signal: ac.signal,
    onListen: ({ port }) => {
      console.log(JSON.stringify({
        ready: true,
        role: "shard",
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
