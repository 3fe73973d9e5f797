import assert from "node:assert/strict";
import { SseParser } from "./sse_parser.ts";

const STREAM =
  'id: 7\nevent: put\ndata: {"key":"a","revision":7}\n\n: keep-alive\n\nevent: delete\r\ndata: line1\r\ndata: line2\r\n\r\ndata:plain\n\n';

Deno.test("events split across any chunk boundaries come out whole and in order", () => {
  for (let cut = 1; cut < STREAM.length; cut += 3) {
    const p = new SseParser();
    const events = [];
    for (let i = 0; i < STREAM.length; i += cut) {
      events.push(...p.push(STREAM.slice(i, i + cut)));
    }
    assert.deepEqual(events, [
      { event: "put", data: '{"key":"a","revision":7}', id: "7" },
      { event: "delete", data: "line1\nline2" },
      { event: "message", data: "plain" },
    ]);
  }
});

Deno.test("an unfinished event waits for its blank line", () => {
  const p = new SseParser();
  assert.deepEqual(p.push("data: half"), []);
  assert.deepEqual(p.push("\n\n"), [{ event: "message", data: "half" }]);
});
