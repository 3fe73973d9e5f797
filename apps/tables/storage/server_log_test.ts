import assert from "node:assert/strict";
import { GfsClient } from "@strata/gfs";
import { startTestCell } from "../../gfs/_test_support.ts";
import { openGfsTabletStorage } from "../server/tablet_storage.ts";
import type { KeyRange, TableSchema, Tablet } from "../tablet/types.ts";
import { ServerLog } from "./server_log.ts";
import { splitServerLog } from "./log_split.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ALL: KeyRange = { start: new Uint8Array(0), end: null };
const SCHEMA: TableSchema = { name: "t", families: [{ name: "f" }] };
const ROOT = "/tables";

const put = (t: Tablet, row: string, v: string) =>
  t.mutateRow(enc.encode(row), [{
    op: "put",
    family: "f",
    qualifier: enc.encode("q"),
    value: enc.encode(v.padEnd(100, ".")),
  }]);
const read = async (t: Tablet, row: string) => {
  const r = await t.getRow(enc.encode(row));
  return r === undefined ? undefined : dec.decode(r.cells[0]!.value).trim()
    .replace(/\.+$/, "");
};

Deno.test("server log: tablets share one GFS log with group commit; a dead server's log is split by tablet and every acknowledged write is recovered into its tablet; a deposed owner acknowledges nothing", async () => {
  const dir = await Deno.makeTempDir();
  const cell = await startTestCell(dir, {
    chunkBytes: 256 * 1024,
    replication: 3,
    servers: 3,
  });
  const client = () =>
    new GfsClient(cell.master.url, { token: cell.secrets.tokens.write });
  try {
    // Server a: two tablets on one log.
    const gfsA = client();
    const logA = ServerLog.open(gfsA, `${ROOT}/_logs/a/1-x`, {
      rollBytes: 16 * 1024,
    });
    const openA = openGfsTabletStorage(gfsA, ROOT, "a", () => logA, {
      memtableBytes: 1 << 20,
    });
    const [t1, t2] = [
      await openA("t/t1", SCHEMA, ALL),
      await openA("t/t2", SCHEMA, ALL),
    ];
    const acked = new Map<string, string>();
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < 400; i += 16) {
          const [t, name] = i % 2 === 0 ? [t1, "t1"] : [t2, "t2"];
          await put(t, `r${i}`, `a${i}`);
          acked.set(`${name}/r${i}`, `a${i}`);
        }
      }),
    );
    const s = logA.stats;
    assert.ok(
      s.blocks < s.records / 2,
      `group commit: ${s.records} records in ${s.blocks} blocks`,
    );
    assert.ok(s.files > 1, `rolled by size: ${s.files} files`);
    // t1 flushes: files only t1 needed... t2 still pins them, none go.
    await t1.flush();
    assert.equal(logA.stats.deletedFiles, 0, "t2's records keep the files");
    await t2.flush();
    assert.ok(logA.stats.deletedFiles > 0, "no tablet needs the old files");
    // More writes after the flushes, then a "crash" of a: nothing closed.
    for (let i = 400; i < 500; i++) {
      const [t, name] = i % 2 === 0 ? [t1, "t1"] : [t2, "t2"];
      await put(t, `r${i}`, `b${i}`);
      acked.set(`${name}/r${i}`, `b${i}`);
    }

    // The master has a live server split a's log: sealed, then sorted.
    const split = await splitServerLog(client(), logA.dir);
    assert.equal(split.tablets, 2);
    await assert.rejects(put(t1, "late", "x"), /sealed/);
    assert.ok(logA.failed);
    assert.equal((await splitServerLog(client(), logA.dir)).tablets, 0);

    // Server b recovers both tablets from the pieces.
    const gfsB = client();
    const logB = ServerLog.open(gfsB, `${ROOT}/_logs/b/2-y`);
    const openB = openGfsTabletStorage(gfsB, ROOT, "b", () => logB);
    const [u1, u2] = [
      await openB("t/t1", SCHEMA, ALL),
      await openB("t/t2", SCHEMA, ALL),
    ];
    for (const [k, v] of acked) {
      const [name, row] = k.split("/") as [string, string];
      assert.equal(await read(name === "t1" ? u1 : u2, row), v, k);
    }
    assert.equal(await read(u1, "late"), undefined, "refused, not replayed");
    // Rows of one tablet never show in the other.
    assert.equal(await read(u1, "r1"), undefined);
    assert.equal(await read(u2, "r0"), undefined);

    // A move without a crash: c claims t1 while b still has it open. b's
    // later write is refused (fenced); c reads b's acknowledged ones from
    // b's live log (never split).
    await put(u1, "m1", "b-side");
    const gfsC = client();
    const logC = ServerLog.open(gfsC, `${ROOT}/_logs/c/3-z`);
    const openC = openGfsTabletStorage(gfsC, ROOT, "c", () => logC);
    const v1 = await openC("t/t1", SCHEMA, ALL);
    await assert.rejects(put(u1, "m2", "stale"), /superseded/);
    assert.equal(await read(v1, "m1"), "b-side");
    assert.equal(await read(v1, "m2"), undefined);
    assert.equal(await read(v1, "r0"), "a0");
    // u2 on b is unaffected by t1's fencing.
    await put(u2, "m3", "still-b");
    assert.equal(await read(u2, "m3"), "still-b");
    for (const t of [v1, u2]) await t.close();
    for (const l of [logB, logC]) await l.close();
  } finally {
    await cell.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
