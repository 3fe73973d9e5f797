import assert from "node:assert/strict";
import { CRASH_SCHEMA } from "./_crash_schema.ts";
import { openTablet } from "./tablet.ts";
import { linesUntilKilled } from "@strata/process";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("every row mutation acknowledged before kill -9 is readable after reopen, and timestamps keep rising across restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-tablet-crash-" });
  const rounds = LONG ? 12 : 3;
  const acked: { row: string; ts: number; value: string; w: string }[] = [];
  let maxTs = -1;
  try {
    for (let round = 0; round < rounds; round++) {
      const lines = await linesUntilKilled(CHILD, [dir, String(round)], {
        minMs: 400,
        spreadMs: 800,
      });
      let roundMin = Infinity;
      for (const line of lines) {
        const [row, ts, value] = line.split(" ");
        acked.push({
          row: row!,
          ts: Number(ts),
          value: value!,
          w: value!.split("-")[1]!,
        });
        roundMin = Math.min(roundMin, Number(ts));
      }
      assert.ok(lines.length > 0, `round ${round} acknowledged writes`);
      // The child's clock is an hour behind the previous round's.
      assert.ok(
        roundMin > maxTs,
        `round ${round}: timestamp ${roundMin} not above ${maxTs}`,
      );
      maxTs = Math.max(maxTs, ...acked.map((a) => a.ts));
      const t = await openTablet(dir, CRASH_SCHEMA, {
        start: new Uint8Array(0),
        end: null,
      });
      try {
        for (const a of acked) {
          // Both cells of the mutation, exactly that version.
          const r = await t.getRow(enc.encode(a.row), {
            asOf: a.ts,
            versions: 1,
            columns: [
              { family: "f", qualifier: enc.encode("q") },
              { family: "f", qualifier: enc.encode(`w${a.w}`) },
            ],
          });
          const cells = r?.cells.filter((c) => c.timestamp === a.ts) ?? [];
          assert.equal(
            cells.length,
            2,
            `round ${round}: ${a.row}@${a.ts}=${a.value} lost`,
          );
          for (const c of cells) assert.equal(dec.decode(c.value), a.value);
        }
      } finally {
        await t.close();
      }
    }
    assert.ok(acked.length > 200, `writes acknowledged: ${acked.length}`);
    const tables = [...Deno.readDirSync(`${dir}/tables`)].filter((e) =>
      e.name.endsWith(".sst")
    );
    assert.ok(tables.length > 0, "the child flushed memtables to SSTables");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
