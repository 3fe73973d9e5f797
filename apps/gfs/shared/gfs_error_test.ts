import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { installErrorHandlers } from "@strata/edge";
import { StorageError } from "@strata/storage";
import { GfsError, gfsErrorFromBody, gfsToEdgeError } from "./gfs_error.ts";

Deno.test("the edge's error handler with gfsToEdgeError keeps gfs codes and statuses, and hides unexpected errors", async () => {
  const logged: string[] = [];
  const app = new Hono();
  installErrorHandlers(app, {
    name: "gfs-test",
    map: gfsToEdgeError,
    log: (l) => logged.push(l),
  });
  const cases: [GfsError, number][] = [
    [new GfsError("chunk_full", "full"), 409],
    [new GfsError("stale", "old version"), 409],
    [new GfsError("no_lease", "no lease"), 409],
    [new GfsError("not_leader", "election"), 503],
    [new GfsError("range_not_satisfiable", "past the end"), 416],
    [new GfsError("corrupt", "bad crc"), 500],
    [new GfsError("forbidden", "not a chunkserver"), 403],
  ];
  cases.forEach(([e], i) => app.get(`/gfs/${i}`, () => Promise.reject(e)));
  app.get("/zod", () => {
    z.object({ a: z.string() }).parse({});
    return new Response("unreachable");
  });
  app.get("/boom", () => {
    throw new Error("secret /var/lib/x");
  });
  app.get("/disk", () => {
    throw new StorageError("corrupt", "needle 7 checksum");
  });
  for (const [i, [e, status]] of cases.entries()) {
    const res = await app.request(`/gfs/${i}`);
    assert.equal(res.status, status, e.code);
    const body = await res.json();
    assert.deepEqual(body, { error: { code: e.code, message: e.message } });
    // and a client turns it back into the same GfsError
    const back = gfsErrorFromBody(res.status, body);
    assert.equal(back.code, e.code);
  }
  const zod = await app.request("/zod");
  assert.equal(zod.status, 400);
  assert.equal((await zod.json()).error.code, "bad_request");
  const disk = await app.request("/disk");
  assert.equal(disk.status, 500);
  assert.equal((await disk.json()).error.code, "corrupt");
  const boom = await app.request("/boom");
  assert.equal(boom.status, 500);
  const text = await boom.text();
  assert.doesNotMatch(text, /secret/);
  assert.equal(JSON.parse(text).error.code, "internal");
  assert.equal(logged.length, 1);
  assert.match(
    logged[0]!,
    /gfs-test: unexpected error on GET \/boom: .*secret/,
  );
  const none = await app.request("/nope");
  assert.equal(none.status, 404);
  assert.equal((await none.json()).error.code, "not_found");
});
