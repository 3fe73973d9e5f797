// Master calls over the kept-alive HTTP/1.1 client (MasterEndpoints'
// `http1`, GfsClient's `http1` option) answer exactly as over fetch: the
// follower's 307 is followed with the token, error bodies are the
// master's GfsError, a master that cannot be reached is moved past.
import assert from "node:assert/strict";
import { Http1Client } from "@strata/edge";
import { z } from "zod";
import { GfsClient } from "../client/client.ts";
import { isGfsError } from "./gfs_error.ts";
import { MasterEndpoints } from "./http_json.ts";

const Ok = z.object({ ok: z.boolean() });

/** A server answering every request with `handler`, and its URL. */
function serve(handler: (req: Request) => Response | Promise<Response>) {
  const ac = new AbortController();
  const s = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handler,
  );
  return {
    url: `http://127.0.0.1:${s.addr.port}`,
    async close() {
      ac.abort();
      await s.finished;
    },
  };
}

Deno.test("over http1, a follower's redirect is followed with the token and remembered, the body sent again", async () => {
  const seen: { auth: string | null; body: unknown }[] = [];
  const leader = serve(async (req) => {
    seen.push({
      auth: req.headers.get("authorization"),
      body: await req.json(),
    });
    return Response.json({ ok: true });
  });
  let followerCalls = 0;
  const follower = serve((req) => {
    followerCalls++;
    const u = new URL(req.url);
    return new Response(null, {
      status: 307,
      headers: { location: `${leader.url}${u.pathname}${u.search}` },
    });
  });
  const http1 = new Http1Client();
  try {
    const m = new MasterEndpoints(
      [follower.url, leader.url],
      20_000,
      "tok",
      undefined,
      http1,
    );
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(
        await m.call("/v1/exists", Ok, { body: { paths: [`/p${i}`] } }),
        { ok: true },
      );
    }
    assert.equal(followerCalls, 1);
    assert.equal(m.current, leader.url);
    assert.deepEqual(
      seen,
      [0, 1, 2].map((i) => ({
        auth: "Bearer tok",
        body: { paths: [`/p${i}`] },
      })),
    );
  } finally {
    http1.close();
    await Promise.all([leader.close(), follower.close()]);
  }
});

Deno.test("over http1, an error answer is the master's GfsError and an answer of the wrong shape is unavailable", async () => {
  const master = serve((req) =>
    new URL(req.url).pathname === "/conflict"
      ? Response.json({ error: { code: "conflict", message: "taken" } }, {
        status: 409,
      })
      : new URL(req.url).pathname === "/garbage"
      ? new Response("<html>", { status: 200 })
      : Response.json({ ok: "yes" })
  );
  const http1 = new Http1Client();
  try {
    const m = new MasterEndpoints(
      [master.url],
      500,
      undefined,
      undefined,
      http1,
    );
    await assert.rejects(
      m.call("/conflict", Ok, { body: {} }),
      (e) => isGfsError(e, "conflict") && /taken/.test(e.message),
    );
    await assert.rejects(
      m.call("/garbage", Ok),
      (e) => isGfsError(e, "unavailable") && /not JSON/.test(e.message),
    );
    await assert.rejects(
      m.call("/shape", Ok),
      (e) => isGfsError(e, "unavailable") && /unexpected body/.test(e.message),
    );
  } finally {
    http1.close();
    await master.close();
  }
});

Deno.test("over http1, a master that cannot be reached is moved past to the next", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  l.close();
  const good = serve(() => Response.json({ ok: true }));
  const http1 = new Http1Client();
  try {
    const m = new MasterEndpoints(
      [dead, good.url],
      5_000,
      undefined,
      undefined,
      http1,
    );
    assert.deepEqual(await m.call("/v1/master", Ok), { ok: true });
    assert.equal(m.current, good.url);
  } finally {
    http1.close();
    await good.close();
  }
});

Deno.test("a GfsClient with http1 keeps calling its master after close (over fetch)", async () => {
  let calls = 0;
  const master = serve(() => {
    calls++;
    return Response.json({ exists: [true] });
  });
  try {
    const gfs = new GfsClient(master.url, { http1: true, token: "t" });
    assert.deepEqual(await gfs.exists(["/a"]), [true]);
    await gfs.close();
    assert.deepEqual(await gfs.exists(["/a"]), [true]);
    assert.equal(calls, 2);
  } finally {
    await master.close();
  }
});

Deno.test("over http1, a call that times out on a silent master leaves it: the next call goes to another master", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch { /* closed */ }
  })();
  const silent = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const good = serve(() => Response.json({ ok: true }));
  const http1 = new Http1Client();
  try {
    const m = new MasterEndpoints(
      [silent, good.url],
      100,
      undefined,
      undefined,
      http1,
    );
    await assert.rejects(
      m.call("/v1/heartbeat", Ok, { body: {}, timeoutMs: 300 }),
      (e) => isGfsError(e, "unavailable"),
    );
    assert.deepEqual(
      await m.call("/v1/heartbeat", Ok, { body: {}, timeoutMs: 300 }),
      { ok: true },
    );
  } finally {
    http1.close();
    listener.close();
    for (const c of conns) c.close();
    await accepting;
    await good.close();
  }
});
