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
  const b = append(200);
  await ticks();
  const c = append(300);
  await ticks();
  // Three batches in flight at once, offsets and numbers back to back.
  assert.deepEqual(
    forwards.map((f) => [f.offset, f.seq, f.bytes]),
    [[0, 1, 100], [100, 2, 200], [300, 3, 300]],
  );
  // The second is durable first: it waits for the first.
  forwards[1]!.answer(ok);
  await ticks();
  assert.equal(b.r, undefined, "acknowledged before an earlier batch");
  forwards[0]!.answer(ok);
  await ticks();
  assert.deepEqual([a.r, b.r], [{ offset: 0 }, { offset: 100 }]);
  // A fourth goes out; the third then fails: the fourth fails too, even
  // though its own forward succeeded.
  const d = append(50);
  await ticks();
  assert.deepEqual(forwards.map((f) => f.offset).slice(3), [600]);
  forwards[3]!.answer(ok);
  await ticks();
  assert.equal(d.r, undefined);
  forwards[2]!.answer(failed);
  await Promise.all([c.p, d.p]);
  for (const x of [c, d]) {
    assert.ok(x.r !== undefined && "error" in x.r, JSON.stringify(x.r));
    assert.equal(x.r.error.code, "unavailable");
  }
  // Drained: the next batch asks the store for the end again and succeeds.
  const e = append(10);
  await ticks();
  assert.deepEqual([forwards[4]!.offset, forwards[4]!.seq], [650, 5]);
  forwards[4]!.answer(ok);
  await e.p;
  assert.deepEqual(e.r, { offset: 650 });
});

Deno.test("record append pipeline: at most MAX_BATCHES_IN_FLIGHT batches of a chunk; the rest wait and go together", async () => {
  const { forwards, append } = fakePrimary();
  const all = [];
  for (let i = 0; i < MAX_BATCHES_IN_FLIGHT + 3; i++) {
    all.push(append(10));
    await ticks();
  }
  assert.equal(forwards.length, MAX_BATCHES_IN_FLIGHT);
  forwards[0]!.answer(ok);
  await ticks();
  // The three waiting records went as one batch.
  assert.equal(forwards.length, MAX_BATCHES_IN_FLIGHT + 1);
  assert.equal(forwards.at(-1)!.bytes, 30);
  for (const f of forwards.slice(1)) f.answer(ok);
  await Promise.all(all.map((x) => x.p));
  assert.deepEqual(
    all.map((x) => x.r),
    all.map((_, i) => ({ offset: 10 * i })),
  );
});
