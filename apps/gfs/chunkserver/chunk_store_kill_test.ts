import assert from "node:assert/strict";
import { linesUntilKilled } from "@strata/process";
import { pattern } from "../_test_support.ts";
import { ChunkStore } from "./chunk_store.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
/** A chunk fills after a few hundred records: the child moves to new ones. */
const KILL_CHUNK_BYTES = 1 << 20;
const CHILD = new URL("./_append_kill_child.ts", import.meta.url).pathname;

Deno.test("16 concurrent small appenders, kill -9 at a random moment: every acknowledged record is present and intact after reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gfs-store-kill-" });
  const rounds = LONG ? 12 : 2;
  const acked: { h: number; offset: number; len: number; seed: number }[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const lines = await linesUntilKilled(CHILD, [
        dir,
        String(round),
        String(KILL_CHUNK_BYTES),
      ], {
        minMs: 200,
        spreadMs: 1000,
      });
      for (const line of lines) {
        const [h, offset, len, seed] = line.split(" ").map(Number);
        acked.push({ h: h!, offset: offset!, len: len!, seed: seed! });
      }
      const store = await ChunkStore.open(dir, {
        chunkBytes: KILL_CHUNK_BYTES,
      });
      try {
        for (const r of acked) {
          const got = await store.read(r.h, r.offset, r.len, 1);
          assert.deepEqual(
            got,
            pattern(r.len, r.seed),
            `round ${round}: chunk ${r.h} bytes ${r.offset}+${r.len}`,
          );
        }
        // Scrub every chunk: folds the journaled bytes, verifies blocks.
        for (const [h] of store.list()) await store.verify(h);
      } finally {
        await store.close();
      }
    }
    console.log(`${acked.length} acknowledged records checked`);
    assert.ok(acked.length > 16, "the child acknowledged appends");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
