/**
 * Child process of the chunk store's kill test: 16 concurrent appenders
 * write records of 100 B – 4 KiB at the ends of four chunks at a time
 * (journaled, folded every 64 KiB, checkpointed every few dozen records),
 * with sync on, and print `<handle> <offset> <length> <seed>` for every
 * record once its write is acknowledged. It never stops by itself; the
 * parent kills it with SIGKILL. Arguments: data dir, round, chunk size.
 */
import { pattern } from "../_test_support.ts";
import { ChunkStore } from "./chunk_store.ts";

const [dir, round, chunkBytes] = Deno.args;
const KILL_CHUNK_BYTES = Number(chunkBytes);
const store = await ChunkStore.open(dir!, {
  chunkBytes: KILL_CHUNK_BYTES,
  checkpointEvery: 40,
  journalSegmentBytes: 256 * 1024,
  foldBytes: 64 * 1024,
});
const enc = new TextEncoder();
// Offsets are taken in call order, which is the order the store's serial
// queue runs the writes of a chunk in: each lands at the chunk's end.
const next = new Map<number, number>();
let gen = 0;
console.log("ready");
async function appender(w: number): Promise<void> {
  for (let i = 0;; i++) {
    const len = 100 + ((w * 7919 + i * 104_729) % 3997);
    let h = Number(round) * 10_000 + gen * 4 + (w % 4) + 1;
    if ((next.get(h) ?? 0) + len > KILL_CHUNK_BYTES) {
      gen++;
      h = Number(round) * 10_000 + gen * 4 + (w % 4) + 1;
    }
    if (!next.has(h)) {
      next.set(h, 0);
      store.setVersion(h, 1, true);
    }
    const offset = next.get(h)!;
    next.set(h, offset + len);
    const seed = Number(round) * 1e6 + w * 1e4 + i;
    await store.write(h, 1, offset, pattern(len, seed));
    Deno.stdout.writeSync(enc.encode(`${h} ${offset} ${len} ${seed}\n`));
  }
}
await Promise.all(Array.from({ length: 16 }, (_, w) => appender(w)));
