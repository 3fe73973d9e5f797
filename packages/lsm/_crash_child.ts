/**
 * Child process of the crash test: writes to the store in `Deno.args[0]`
 * with sync on from several concurrent writers (small memtable, so flushes
 * and compactions happen while it runs) and prints `<key> <value>` for
 * every write once it is acknowledged. It never stops by itself; the
 * parent kills it with SIGKILL.
 */
import { LsmStore } from "./lsm_store.ts";

const [dir, round] = Deno.args;
const db = await LsmStore.open(dir!, {
  memtableBytes: 16 * 1024,
  compactionTrigger: 4,
});
const enc = new TextEncoder();
console.log("ready");
let seq = 0;
async function writer(w: number): Promise<void> {
  while (true) {
    const n = seq++;
    // Keys repeat across rounds and writers so later values overwrite earlier ones.
    const key = `k${(n * 7919) % 3000}`;
    const value = `r${round}-w${w}-n${n}`;
    await db.put(enc.encode(key), enc.encode(value));
    Deno.stdout.writeSync(enc.encode(`${key} ${value}\n`));
  }
}
await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(writer));
