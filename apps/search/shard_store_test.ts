import assert from "node:assert/strict";
import { join } from "node:path";
import { Analyzer } from "./analyzer.ts";
import type { StoredDocument } from "./document.ts";
import { parseQuery } from "./query_parser.ts";
import { isSearchError } from "./search_error.ts";
import { ShardStore } from "./shard_store.ts";

const analyzer = new Analyzer();
function doc(
  i: number,
  body = `document number ${i} about wings`,
): StoredDocument {
  return { id: `d${i}`, user_id: i % 3, name: `title ${i}`, body, created: i };
}
function ids(store: ShardStore, q: string, k = 1000): string[] {
  return store.index.searchLocal(parseQuery(q, analyzer), k).hits.map((h) =>
    h.id
  ).sort();
}

Deno.test("a restarted shard reloads its segments, tombstones and unflushed writes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let store = await ShardStore.open(dir, { flushDocs: 10, sync: "never" });
    for (let i = 0; i < 35; i++) await store.write({ add: [doc(i)] });
    await store.write({ delete: ["d3", "d31"] }); // one in a segment, one in the buffer
    await store.write({ add: [doc(4, "replaced body about engines")] });
    assert.ok(store.index.segments.length >= 3);
    const before = ids(store, "wings");
    await store.close();
    store = await ShardStore.open(dir, { flushDocs: 10, sync: "never" });
    assert.deepEqual(ids(store, "wings"), before);
    assert.equal(before.length, 32);
    assert.ok(
      !before.includes("d3") && !before.includes("d31") &&
        !before.includes("d4"),
    );
    assert.deepEqual(ids(store, "engines"), ["d4"]);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every acknowledged write survives kill -9 of the shard process", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_store_crash_child.ts", import.meta.url).pathname,
        dir,
        "50",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let acked = -1;
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buf = "";
    while (acked < 40) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (const m of buf.matchAll(/acked (\d+)\n/g)) acked = Number(m[1]);
    }
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    assert.ok(acked >= 40, "the child acknowledged writes");
    const store = await ShardStore.open(dir, { flushDocs: 50 });
    try {
      for (let i = 0; i <= acked; i++) {
        for (let j = 0; j < 7; j++) {
          // Batch i deletes b(i-3)-0; a batch after the last ack may have landed too.
          if (j === 0 && i >= 1 && i + 3 > acked) continue;
          const gone = j === 0 && i >= 1;
          assert.equal(
            store.index.get(`b${i}-${j}`) === null,
            gone,
            `b${i}-${j}`,
          );
        }
      }
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("once writes pause, the segments not yet flushed are merged into one; not while writes go on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await ShardStore.open(dir, {
      flushDocs: 1000,
      idleMergeMs: 1500,
      idleMergeSegments: 2,
      sync: "never",
    });
    for (let b = 0; b < 5; b++) {
      await store.writeAsSegment({
        add: Array.from({ length: 4 }, (_, i) => doc(b * 4 + i)),
      });
    }
    await store.write({ delete: ["d5"] });
    // Just written: no merge (under maxSegments, not idle yet).
    assert.equal(await store.maybeMerge(), false);
    assert.equal(store.index.segments.length, 5);
    const before = ids(store, "wings");
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal(await store.maybeMerge(), true);
    assert.equal(store.index.segments.length, 1);
    assert.equal(await store.maybeMerge(), false, "one segment: nothing left");
    assert.deepEqual(ids(store, "wings"), before);
    assert.equal(before.length, 19);
    // A trickle of small writes: the small segments merge, the big one
    // (more than half of the unflushed documents) is not rewritten.
    await store.writeAsSegment({ add: [doc(100), doc(101)] });
    await store.writeAsSegment({ add: [doc(102), doc(103)] });
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal(await store.maybeMerge(), true);
    assert.deepEqual(
      store.index.segments.map((h) => h.segment.docCount).sort((a, b) => a - b),
      [4, 19],
    );
    assert.equal(ids(store, "wings").length, 23);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merges drop deleted documents and keep results unchanged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await ShardStore.open(dir, {
      flushDocs: 5,
      maxSegments: 2,
      mergeFactor: 3,
      sync: "never",
    });
    for (let i = 0; i < 40; i++) await store.write({ add: [doc(i)] });
    for (let i = 0; i < 40; i += 4) await store.write({ delete: [`d${i}`] });
    await store.flush();
    const before = store.index.searchLocal(
      parseQuery("wings document", analyzer),
      50,
    ).hits.map((h) => [h.id, h.score]);
    let merged = 0;
    while (await store.maybeMerge()) merged++;
    assert.ok(merged > 0);
    assert.ok(store.index.segments.length <= 2);
    assert.equal(
      store.index.segments.reduce((s, h) => s + h.deletedCount, 0),
      0,
    );
    const after = store.index.searchLocal(
      parseQuery("wings document", analyzer),
      50,
    ).hits.map((h) => [h.id, h.score]);
    assert.deepEqual(after, before);
    const files = [...Deno.readDirSync(dir)].filter((e) =>
      e.name.endsWith(".sseg")
    ).length;
    assert.equal(files, store.index.segments.length);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupted segment file is refused with corrupt_segment, not served", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await ShardStore.open(dir, { flushDocs: 5, sync: "never" });
    for (let i = 0; i < 5; i++) await store.write({ add: [doc(i)] });
    await store.close();
    const seg = [...Deno.readDirSync(dir)].find((e) =>
      e.name.endsWith(".sseg")
    )!;
    const bytes = await Deno.readFile(join(dir, seg.name));
    bytes[bytes.length >> 1]! ^= 0x40;
    await Deno.writeFile(join(dir, seg.name), bytes);
    await assert.rejects(
      ShardStore.open(dir),
      (e) => isSearchError(e, "corrupt_segment"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("segment replication: a write built into a segment by one replica and applied as a record by another leaves both equal, across restarts", async () => {
  const da = await Deno.makeTempDir();
  const db = await Deno.makeTempDir();
  try {
    const opts = { flushDocs: 25, sync: "never" as const };
    let a = await ShardStore.open(da, opts);
    let b = await ShardStore.open(db, opts);
    // Mixed with plain writes (hinted handoff replays those): the buffer's
    // documents come before a later segment's, replacements and deletes
    // apply in order on both.
    for (let w = 0; w < 8; w++) {
      const add = [doc(w * 5), doc(w * 5 + 1), doc(w * 5 + 2), doc(w * 5 + 3)];
      if (w % 3 === 2) {
        await a.write({ add });
        await b.write({ add });
        continue;
      }
      // A repeated id: the last copy wins, as in the buffer.
      add.push(doc(w * 5, `replaced ${w} about engines`));
      const r = await a.writeAsSegment({ add, delete: w > 0 ? [`d${w}`] : [] });
      assert.equal(r.added, 4);
      const rb = await b.applyRecord(r.record);
      assert.deepEqual(rb, { added: r.added, deleted: r.deleted });
    }
    const docsOf = (s: ShardStore) => s.index.documentsAfter("", 1000);
    assert.deepEqual(docsOf(b), docsOf(a));
    assert.deepEqual(ids(b, "wings"), ids(a, "wings"));
    assert.deepEqual(ids(b, "engines"), ids(a, "engines"));
    assert.ok(ids(a, "engines").length >= 4);
    const before = docsOf(a);
    // Restart: flushed segments plus a replayed tail of segment records.
    await a.close();
    await b.close();
    a = await ShardStore.open(da, opts);
    b = await ShardStore.open(db, { ...opts, flushDocs: 1000 });
    assert.deepEqual(docsOf(a), before);
    assert.deepEqual(docsOf(b), before);
    assert.deepEqual(ids(b, "engines"), ids(a, "engines"));
    // Bytes that are not a record are refused before anything is logged.
    for (const bad of [new Uint8Array([1, 2, 3]), new Uint8Array(0)]) {
      await assert.rejects(
        () => b.applyRecord(bad),
        (e) => isSearchError(e, "bad_request"),
      );
    }
    assert.deepEqual(docsOf(b), before);
    await a.close();
    await b.close();
  } finally {
    await Deno.remove(da, { recursive: true });
    await Deno.remove(db, { recursive: true });
  }
});
