import assert from "node:assert/strict";
import { crashRecord } from "./_crash_record.ts";
import { NeedleVolume } from "./needle_volume.ts";
import { SegmentedLog } from "./segmented_log.ts";
import { linesUntilKilled } from "@strata/process";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;
const VOLUME_CHILD =
  new URL("./_volume_crash_child.ts", import.meta.url).pathname;

Deno.test("every record acknowledged before kill -9 is present and intact after reopen", async () => {
  await killedAppender("always", LONG ? 25 : 5);
});

Deno.test("with sync off (records stored through the memory mapping), every record acknowledged before kill -9 is present and intact after reopen", async () => {
  await killedAppender("never", LONG ? 25 : 4);
});

async function killedAppender(sync: "always" | "never", rounds: number) {
  const dir = await Deno.makeTempDir({ prefix: "strata-crash-" });
  const acknowledged = new Map<number, string>();
  try {
    for (let round = 0; round < rounds; round++) {
      const lines = await linesUntilKilled(CHILD, [dir, String(round), sync], {
        minMs: 30,
        spreadMs: 250,
      });
      for (const line of lines) {
        const [index, label] = line.split(" ");
        acknowledged.set(Number(index), label!);
      }
      const log = await SegmentedLog.open(dir, { segmentBytes: 64 * 1024 });
      try {
        for (const [index, label] of acknowledged) {
          assert.ok(
            index <= log.lastIndex,
            `round ${round}: acknowledged index ${index} is past ${log.lastIndex}`,
          );
          const [got] = await log.read(index, index + 1);
          assert.deepEqual(got, crashRecord(label), `index ${index}`);
        }
        // Records later rounds wrote must not be confused with older ones.
        if (round === rounds - 1) {
          assert.ok(acknowledged.size > 0, "the child acknowledged appends");
        }
      } finally {
        await log.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("every needle acknowledged before kill -9 is readable after reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-crash-vol-" });
  const rounds = LONG ? 15 : 3;
  const acknowledged: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const lines = await linesUntilKilled(VOLUME_CHILD, [dir, String(round)], {
        minMs: 30,
        spreadMs: 250,
      });
      for (const line of lines) acknowledged.push(Number(line));
      const volume = await NeedleVolume.open(dir);
      try {
        for (const key of acknowledged) {
          assert.deepEqual(
            await volume.get(key, 0, key + 1),
            crashRecord(`needle-${key}`),
            `round ${round}: needle ${key}`,
          );
        }
      } finally {
        await volume.close();
      }
    }
    assert.ok(acknowledged.length > 0, "the child acknowledged puts");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
