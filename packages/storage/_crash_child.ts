/**
 * Child process of the crash test: appends to the log in `Deno.args[0]`
 * with sync on (or off when `Deno.args[2]` is `never`: records then go
 * through the memory mapping), from several concurrent appenders, and prints
 * `<index> <label>` for every record once its append is acknowledged. It
 * never stops by itself; the parent kills it with SIGKILL.
 */
import { SegmentedLog } from "./segmented_log.ts";
import { crashRecord } from "./_crash_record.ts";

const [dir, round, sync] = Deno.args;
const log = await SegmentedLog.open(dir!, {
  segmentBytes: 64 * 1024,
  sync: sync === "never" ? "never" : "always",
});
const enc = new TextEncoder();
console.log("ready");
let seq = 0;
async function appender(w: number): Promise<void> {
  while (true) {
    const labels = [0, 1, 2].slice(0, 1 + (seq % 3)).map(() =>
      `r${round}-w${w}-n${seq++}`
    );
    const { first } = await log.append(labels.map(crashRecord));
    const lines = labels.map((l, k) => `${first + k} ${l}\n`).join("");
    Deno.stdout.writeSync(enc.encode(lines));
  }
}
await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(appender));
