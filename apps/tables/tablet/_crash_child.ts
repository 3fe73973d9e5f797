/**
 * Child process of the tablet crash test: row mutations from 8 concurrent
 * writers (small memtable, so flushes and compactions run meanwhile),
 * printing `<row> <timestamp> <value>` for each once acknowledged. Its
 * wall clock runs one hour further behind on each round, so timestamps
 * only keep rising if the tablet's persisted clock mark works. It never
 * stops by itself; the parent kills it with SIGKILL.
 */
import { openTablet } from "./tablet.ts";
import { CRASH_SCHEMA } from "./_crash_schema.ts";

const [dir, roundArg] = Deno.args;
const round = Number(roundArg);
const tablet = await openTablet(
  dir!,
  CRASH_SCHEMA,
  { start: new Uint8Array(0), end: null },
  {
    clock: () => Date.now() - round * 3_600_000,
    lsm: { memtableBytes: 16 * 1024, compactionTrigger: 4 },
  },
);
const enc = new TextEncoder();
console.log("ready");
let seq = 0;
async function writer(w: number): Promise<void> {
  while (true) {
    const n = seq++;
    const row = `r${(n * 7919) % 300}`;
    const value = `${round}-${w}-${n}`;
    const { timestamp } = await tablet.mutateRow(enc.encode(row), [
      {
        op: "put",
        family: "f",
        qualifier: enc.encode("q"),
        value: enc.encode(value),
      },
      {
        op: "put",
        family: "f",
        qualifier: enc.encode(`w${w}`),
        value: enc.encode(value),
      },
    ]);
    Deno.stdout.writeSync(enc.encode(`${row} ${timestamp} ${value}\n`));
  }
}
await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(writer));
