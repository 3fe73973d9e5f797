import assert from "node:assert/strict";
import fc from "fast-check";
import { frameRecord, scanRecords } from "@strata/gfs";
import { decodeBlock, encodeBlock, type LogEntry } from "./log_format.ts";
import { resolveLog } from "./log_replay.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

/** What one GFS record append of a block may leave in the file. */
type Landing = "once" | "dup" | "torn-then-once" | "lost" | "torn";
const landingArb = fc.constantFrom<Landing>(
  "once",
  "once",
  "once",
  "dup",
  "torn-then-once",
  "lost",
  "torn",
);
const noiseArb = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.integer({ min: 1, max: 40 }).map((n) => new Uint8Array(n)), // padding
  fc.uint8Array({ minLength: 1, maxLength: 40 }), // garbage
);
const ownerArb = fc.record({
  batches: fc.array(
    fc.record({
      sizes: fc.array(fc.integer({ min: 0, max: 30 }), {
        minLength: 1,
        maxLength: 4,
      }),
      landing: landingArb,
      noise: noiseArb,
    }),
    { maxLength: 6 },
  ),
  /** Appends one more block after the next owner claimed (a zombie). */
  zombie: fc.option(
    fc.record({
      size: fc.integer({ min: 0, max: 30 }),
      beforeRead: fc.boolean(),
    }),
    { nil: undefined },
  ),
});

Deno.test("commit log replay: duplicates, padding, torn blocks and fenced owners' late appends", () => {
  fc.assert(
    fc.property(
      fc.array(ownerArb, { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (owners, seed) => {
        let x = seed;
        const byte = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
        const files: Uint8Array[][] = []; // chunk bytes as pieces
        const append = (file: Uint8Array[], block: Uint8Array, l: Landing) => {
          const framed = frameRecord(block);
          const torn = framed.slice(
            0,
            Math.max(1, framed.length - 1 - (byte() % 8)),
          );
          if (l === "torn" || l === "torn-then-once") file.push(torn);
          if (l === "once" || l === "torn-then-once") file.push(framed);
          if (l === "dup") file.push(framed, framed);
        };
        const readAll = (): LogEntry[] => {
          const out: LogEntry[] = [];
          for (const f of files) {
            const bytes = new Uint8Array(f.reduce((n, p) => n + p.length, 0));
            let o = 0;
            for (const p of f) bytes.set(p, (o += p.length) - p.length);
            for (const rec of scanRecords(bytes)) {
              out.push(...decodeBlock(rec).entries);
            }
          }
          return out;
        };
        // The history every later owner must see: index → payload.
        let history: Uint8Array[] = []; // history[i - 1] is index i
        let pendingZombie: (() => void) | null = null;
        owners.forEach((owner, k) => {
          const epoch = k + 1;
          // The previous owner's late append lands before or after this
          // owner reads the log (it claimed first, so it is never acknowledged).
          const prevZombie = k > 0 ? owners[k - 1]!.zombie : undefined;
          if (prevZombie?.beforeRead && pendingZombie) pendingZombie();
          const view = resolveLog(readAll(), 0);
          assert.equal(view.records.length, view.last);
          // Everything acknowledged (and everything an earlier owner
          // replayed) is there, unchanged, in order.
          assert.ok(view.last >= history.length);
          history.forEach((p, i) => {
            assert.deepEqual(view.records[i]!.payload, p, `index ${i + 1}`);
          });
          history = view.records.map((r) => r.payload);
          if (!prevZombie?.beforeRead && pendingZombie) pendingZombie();
          pendingZombie = null;
          // This owner: a new file starting with its start entry.
          const file: Uint8Array[] = [];
          files.push(file);
          let next = view.last + 1;
          append(
            file,
            encodeBlock([{ kind: "start", epoch, index: next }]),
            "once",
          );
          let failed = false;
          for (const b of owner.batches) {
            if (failed) break;
            const entries: LogEntry[] = b.sizes.map((n, j) => ({
              kind: "record",
              epoch,
              index: next + j,
              payload: Uint8Array.from({ length: n }, byte),
            }));
            file.push(b.noise);
            append(file, encodeBlock(entries), b.landing);
            if (b.landing === "lost" || b.landing === "torn") {
              failed = true; // never acknowledged; the log stops here
            } else {
              for (const e of entries) {
                if (e.kind === "record") history.push(e.payload);
              }
              next += entries.length;
            }
          }
          if (owner.zombie !== undefined && !failed) {
            const z = owner.zombie;
            const at = next;
            pendingZombie = () =>
              append(
                file,
                encodeBlock([{
                  kind: "record",
                  epoch,
                  index: at,
                  payload: Uint8Array.from({ length: z.size }, byte),
                }]),
                "once",
              );
          }
        });
        if (pendingZombie !== null) (pendingZombie as () => void)();
        const final = resolveLog(readAll(), 0);
        history.forEach((p, i) =>
          assert.deepEqual(final.records[i]!.payload, p)
        );
      },
    ),
    { numRuns: LONG ? 2000 : 300 },
  );
});

Deno.test("commit log replay: covered records are skipped, a gap ends the history", () => {
  const rec = (epoch: number, index: number, byte = index): LogEntry => ({
    kind: "record",
    epoch,
    index,
    payload: new Uint8Array([byte]),
  });
  const r = resolveLog([rec(1, 1), rec(1, 2), rec(1, 3), rec(1, 5)], 1);
  assert.deepEqual(r.records.map((x) => x.index), [2, 3]);
  assert.equal(r.last, 3);
  assert.equal(r.beyondGap, 1);
  // Covered beyond the log (the log was dropped after a flush).
  assert.equal(resolveLog([rec(1, 1)], 9).last, 9);
  // Epoch 2 started at 3: epoch 1's record 3 and 4 are void.
  const v = resolveLog([
    rec(1, 1),
    rec(1, 2),
    rec(1, 3),
    rec(1, 4),
    { kind: "start", epoch: 2, index: 3 },
    rec(2, 3, 99),
  ], 0);
  assert.deepEqual(v.records.map((x) => [x.index, x.payload[0]]), [
    [1, 1],
    [2, 2],
    [3, 99],
  ]);
});

Deno.test("log blocks: a flipped byte ends decoding at the damaged entry", () => {
  const block = encodeBlock([
    {
      kind: "record",
      epoch: 1,
      index: 2 ** 40 + 7,
      payload: new Uint8Array([1, 2, 3]),
    },
    { kind: "start", epoch: 3, index: 9 },
    { kind: "record", epoch: 1, index: 8, payload: new Uint8Array(0) },
  ]);
  const ok = decodeBlock(block);
  assert.equal(ok.intact, true);
  assert.deepEqual(ok.entries.map((e) => [e.kind, e.epoch, e.index]), [
    ["record", 1, 2 ** 40 + 7],
    ["start", 3, 9],
    ["record", 1, 8],
  ]);
  for (let i = 0; i < block.length; i++) {
    const bad = block.slice();
    bad[i]! ^= 0x10;
    const d = decodeBlock(bad);
    assert.equal(d.intact, false, `byte ${i}`);
    const firstBad = i < 24 ? 0 : i < 45 ? 1 : 2;
    assert.equal(d.entries.length, firstBad, `byte ${i}`);
  }
  assert.equal(decodeBlock(block.subarray(0, block.length - 1)).intact, false);
});
