/**
 * Child process of the volume crash test: puts needles into the volume in
 * `Deno.args[0]` with sync on, from several concurrent writers, and prints
 * `<key>` once each put is acknowledged. The parent kills it with SIGKILL.
 */
import { NeedleVolume } from "./needle_volume.ts";
import { crashRecord } from "./_crash_record.ts";

const [dir, round] = Deno.args;
const volume = await NeedleVolume.open(dir!, { checkpointEvery: 50 });
const enc = new TextEncoder();
console.log("ready");
let seq = Number(round) * 1_000_000;
async function writer(): Promise<void> {
  while (true) {
    const key = seq++;
    await volume.put(key, 0, key + 1, crashRecord(`needle-${key}`));
    Deno.stdout.writeSync(enc.encode(`${key}\n`));
  }
}
await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(writer));
