/**
 * Child process of the kill test: a "tablet server" that takes over the
 * store in GFS at `Deno.args[1]` (master URL `Deno.args[0]`) and writes to
 * it from 8 concurrent writers (small memtable, so flushes and
 * compactions run meanwhile). Writer w writes `w<w>-k<n % 100>` =
 * `w<w>-n<n>` in order and prints `<w> <n>` once the write is
 * acknowledged. It never stops by itself; the parent kills it with SIGKILL.
 * The GFS token comes in `STRATA_GFS_TOKEN` (not argv, which `ps` shows).
 */
import { GfsClient } from "@strata/gfs";
import { openGfsStore } from "./open_gfs_store.ts";

const [master, dir] = Deno.args;
const { store, fence } = await openGfsStore(
  new GfsClient(master!, { token: Deno.env.get("STRATA_GFS_TOKEN") }),
  dir!,
  {
    memtableBytes: 24 * 1024,
    compactionTrigger: 3,
    owner: `pid ${Deno.pid}`,
  },
);
const enc = new TextEncoder();
console.log(`ready ${fence.epoch}`);
async function writer(w: number): Promise<void> {
  for (let n = 0;; n++) {
    await store.put(
      enc.encode(`w${w}-k${n % 100}`),
      enc.encode(`w${w}-n${n}`.padEnd(80, ".")),
    );
    Deno.stdout.writeSync(enc.encode(`${w} ${n}\n`));
  }
}
await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(writer));
