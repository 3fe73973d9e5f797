import assert from "node:assert/strict";
import { GfsClient } from "@strata/gfs";
import { startTestCell } from "../../gfs/_test_support.ts";
import { openGfsTabletStorage } from "../server/tablet_storage.ts";
import type { KeyRange, TableSchema } from "../tablet/types.ts";
import { ServerLog, type ServerLogOptions } from "./server_log.ts";

const enc = new TextEncoder();
const ALL: KeyRange = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = { name: "t", families: [{ name: "f" }] };
const WRITERS = 32;

/**
 * Records per block when `WRITERS` writers each put, wait 1-3 ms (their
 * client's round trip: a real log's writers spend it being answered and
 * sending again, each in its own time), and put again.
 */
async function recordsPerBlock(
  cell: Awaited<ReturnType<typeof startTestCell>>,
  name: string,
  gather: ServerLogOptions["gather"],
): Promise<number> {
  const gfs = new GfsClient(cell.master.url, {
    token: cell.secrets.tokens.write,
  });
  const log = ServerLog.open(gfs, `/tables/_logs/${name}/1-x`, { gather });
  const open = openGfsTabletStorage(gfs, "/tables", name, () => log, {
    memtableBytes: 1 << 20,
  });
  const t = await open(`t/${name}`, SCHEMA, ALL);
  const before = log.stats;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < 12; i++) {
        await t.mutateRow(enc.encode(`r${w}-${i}`), [{
          op: "put",
          family: "f",
          qualifier: enc.encode("q"),
          value: enc.encode("v".repeat(100)),
        }]);
        await new Promise((r) => setTimeout(r, 1 + (w % 3)));
      }
    }),
  );
  const s = log.stats;
  await t.close();
  await log.close();
  return (s.records - before.records) / (s.blocks - before.blocks);
}

Deno.test("server log group commit: a busy log waits for the writers its last block acknowledged, so blocks carry them all instead of alternating halves", async () => {
  const dir = await Deno.makeTempDir();
  const cell = await startTestCell(dir, {
    chunkBytes: 1 << 20,
    replication: 3,
    servers: 3,
  });
  try {
    const apart = await recordsPerBlock(cell, "apart", false);
    const gathered = await recordsPerBlock(cell, "gathered", {
      busyWrites: 8,
      maxWaitMs: 200,
      maxFraction: 10,
    });
    assert.ok(
      gathered >= 0.75 * WRITERS && gathered > 1.3 * apart,
      `records per block: ${gathered.toFixed(1)} gathered, ${
        apart.toFixed(1)
      } without`,
    );
  } finally {
    await cell.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
