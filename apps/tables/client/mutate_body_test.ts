/**
 * The row mutation body `TablesClient` sends: text when every byte string
 * is UTF-8 (smaller on the wire), base64 otherwise, the same bytes either way.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mutateBody } from "./tables_client.ts";

const enc = new TextEncoder();

Deno.test("mutateBody: UTF-8 keys, qualifiers and values go as text", () => {
  const value = new Uint8Array(100).fill(0x61);
  const body = mutateBody(enc.encode("r0000001"), [
    { op: "put", family: "f", qualifier: "v", value },
    { op: "deleteCells", family: "f", qualifier: enc.encode("é") },
    { op: "deleteRow" },
  ]);
  assert.deepEqual(body, {
    row: "r0000001",
    encoding: "utf8",
    mutations: [
      { op: "put", family: "f", qualifier: "v", value: "a".repeat(100) },
      { op: "deleteCells", family: "f", qualifier: "é" },
      { op: "deleteRow" },
    ],
  });
  // A put of a 100-byte value stays well under the 512 bytes Deno's HTTP
  // server reads first (with ~270 bytes of headers from fetch and a token).
  const put = mutateBody(enc.encode("r0000001"), [
    { op: "put", family: "f", qualifier: "v", value },
  ]);
  assert.ok(JSON.stringify(put).length < 512 - 272, JSON.stringify(put));
});

Deno.test("mutateBody: any byte string that is not UTF-8 sends the whole body in base64", () => {
  const b64 = (b: Uint8Array | string) =>
    Buffer.from(typeof b === "string" ? enc.encode(b) : b).toString("base64");
  const bad = Uint8Array.of(0xff, 0x00);
  assert.deepEqual(
    mutateBody(enc.encode("k"), [
      { op: "put", family: "f", qualifier: "q", value: bad, timestamp: 5 },
    ]),
    {
      row: b64("k"),
      encoding: "base64",
      mutations: [{
        op: "put",
        family: "f",
        qualifier: b64("q"),
        value: b64(bad),
        timestamp: 5,
      }],
    },
  );
  assert.equal(mutateBody(bad, [{ op: "deleteRow" }]).encoding, "base64");
  // A string with a lone surrogate has no exact UTF-8 form.
  assert.equal(
    mutateBody(enc.encode("k"), [
      { op: "put", family: "f", qualifier: "\ud800", value: "v" },
    ]).encoding,
    "base64",
  );
});
