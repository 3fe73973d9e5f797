/**
 * A probe, not a benchmark suite: puts/s of one LsmStore with its commit
 * log in GFS (an in-process cell: 1 master, 3 chunkservers, replication
 * 3, all on this machine's one disk) against the same store on a local
 * log (fdatasync per group commit), with 1 and 16 concurrent writers,
 * alternating, in one run. 100-byte values, memtable large enough that no
 * flush runs. `deno run -A apps/tables/storage/_log_probe.ts [seconds]`.
 */
import { GfsClient } from "@strata/gfs";
import { LsmStore } from "@strata/lsm";
import { startTestCell } from "../../gfs/_test_support.ts";
import { openGfsStore } from "./open_gfs_store.ts";

const seconds = Number(Deno.args[0] ?? 4);
const enc = new TextEncoder();
const value = new Uint8Array(100).fill(42);

async function measure(db: LsmStore, writers: number) {
  let n = 0;
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; performance.now() < end; i++) {
      const t = performance.now();
      await db.put(enc.encode(`w${w}-${i}`), value);
      lat.push(performance.now() - t);
      n++;
    }
  }));
  lat.sort((a, b) => a - b);
  return {
    putsPerSec: n / seconds,
    p50Ms: lat[Math.floor(lat.length / 2)]!,
  };
}

const dir = await Deno.makeTempDir({ prefix: "tables-log-probe-" });
const cell = await startTestCell(`${dir}/gfs`, {
  chunkBytes: 64 * 2 ** 20,
  replication: 3,
  servers: 3,
});
try {
  for (const writers of [1, 16]) {
    for (let round = 0; round < 2; round++) {
      const local = await LsmStore.open(`${dir}/local-${writers}-${round}`, {
        memtableBytes: 256 * 2 ** 20,
      });
      const l = await measure(local, writers);
      await local.close();
      const g = await openGfsStore(
        new GfsClient(cell.master.url, { token: cell.secrets.tokens.write }),
        `/probe/w${writers}-r${round}`,
        { memtableBytes: 256 * 2 ** 20 },
      );
      const r = await measure(g.store, writers);
      const { blocks, records } = g.log.stats;
      await g.store.close();
      console.log(JSON.stringify({
        writers,
        round,
        local: l,
        gfs: r,
        ratio: +(r.putsPerSec / l.putsPerSec).toFixed(3),
        recordsPerBlock: +(records / Math.max(1, blocks)).toFixed(2),
      }));
    }
  }
} finally {
  await cell.stop();
  await Deno.remove(dir, { recursive: true });
}
