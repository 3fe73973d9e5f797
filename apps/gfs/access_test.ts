// Who may call what in a gfs cell: user tokens by role on the master's and
// the chunkservers' client routes, the peer secret (and nothing else) on
// the internal ones, Host and cross-site checks, and GfsClient with tokens.
import assert from "node:assert/strict";
import { EdgeConfigError, freePort } from "@strata/edge";
import { GfsClient } from "./client/client.ts";
import { startMaster } from "./master/master_server.ts";
import { startChunkserver } from "./chunkserver/chunkserver.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import { fetchAs, pattern, startTestCell, until } from "./_test_support.ts";

/** Status and error code of a call. */
async function outcome(
  res: Response,
): Promise<{ status: number; code?: string }> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = JSON.parse(text).error?.code;
  } catch { /* not JSON: a success body */ }
  return { status: res.status, code };
}

/** A GET with a chosen Host header (fetch always sends the URL's own). */
async function getWithHost(
  base: string,
  path: string,
  host: string,
  token: string,
): Promise<number> {
  const u = new URL(base);
  const conn = await Deno.connect({
    hostname: u.hostname,
    port: Number(u.port),
  });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    "gfs access: 401 without a token, 403 with a lower role, 401 for a user token on an internal route, 421 for a foreign Host, cross-site and text/plain POSTs refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const cell = await startTestCell(dir, {
      chunkBytes: 1024 * 1024,
      replication: 2,
      servers: 2,
    });
    const { tokens, peerSecret } = cell.secrets;
    const m = cell.master.url;
    const cs = cell.servers[0]!.url;
    const as = (t?: string) => fetchAs(t);
    const json = (body: unknown, extra: Record<string, string> = {}) => ({
      method: "POST",
      headers: { "content-type": "application/json", ...extra },
      body: JSON.stringify(body),
    });
    try {
      await until("both chunkservers registered", async () => {
        const r = await as(tokens.read)(`${m}/v1/chunkservers`);
        return (await r.json()).chunkservers.length === 2;
      }, 30_000);
      for (const f of ["admin.token", "read.token", "peer.secret"]) {
        assert.equal(
          (await Deno.stat(`${dir}/auth/${f}`)).mode! & 0o777,
          0o600,
        );
      }
      const writer = new GfsClient(m, { token: tokens.write });
      await writer.upload("/a", pattern(5000, 3));

      // Master, client-facing routes: no token 401; read reads; read may not write.
      assert.deepEqual(await outcome(await fetch(`${m}/v1/ls`)), {
        status: 401,
        code: "unauthorized",
      });
      assert.deepEqual(
        await outcome(await as("not-a-token-of-this-cell")(`${m}/v1/stat/a`)),
        { status: 401, code: "unauthorized" },
      );
      for (
        const path of ["/v1/ls", "/v1/stat/a", "/v1/files/a", "/v1/health"]
      ) {
        assert.equal(
          (await outcome(await as(tokens.read)(`${m}${path}`))).status,
          200,
          path,
        );
      }
      assert.deepEqual(
        await outcome(
          await as(tokens.read)(`${m}/v1/rpc/create`, json({ path: "/b" })),
        ),
        { status: 403, code: "forbidden" },
      );
      assert.deepEqual(
        await outcome(
          await as(tokens.read)(`${m}/v1/files/a`, { method: "DELETE" }),
        ),
        { status: 403, code: "forbidden" },
      );
      // Internal routes: every user token, admin included, is refused.
      for (const t of [undefined, tokens.read, tokens.write, tokens.admin]) {
        assert.deepEqual(
          await outcome(
            await as(t)(`${m}/v1/heartbeat`, json({ id: "x" })),
          ),
          { status: 401, code: "unauthorized" },
        );
        assert.deepEqual(
          await outcome(
            await as(t)(
              `${cs}/v1/chunks/99/version`,
              json({ version: 1, create: true }),
            ),
          ),
          { status: 401, code: "unauthorized" },
        );
        assert.equal(
          (await outcome(
            await as(t)(`${cs}/v1/chunks/99`, { method: "DELETE" }),
          )).status,
          401,
        );
      }
      // ... and the peer secret gets through (to the body check here).
      assert.deepEqual(
        await outcome(
          await as(peerSecret)(`${m}/v1/heartbeat`, json({ id: "x" })),
        ),
        { status: 400, code: "bad_request" },
      );
      // Chunkserver, client routes: reads need read, pushes write.
      assert.equal(
        (await outcome(await fetch(`${cs}/v1/chunks/1?version=1`))).status,
        401,
      );
      assert.deepEqual(
        await outcome(
          await as(tokens.read)(`${cs}/v1/push/abcdefgh01?chain=`, {
            method: "POST",
            body: new Uint8Array(10),
          }),
        ),
        { status: 403, code: "forbidden" },
      );
      assert.equal(
        (await outcome(
          await as(tokens.write)(`${cs}/v1/push/abcdefgh02?chain=`, {
            method: "POST",
            body: new Uint8Array(10),
          }),
        )).status,
        200,
      );
      // Browser safety: a foreign Host, a cross-site POST, a text/plain POST.
      assert.equal(
        await getWithHost(m, "/v1/ls", "evil.example", tokens.admin),
        421,
      );
      assert.equal(
        await getWithHost(cs, "/v1/health", "evil.example:80", tokens.admin),
        421,
      );
      assert.equal(
        await getWithHost(m, "/v1/ls", "localhost", tokens.admin),
        200,
      );
      assert.deepEqual(
        await outcome(
          await as(tokens.admin)(
            `${m}/v1/rpc/create`,
            json({ path: "/c" }, { "sec-fetch-site": "cross-site" }),
          ),
        ),
        { status: 403, code: "cross_origin" },
      );
      assert.deepEqual(
        await outcome(
          await as(tokens.admin)(`${m}/v1/undelete`, {
            method: "POST",
            headers: { "content-type": "text/plain" },
            body: JSON.stringify({ trashPath: "/x" }),
          }),
        ),
        { status: 415, code: "unsupported_media_type" },
      );

      // GfsClient: a read token reads and may not write; no token gets 401.
      const reader = new GfsClient(m, { token: tokens.read });
      assert.deepEqual(await reader.readAll("/a"), pattern(5000, 3));
      assert.deepEqual(
        await reader.pread("/a", 100, 50),
        pattern(5000, 3).subarray(100, 150),
      );
      await assert.rejects(
        reader.upload("/r", new Uint8Array(10)),
        (e) => isGfsError(e, "forbidden"),
      );
      await assert.rejects(
        new GfsClient(m).ls("/"),
        (e) => isGfsError(e, "unauthorized"),
      );
      // The gateway (PUT /v1/files) acts for a write token on its own secret.
      const put = await as(tokens.write)(`${m}/v1/files/g`, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body: pattern(3000, 4),
      });
      assert.equal(put.status, 201, await put.text());
      assert.deepEqual(await reader.readAll("/g"), pattern(3000, 4));

      // A chunkserver with another cell's secrets (another auth dir) is
      // refused on its heartbeats, says so once, and is never registered.
      const logged: string[] = [];
      const error = console.error;
      console.error = (...a: unknown[]) => logged.push(a.join(" "));
      const stranger = await startChunkserver({
        dataDir: `${dir}/stranger`,
        authDir: `${dir}/other-auth`,
        master: m,
        id: "stranger",
        heartbeatMs: 100,
        scrubPauseMs: 0,
        chunkBytes: 1024 * 1024,
      });
      try {
        await until(
          "the refusal is logged",
          () => Promise.resolve(logged.some((l) => /stranger/.test(l))),
          10_000,
        );
      } finally {
        await stranger.close();
        console.error = error;
      }
      assert.match(
        logged.join("\n"),
        /chunkserver stranger: the master refuses it: .*peer secret/,
      );
      assert.ok(!logged.join("\n").includes(peerSecret), "no secret logged");
      const listed = await (await as(tokens.read)(`${m}/v1/chunkservers`))
        .json();
      assert.ok(
        !listed.chunkservers.some((c: { id: string }) => c.id === "stranger"),
      );
    } finally {
      await cell.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("a gfs master refuses --insecure-no-auth off loopback", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      startMaster({ dataDir: dir, host: "0.0.0.0", insecureNoAuth: true }),
      (e) => e instanceof EdgeConfigError && /loopback/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "gfs masters' raft peers authenticate with the peer secret: two masters of one auth dir elect a leader, two of different ones never do",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const logged: string[] = [];
    const error = console.error;
    console.error = (...a: unknown[]) => logged.push(a.join(" "));
    const pair = async (name: string, authDirs: [string, string]) => {
      const [r1, r2, h1, h2] = [freePort(), freePort(), freePort(), freePort()];
      const peers =
        `1=127.0.0.1:${r1}/127.0.0.1:${h1},2=127.0.0.1:${r2}/127.0.0.1:${h2}`;
      return await Promise.all([1, 2].map((id) =>
        startMaster({
          dataDir: `${dir}/${name}-${id}`,
          authDir: authDirs[id - 1],
          id,
          peers,
          port: id === 1 ? h1 : h2,
          raftTickMs: 20,
        })
      ));
    };
    const same = await pair("same", [`${dir}/a`, `${dir}/a`]);
    const split = await pair("split", [`${dir}/a`, `${dir}/b`]);
    try {
      await until(
        "the pair with one secret elects a leader",
        () => Promise.resolve(same.some((m) => m.store.serving())),
        20_000,
      );
      // Many election timeouts (20 ms ticks): the split pair never commits.
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(!split.some((m) => m.store.serving()), "split pair serves");
      assert.ok(
        logged.some((l) => /shared secret is wrong/.test(l)),
        `no refusal logged: ${logged.join(" | ")}`,
      );
    } finally {
      console.error = error;
      await Promise.all([...same, ...split].map((m) => m.close()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
