/**
 * In-process probe of the chunk store's small appends (not a test): p50 of
 * one 1 KiB append at a chunk's end against one local write + fdatasync,
 * alternated so both see the same disk and load, and appends/s of 1 and 16
 * concurrent writers (each on its own chunk, so only the store's group
 * commit batches them), and of 16 writers on one chunk (offsets taken in
 * call order: a store that holds a chunk's queue across the sync does one
 * sync per append there). Run: `deno run -A apps/gfs/chunkserver/_append_probe.ts [module]`
 * where `module` is another chunk_store.ts to compare (an A/B).
 */
import { join } from "node:path";
import process from "node:process";
import type { ChunkStore as Store } from "./chunk_store.ts";

const mod = Deno.args[0] ?? "./chunk_store.ts";
const { ChunkStore } = (await import(
  mod.startsWith(".") ? mod : `file://${mod}`
)) as { ChunkStore: typeof Store };
const rounds = Number(Deno.env.get("ROUNDS") ?? 400);
const dir = await Deno.makeTempDir({ prefix: "gfs-append-probe-" });
const p50 = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
try {
  const store = await ChunkStore.open(join(dir, "s"), {
    chunkBytes: 64 * 2 ** 20,
  });
  const local = await Deno.open(join(dir, "probe"), {
    write: true,
    create: true,
  });
  const rec = new Uint8Array(1024).fill(7);
  for (let h = 1; h <= 17; h++) await store.setVersion(h, 1, true);
  const len = new Map<number, number>();
  const append = async (h: number) => {
    // Taken before the write: writers of one chunk overlap.
    const at = len.get(h) ?? 0;
    len.set(h, at + rec.length);
    await store.write(h, 1, at, rec);
  };
  for (let i = 0; i < 20; i++) await append(1);
  const fs: number[] = [], ap: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t0 = performance.now();
    await local.write(rec);
    await local.syncData();
    fs.push(performance.now() - t0);
    t0 = performance.now();
    await append(1);
    ap.push(performance.now() - t0);
  }
  const syncs = () =>
    (store as unknown as { journalSyncs?: number }).journalSyncs ?? NaN;
  let perSync16 = NaN, perSyncOneChunk = NaN;
  const cpuUsPerAppend: number[] = [];
  const rate = async (writers: number, oneChunk = false) => {
    let n = 0;
    const s0 = syncs();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      while (performance.now() - t0 < 2000) {
        await append(writers === 1 || oneChunk ? 1 : w + 2);
        n++;
      }
    }));
    if (oneChunk) perSyncOneChunk = n / (syncs() - s0);
    else if (writers === 16) perSync16 = n / (syncs() - s0);
    const c = process.cpuUsage(c0);
    cpuUsPerAppend.push(Math.round((c.user + c.system) / n));
    return n / ((performance.now() - t0) / 1000);
  };
  const one = await rate(1), sixteen = await rate(16);
  const sameChunk = await rate(16, true);
  console.log(JSON.stringify({
    module: mod,
    fsyncP50Ms: +p50(fs).toFixed(3),
    appendP50Ms: +p50(ap).toFixed(3),
    ratio: +(p50(ap) / p50(fs)).toFixed(2),
    appendsPerSec1: Math.round(one),
    appendsPerSec16: Math.round(sixteen),
    x16: +(sixteen / one).toFixed(2),
    appendsPerSec16OneChunk: Math.round(sameChunk),
    x16OneChunk: +(sameChunk / one).toFixed(2),
    appendsPerJournalSync16: +perSync16.toFixed(1),
    appendsPerJournalSync16OneChunk: +perSyncOneChunk.toFixed(1),
    cpuUsPerAppend1and16and16OneChunk: cpuUsPerAppend,
    load: (await Deno.readTextFile("/proc/loadavg")).split(" ")[0],
  }));
  local.close();
  await store.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
