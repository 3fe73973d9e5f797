import assert from "node:assert/strict";
import type { ChunkserverService } from "./chunkserver_service.ts";
import { MutationOrder } from "./mutation_order.ts";
import {
  MAX_BATCHES_IN_FLIGHT,
  RecordAppender,
  type RecordResult,
} from "./record_appender.ts";
import type { FanOutResult } from "./secondaries.ts";

/** A forwarded batch the test answers by hand. */
interface Forward {
  offset: number;
  seq: number;
  bytes: number;
  answer: (r: FanOutResult) => void;
}

/** A primary with an in-memory store and secondaries that answer when told. */
function fakePrimary() {
  let length = 0;
  const forwards: Forward[] = [];
  let mutex: Promise<unknown> = Promise.resolve();
  const cs = {
    cfg: { chunkBytes: 1 << 20 },
    stats: { writes: 0, writeBytes: 0 },
    order: new MutationOrder(),
    checkLease() {},
    serial<T>(_h: number, fn: () => Promise<T>): Promise<T> {
      const next = mutex.then(fn, fn);
      mutex = next.catch(() => {});
      return next;
    },
    store: {
      write(_h: number, _v: number, offset: number, data: Uint8Array) {
        if (data.length > 0 || offset > length) {
          length = Math.max(length, offset + data.length);
        }
        return Promise.resolve(length);
      },
    },
    secondaries: {
      applyBytes(
        _s: string[],
        _h: number,
        q: { offset: number; seq: number },
        data: Uint8Array,
      ): Promise<FanOutResult> {
        return new Promise((answer) =>
          forwards.push({ ...q, bytes: data.length, answer })
        );
      },
    },
  };
  const appender = new RecordAppender(cs as unknown as ChunkserverService);
  const append = (n: number) => {
    const out: { r?: RecordResult } = {};
    const p = appender.submit(1, {
      version: 1,
      secondaries: ["http://s"],
      data: new Uint8Array(n),
    }).then((r) => (out.r = r));
    return Object.assign(out, { p });
  };
  return { forwards, append };
}

const ok: FanOutResult = { ok: ["http://s"], failed: [] };
const failed: FanOutResult = { ok: [], failed: ["http://s"] };
const ticks = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};

Deno.test("record append pipeline: batches are acknowledged in order, and a failed batch fails every later one in flight", async () => {
  const { forwards, append } = fakePrimary();
  const a = append(100);
  await ticks();
  // One record in flight, one waits: it may go at once.
  const b = append(200);
  await ticks();
  // Two in flight: two waiting records go together.
  const c = append(300);
  const c2 = append(30);
  await ticks();
  // Three batches in flight at once, offsets and numbers back to back.
  assert.deepEqual(
    forwards.map((f) => [f.offset, f.seq, f.bytes]),
    [[0, 1, 100], [100, 2, 200], [300, 3, 330]],
  );
  // The second is durable first: it waits for the first.
  forwards[1]!.answer(ok);
  await ticks();
  assert.equal(b.r, undefined, "acknowledged before an earlier batch");
  forwards[0]!.answer(ok);
  await ticks();
  assert.deepEqual([a.r, b.r], [{ offset: 0 }, { offset: 100 }]);
  // A fourth goes out (two records in flight, two wait); the third then
  // fails: the fourth fails too, even though its own forward succeeded.
  const d = append(50);
  const d2 = append(20);
  await ticks();
  assert.deepEqual(
    forwards.slice(3).map((f) => [f.offset, f.bytes]),
    [[630, 70]],
  );
  forwards[3]!.answer(ok);
  await ticks();
  assert.equal(d.r, undefined);
  forwards[2]!.answer(failed);
  await Promise.all([c.p, c2.p, d.p, d2.p]);
  for (const x of [c, c2, d, d2]) {
    assert.ok(x.r !== undefined && "error" in x.r, JSON.stringify(x.r));
    assert.equal(x.r.error.code, "unavailable");
  }
  // Drained: the next batch asks the store for the end again and succeeds.
  const e = append(10);
  await ticks();
  assert.deepEqual([forwards[4]!.offset, forwards[4]!.seq], [700, 5]);
  forwards[4]!.answer(ok);
  await e.p;
  assert.deepEqual(e.r, { offset: 700 });
});

Deno.test("record append pipeline: a batch starts beside others only once as many records wait as they hold, at most MAX_BATCHES_IN_FLIGHT", async () => {
  const { forwards, append } = fakePrimary();
  const all: ReturnType<typeof append>[] = [];
  const add = async (n: number) => {
    for (let i = 0; i < n; i++) all.push(append(10));
    await ticks();
  };
  await add(1); // idle: goes at once
  await add(1); // 1 in flight, 1 waits: goes
  assert.deepEqual(forwards.map((f) => f.bytes), [10, 10]);
  await add(1); // 2 in flight, 1 waits: stays
  assert.equal(forwards.length, 2);
  await add(1); // 2 wait: they go together
  assert.deepEqual(forwards.map((f) => f.bytes), [10, 10, 20]);
  await add(4); // 4 in flight, 4 wait: the fourth batch
  assert.deepEqual(forwards.map((f) => f.bytes), [10, 10, 20, 40]);
  await add(9); // 8 in flight, 9 wait, but 4 batches is the most
  assert.equal(forwards.length, MAX_BATCHES_IN_FLIGHT);
  forwards[0]!.answer(ok);
  await ticks();
  // 7 records in flight now, 9 wait: they go as one batch.
  assert.equal(forwards.length, MAX_BATCHES_IN_FLIGHT + 1);
  assert.equal(forwards.at(-1)!.bytes, 90);
  // Acknowledged only in order; nothing waits.
  for (const f of forwards.slice(1).reverse()) f.answer(ok);
  await Promise.all(all.map((x) => x.p));
  assert.deepEqual(
    all.map((x) => x.r),
    all.map((_, i) => ({ offset: 10 * i })),
  );
});

Deno.test("record append pipeline: one appender at a time never has two batches in flight", async () => {
  const { forwards, append } = fakePrimary();
  for (let i = 0; i < 5; i++) {
    const x = append(10);
    await ticks();
    assert.equal(forwards.length, i + 1);
    forwards[i]!.answer(ok);
    await x.p;
    assert.deepEqual(x.r, { offset: 10 * i });
  }
});
