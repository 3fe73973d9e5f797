import assert from "node:assert/strict";
import { Arena } from "./arena.ts";

Deno.test("arena arrays are zero-filled, never overlap, and large ones get their own buffer", () => {
  const arena = new Arena(1024);
  const got: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const a = arena.alloc(1 + (i * 37) % 300);
    assert.ok(a.every((b) => b === 0));
    a.fill(i + 1);
    got.push(a);
  }
  got.forEach((a, i) => assert.ok(a.every((b) => b === i + 1), `array ${i}`));
  const small = got.filter((a) => a.length <= 256);
  assert.ok(small.every((a) => a.buffer.byteLength === 1024));
  const large = got.filter((a) => a.length > 256);
  assert.ok(large.length > 0);
  assert.ok(large.every((a) => a.buffer.byteLength === a.length));
});

Deno.test("arena copies equal their source, share chunks and do not follow it", () => {
  const arena = new Arena(512);
  const src = Uint8Array.from({ length: 300 }, (_, i) => i * 7);
  const copies = [0, 1, 16, 100, 129, 200].map((n) => {
    const c = arena.copy(src.subarray(0, n));
    assert.deepEqual(Array.from(c), Array.from(src.subarray(0, n)));
    return c;
  });
  src.fill(0);
  assert.equal(copies[3]![5], 35);
  assert.ok(copies.slice(1, 4).every((c) => c.buffer === copies[1]!.buffer));
  assert.equal(copies[1]!.buffer.byteLength, 512);
  // Over a quarter of the chunk: its own buffer.
  assert.equal(copies[4]!.buffer.byteLength, 129);
  assert.equal(copies[5]!.buffer.byteLength, 200);
});
