import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Hono } from "hono";
import { TrieRouter } from "hono/router/trie-router";
import { CachedRouter } from "./cached_router.ts";

/** An app with routes Hono's RegExpRouter refuses (static next to :param), so it runs on the TrieRouter. */
function app(cached: boolean): Hono {
  const a = cached ? new Hono({ router: new CachedRouter() }) : new Hono();
  a.use("*", async (c, next) => {
    await next();
    c.header("x-seen", "1");
  });
  a.post("/v1/rooms/_batch", (c) => c.text("batch"));
  a.post(
    "/v1/rooms/:room/messages",
    (c) => c.text(`room ${c.req.param("room")}`),
  );
  a.post("/v1/tables/META/*", async (c, next) => {
    c.header("x-meta", "1");
    await next();
  });
  a.post(
    "/v1/tables/:table/mutate",
    (c) => c.text(`mutate ${c.req.param("table")}`),
  );
  a.get("/v1/tables/:table/row", (c) => c.text(`row ${c.req.query("key")}`));
  return a;
}

Deno.test("a CachedRouter app answers every request as Hono's default router does, first time and again", async () => {
  const [plain, cached] = [app(false), app(true)];
  const requests: [string, string][] = [
    ["POST", "/v1/rooms/_batch"],
    ["POST", "/v1/rooms/lobby/messages"],
    ["POST", "/v1/rooms/l%C3%B6bby/messages"],
    ["POST", "/v1/tables/t1/mutate"],
    ["POST", "/v1/tables/t2/mutate"],
    ["POST", "/v1/tables/META/mutate"],
    ["POST", "/v1/tables/META"],
    ["POST", "/v1/tables/META/a/b"],
    ["GET", "/v1/tables/t1/mutate"],
    ["GET", "/v1/tables/t1/row?key=a"],
    ["GET", "/v1/tables/t1/row?key=b"],
    ["HEAD", "/v1/tables/t1/row?key=a"],
    ["DELETE", "/v1/tables/t1/row"],
    ["POST", `/v1/rooms/${"x".repeat(300)}/messages`],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [method, path] of requests) {
      const a = await plain.request(path, { method });
      const b = await cached.request(path, { method });
      strictEqual(b.status, a.status, `${method} ${path}`);
      deepStrictEqual([...b.headers], [...a.headers], `${method} ${path}`);
      strictEqual(await b.text(), await a.text(), `${method} ${path}`);
    }
  }
});

Deno.test("a CachedRouter forgets its answers when a route is added, and keeps at most maxEntries", () => {
  // A TrieRouter takes routes after a match (Hono's SmartRouter refuses).
  const r = new CachedRouter<string>(new TrieRouter(), 2);
  r.add("GET", "/a/:x", "a");
  strictEqual(r.match("GET", "/a/1")[0].length, 1);
  r.add("GET", "/a/*", "star");
  deepStrictEqual(r.match("GET", "/a/1")[0].map(([h]) => h), ["a", "star"]);
  // Past maxEntries the map starts over: answers stay right.
  for (const p of ["/a/2", "/a/3", "/a/4", "/a/1"]) {
    deepStrictEqual(r.match("GET", p)[0].map(([h]) => h), ["a", "star"]);
  }
});
