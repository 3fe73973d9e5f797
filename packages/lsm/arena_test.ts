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
