/**
 * `deno task gfs`: a master and 3 chunkservers on loopback, data under
 * ./data/gfs (or `--data-dir`), endpoints printed; Ctrl-C stops all.
 *
 * Flags: `--data-dir DIR`, `--chunkservers N`, `--chunk-bytes 64MiB`,
 * `--port N` (master port, default 0 = any).
 */
import { z } from "zod";
import { num, parseFlags, size } from "./flags.ts";
import { startCluster } from "./process_cluster.ts";

const Flags = z.object({
  dataDir: z.string().min(1).default("./data/gfs"),
  chunkservers: num.pipe(z.number().int().min(1).max(32)).default(3),
  chunkBytes: size.optional(),
  port: num.pipe(z.number().int().min(0).max(65535)).default(0),
}).strict();

if (import.meta.main) {
  const flags = parseFlags(
    Deno.args,
    Flags,
    "usage: deno task gfs [--data-dir ./data/gfs] [--chunkservers 3] [--chunk-bytes 64MiB] [--port 0]",
  );
  const cluster = await startCluster({
    dataDir: flags.dataDir,
    chunkservers: flags.chunkservers,
    master: {
      port: flags.port,
      ...(flags.chunkBytes ? { chunkBytes: flags.chunkBytes } : {}),
    },
  });
  console.log(JSON.stringify({
    event: "ready",
    master: cluster.master.url,
    chunkservers: cluster.chunkservers.map((c) => ({ id: c.id, url: c.url })),
    dataDir: flags.dataDir,
  }));
  console.log(
    `gfs master at ${cluster.master.url}  (try: deno task gfs:cli --master ${cluster.master.url} ls)`,
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("stopping…");
    await cluster.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
