/**
 * The coordinator as an OS process: serves the public API (see
 * coordinator_app.ts) on 127.0.0.1 and prints `{"ready":true,"port":N}`
 * on stdout once listening.
 *
 * Usage: deno run -A apps/search/coordinator.ts --shards 'http://127.0.0.1:1,http://127.0.0.1:2;http://…' [--port 0] [--ack 2] [--max-queued-docs N]
 * (replicas of a shard separated by commas, shards by semicolons)
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { createCoordinatorApp } from "./coordinator_app.ts";

const FlagsSchema = z.object({
  shards: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  ack: z.coerce.number().int().min(1).max(16).optional(),
  "timeout-ms": z.coerce.number().int().min(10).max(600_000).default(5000),
  "max-queued-docs": z.coerce.number().int().min(1).max(10_000_000).optional(),
});

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      shards: { type: "string" },
      port: { type: "string" },
      ack: { type: "string" },
      "timeout-ms": { type: "string" },
      "max-queued-docs": { type: "string" },
    },
    strict: true,
  });
  const parsed = FlagsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(
      `coordinator: bad flags: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)
          .join("; ")
      }`,
    );
    Deno.exit(2);
  }
  const flags = parsed.data;
  const shards = flags.shards.split(";").map((s) =>
    s.split(",").filter((u) => u.length > 0)
  );
  let app;
  try {
    app = createCoordinatorApp({
      shards,
      ack: flags.ack,
      searchTimeoutMs: flags["timeout-ms"],
      maxQueuedDocs: flags["max-queued-docs"],
    }).app;
  } catch (e) {
    console.error(`coordinator: bad configuration: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const ac = new AbortController();
  Deno.serve({
    hostname: "127.0.0.1",
    port: flags.port,
    signal: ac.signal,
    onListen: ({ port }) =>
      console.log(
        JSON.stringify({
          ready: true,
          role: "coordinator",
          port,
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
