import assert from "node:assert/strict";
import { HttpPool, HttpPoolError } from "./http_pool.ts";

Deno.test("the pool reuses connections, reads sized and chunked bodies, times out, survives a closed idle connection", async () => {
  const peers = new Set<string>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req, info) => {
      peers.add(`${info.remoteAddr.hostname}:${info.remoteAddr.port}`);
      const url = new URL(req.url);
      if (url.pathname === "/echo") {
        return Response.json({ got: await req.json(), method: req.method });
      }
      if (url.pathname === "/chunked") {
        const parts = ['{"a":', '"' + "x".repeat(70_000) + '"', "}"];
        return new Response(
          new ReadableStream({
            pull(c) {
              const p = parts.shift();
              if (p === undefined) c.close();
              else c.enqueue(new TextEncoder().encode(p));
            },
          }),
        );
      }
      if (url.pathname === "/slow") {
        await new Promise((r) => setTimeout(r, 1500));
        return new Response("late");
      }
      if (url.pathname === "/close") {
        return new Response("bye", { headers: { connection: "close" } });
      }
      return Response.json({ error: "nope" }, { status: 404 });
    },
  );
  const pool = new HttpPool(`http://127.0.0.1:${server.addr.port}`);
  try {
    for (let i = 0; i < 5; i++) {
      const r = await pool.post("/echo", JSON.stringify({ i, s: "é" }), 5000);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), {
        got: { i, s: "é" },
        method: "POST",
      });
    }
    assert.equal(peers.size, 1, "sequential calls share one connection");
    assert.equal(pool.opened, 1);
    const [a, b] = await Promise.all([
      pool.get("/echo-missing", 5000),
      pool.get("/chunked", 5000),
    ]);
    assert.equal(a.status, 404);
    assert.equal(JSON.parse(b.text).a.length, 70_000);
    assert.equal((await pool.get("/close", 5000)).text, "bye");
    await assert.rejects(
      pool.get("/slow", 200),
      (e) => e instanceof HttpPoolError && /timed out/.test(e.message),
    );
    // The server still answers on a fresh or reused connection afterwards.
    assert.equal((await pool.post("/echo", "1", 5000)).status, 200);
  } finally {
    pool.close();
    await server.shutdown();
  }
  await assert.rejects(pool.get("/echo", 100), HttpPoolError);
});

Deno.test("a refused connection is an HttpPoolError", async () => {
  const pool = new HttpPool("http://127.0.0.1:9");
  await assert.rejects(pool.get("/", 1000), HttpPoolError);
  pool.close();
});
