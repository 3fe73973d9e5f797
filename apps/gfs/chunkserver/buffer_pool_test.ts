import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

Deno.test("buffer pool: a given-back buffer is reused for a size it fits, within its byte limit", () => {
  const pool = new BufferPool(3 * 1024);
  const a = pool.take(1024);
  assert.equal(a.length, 1024);
  pool.give(a);
  // A smaller request gets the same memory, as a view of the asked length.
  const b = pool.take(600);
  assert.equal(b.length, 600);
  assert.equal(b.buffer, a.buffer);
  // Nothing kept now: new memory.
  assert.notEqual(pool.take(600).buffer, a.buffer);
  pool.give(b); // the whole buffer goes back, not the view
  assert.equal(pool.take(1024).buffer, a.buffer);
  // A request larger than every kept buffer gets new memory.
  pool.give(a);
  assert.notEqual(pool.take(1025).buffer, a.buffer);
  // A request far smaller than a kept buffer does not pin it.
  const big = new BufferPool(1 << 20);
  const huge = big.take(256 * 1024);
  big.give(huge);
  assert.notEqual(big.take(1000).buffer, huge.buffer);
  assert.equal(big.take(200 * 1024).buffer, huge.buffer);
  // Past the byte limit a given-back buffer is dropped.
  const small = new BufferPool(3 * 1024);
  const x = new Uint8Array(2048), y = new Uint8Array(2048);
  small.give(x);
  small.give(y); // 4 KiB > 3 KiB: dropped
  assert.equal(small.take(2048).buffer, x.buffer);
  const next = small.take(2048).buffer;
  assert.ok(next !== x.buffer && next !== y.buffer, "y was not kept");
});
