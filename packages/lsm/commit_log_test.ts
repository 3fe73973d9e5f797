import assert from "node:assert/strict";
import type { CommitLog } from "./commit_log.ts";
import { LocalCommitLog } from "./local_commit_log.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { LsmStore } from "./lsm_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A commit log in memory that records what the store asks of it. */
class MemoryCommitLog implements CommitLog {
  records: Uint8Array[] = []; // index i + 1 at position i
  dropped = 0;
  calls: string[] = [];
  recover(
    covered: number,
    apply: (index: number, record: Uint8Array) => void,
  ): Promise<number> {
    this.calls.push(`recover ${covered}`);
    for (
      let i = Math.max(covered + 1, this.dropped + 1);
      i <= this.records.length;
      i++
    ) {
      apply(i, this.records[i - 1]!);
    }
    return Promise.resolve(Math.max(covered, this.records.length));
  }
  append(records: readonly Uint8Array[]): Promise<{ last: number }> {
    this.records.push(...records.map((r) => r.slice()));
    return Promise.resolve({ last: this.records.length });
  }
  compactPrefix(upTo: number): Promise<unknown> {
    this.calls.push(`compactPrefix ${upTo}`);
    this.dropped = Math.max(this.dropped, upTo);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.calls.push("close");
    return Promise.resolve();
  }
}

Deno.test("LsmStore writes through a given commit log and replays it on reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new MemoryCommitLog();
    const files = await LocalFileStore.open(`${dir}/t`);
    const db = await LsmStore.open("", { files, log, firstTableId: 1000 });
    for (let i = 0; i < 10; i++) {
      await db.put(enc.encode(`k${i}`), enc.encode(`v${i}`));
    }
    assert.equal(log.records.length, 10);
    await db.flush();
    assert.deepEqual(log.calls, ["recover 0", "compactPrefix 10"]);
    assert.equal(db.tables[0]!.name, "0000001000.sst");
    await db.put(enc.encode("k1"), enc.encode("after"));
    await db.delete(enc.encode("k2"));
    await db.close();
    assert.equal(log.calls.at(-1), "close");
    // Nothing of this store is on local disk but the tables: the log is ours.
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["t"],
    );

    log.calls = [];
    const again = await LsmStore.open("", { files, log });
    assert.deepEqual(log.calls, ["recover 10"]);
    assert.equal(again.stats().logRecordsReplayed, 2);
    assert.equal(dec.decode(await again.get(enc.encode("k1"))), "after");
    assert.equal(await again.get(enc.encode("k2")), undefined);
    assert.equal(dec.decode(await again.get(enc.encode("k9"))), "v9");
    await again.put(enc.encode("k3"), enc.encode("x"));
    assert.equal(log.records.length, 13); // indexes continue after replay
    await again.flush();
    assert.equal(again.tables[0]!.name, "0000001001.sst");
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A memory log that appends at once (`appendNow`) except when told to make
 * the next appends wait: those (and any after them) resolve only when
 * `release` is called.
 */
class SometimesWaitingLog extends MemoryCommitLog {
  waitNext = 0;
  #held: (() => void)[] = [];
  nowCount = 0;
  appendNow(records: readonly Uint8Array[]): { last: number } | undefined {
    if (this.waitNext > 0 || this.#held.length > 0) return undefined;
    this.nowCount++;
    this.records.push(...records.map((r) => r.slice()));
    return { last: this.records.length };
  }
  override append(records: readonly Uint8Array[]): Promise<{ last: number }> {
    this.records.push(...records.map((r) => r.slice()));
    const last = this.records.length;
    // In index order: behind any append still waiting.
    if (this.waitNext === 0 && this.#held.length === 0) {
      return Promise.resolve({ last });
    }
    if (this.waitNext > 0) this.waitNext--;
    return new Promise((resolve) => this.#held.push(() => resolve({ last })));
  }
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
}

Deno.test("LsmStore applies an append made at once in the caller's turn, and never ahead of an earlier append still waiting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new SometimesWaitingLog();
    const files = await LocalFileStore.open(`${dir}/t`);
    const db = await LsmStore.open("", { files, log });
    const k = enc.encode("k");
    // Made at once: readable before the write's promise is awaited.
    const first = db.put(k, enc.encode("v0"));
    assert.equal(dec.decode(await db.get(k)), "v0");
    await first;
    assert.equal(log.nowCount, 1);
    // The next append waits. Once the log resolves it, it could make the
    // one after at once, before the store has applied the first (that
    // takes a turn): the second must not overtake it in the memtable.
    log.waitNext = 1;
    const p1 = db.put(k, enc.encode("v1"));
    assert.equal(dec.decode(await db.get(k)), "v0");
    log.release();
    const p2 = db.put(k, enc.encode("v2"));
    assert.equal(log.records.length, 3);
    await Promise.all([p1, p2]);
    assert.equal(dec.decode(await db.get(k)), "v2");
    // Afterwards appends are made at once again.
    await db.put(k, enc.encode("v3"));
    assert.equal(log.nowCount, 2);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalCommitLog: indexes in order, replay after the covered index, drop whole segments", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await LocalCommitLog.open(dir, { segmentBytes: 1024 });
    assert.equal(await log.recover(0, () => assert.fail("empty log")), 0);
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => log.append([enc.encode(`r${i}`.padEnd(60, "."))]),
      ),
    );
    assert.deepEqual(results.map((r) => r.last), results.map((_, i) => i + 1));
    await log.compactPrefix(30);
    assert.ok(log.log.firstIndex > 1 && log.log.firstIndex <= 31);
    await log.close();

    const again = await LocalCommitLog.open(dir, { segmentBytes: 1024 });
    const seen: number[] = [];
    const last = await again.recover(40, (i, r) => {
      seen.push(i);
      assert.equal(dec.decode(r).split(".")[0], `r${i - 1}`);
    });
    assert.equal(last, 50);
    assert.deepEqual(seen, [41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalCommitLog: a log behind the tables restarts above them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await LocalCommitLog.open(dir);
    await log.append([enc.encode("a"), enc.encode("b")]);
    // The tables cover index 7 but the log holds only 2 records (it was
    // lost or emptied): nothing is replayed and new records come after 7.
    assert.equal(await log.recover(7, () => assert.fail("covered")), 7);
    assert.deepEqual(await log.append([enc.encode("c")]), {
      first: 8,
      last: 8,
    });
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LsmStore.close waits for writes whose append is on its way, and refuses new ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new SometimesWaitingLog();
    const files = await LocalFileStore.open(`${dir}/t`);
    const db = await LsmStore.open("", { files, log });
    log.waitNext = 1;
    const k = enc.encode("k");
    let written = false;
    const pending = db.put(k, enc.encode("v1")).then(() => written = true);
    let closed = false;
    const closing = db.close().then(() => closed = true);
    await assert.rejects(db.put(k, enc.encode("v2")));
    await new Promise((r) => setTimeout(r, 20));
    // The append has not resolved: the write is neither acknowledged nor
    // failed, so the store is not closed (its next owner would find a
    // write in doubt behind it).
    assert.equal(closed, false);
    assert.equal(log.calls.includes("close"), false);
    log.release();
    await Promise.all([pending, closing]);
    assert.equal(written, true);
    assert.equal(log.calls.at(-1), "close");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
