/**
 * Probe of a 1 MiB upload's phases (not a test): the client's three steps
 * made by hand against a process cluster set up as `bench:gfs`'s
 * throughput group (one master, three chunkservers, 64 MiB chunks,
 * replication 3) — create with chunk 0 (`allocate`), the bulk write along
 * the chain, complete — each timed, alternating sample by sample a create
 * that asks for a write grant (the chunkservers create the chunk from it)
 * with one that does not (the master creates it on the three chunkservers
 * before answering). Prints p50/p90 per phase and mode, plus the disk's
 * three copies + fdatasync of the same bytes, measured alternating too,
 * and the same 1 MiB written again to the primary alone (a bulk write with
 * no chain) against one copy + fdatasync.
 * Run: `deno run -A apps/gfs/_upload_probe.ts [rounds]`.
 */
import { join } from "node:path";
import type { z } from "zod";
import { BulkPorts } from "./client/bulk_connection.ts";
import { CreatedSchema, OkSchema } from "./shared/messages.ts";
import { fetchJson } from "./shared/http_json.ts";
import { startCluster } from "./process_cluster.ts";

const MiB = 2 ** 20;
const rounds = Number(Deno.args[0] ?? 40);
const dir = await Deno.makeTempDir({ prefix: "gfs-upload-probe-" });
const cluster = await startCluster({
  dataDir: join(dir, "c"),
  chunkservers: 3,
  master: { chunkBytes: 64 * MiB },
  chunkserver: () => ({ scrubPauseMs: 0 }),
});
const token = cluster.secrets!.tokens.admin;
const bulk = new BulkPorts({ token });
const data = new Uint8Array(MiB).map((_, i) => (i * 31) & 0xff);
type Phase = "create" | "write" | "complete" | "total";
const times: Record<string, Record<Phase, number[]>> = {};
const disk: number[] = [];
const single: number[] = [];
const disk1: number[] = [];
const copies = await Promise.all(
  [0, 1, 2].map((i) =>
    Deno.open(join(dir, `copy${i}`), { write: true, create: true })
  ),
);
const rpc = <S extends z.ZodType>(
  path: string,
  schema: S,
  body: unknown,
) => fetchJson(`${cluster.master.url}${path}`, schema, { body, token });
try {
  let n = 0;
  let plain: { primary: string; handle: number } | null = null;
  for (let r = 0; r < rounds + 2; r++) {
    // Each mode goes first every other round (no order effect).
    for (const grant of r % 2 === 0 ? [true, false] : [false, true]) {
      const path = `/probe/f${n++}`;
      const t0 = performance.now();
      const created = await rpc("/v1/rpc/create", CreatedSchema, {
        path,
        allocate: true,
        grant,
      });
      const t = created.first!;
      const t1 = performance.now();
      const servers = await bulk.write(
        t.primary,
        {
          handle: t.handle,
          version: t.version,
          offset: 0,
          chain: t.secondaries,
          grant: t.grant,
        },
        data,
        60_000,
      );
      const t2 = performance.now();
      if (!grant) plain = t;
      await rpc("/v1/rpc/complete", OkSchema, {
        path,
        fileId: created.fileId,
        chunks: [{ handle: t.handle, length: data.length, servers }],
      });
      const t3 = performance.now();
      if (r < 2) continue; // warm-up: connections, ports, page cache
      const m = times[grant ? "grant" : "master creates"] ??= {
        create: [],
        write: [],
        complete: [],
        total: [],
      };
      m.create.push(t1 - t0);
      m.write.push(t2 - t1);
      m.complete.push(t3 - t2);
      m.total.push(t3 - t0);
    }
    // The limit's way: three copies written at once, each fdatasync'd.
    const d0 = performance.now();
    await Promise.all(copies.map(async (f) => {
      await f.seek(0, Deno.SeekMode.Start);
      await f.write(data);
      await f.syncData();
    }));
    if (r >= 2) disk.push(performance.now() - d0);
    // The last master-created chunk (its primary leased, the file complete)
    // gets the same bytes again at offset 0 from the primary alone: one
    // replica's write, no chain, after both modes' samples (not between).
    if (r >= 2 && plain !== null) {
      const o0 = performance.now();
      await bulk.write(
        plain.primary,
        { handle: plain.handle, version: 1, offset: 0, chain: [] },
        data,
        60_000,
      );
      single.push(performance.now() - o0);
    }
    const e0 = performance.now();
    await copies[0]!.seek(0, Deno.SeekMode.Start);
    await copies[0]!.write(data);
    await copies[0]!.syncData();
    if (r >= 2) disk1.push(performance.now() - e0);
  }
  const pct = (xs: number[], p: number) =>
    xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;
  const row = (name: string, xs: number[]) =>
    `${name.padEnd(10)} p50 ${pct(xs, 0.5).toFixed(1).padStart(6)} ms  p90 ${
      pct(xs, 0.9).toFixed(1).padStart(6)
    } ms`;
  console.log(
    `load ${
      (await Deno.readTextFile("/proc/loadavg")).split(" ")[0]
    }, ${rounds} uploads per mode`,
  );
  for (const [mode, m] of Object.entries(times)) {
    console.log(`-- ${mode}`);
    for (const p of ["create", "write", "complete", "total"] as const) {
      console.log(row(p, m[p]));
    }
  }
  console.log(row("disk 3×1MiB+fdatasync", disk));
  console.log(row("one replica's bulk write, no chain", single));
  console.log(row("disk 1×1MiB+fdatasync", disk1));
} finally {
  for (const f of copies) f.close();
  await bulk.close();
  await cluster.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
