import assert from "node:assert/strict";
import type { RunningChunkserver } from "./chunkserver/chunkserver.ts";
import { GfsClient } from "./client/client.ts";
import { fetchAs, pattern, startTestCell, until } from "./_test_support.ts";

/** How a route takes its body. */
type BodyKind = "json" | "bytes" | "none";

/** One route; `at(x)` puts the text `x` where the route takes a value. */
interface Route {
  method: string;
  at: (x: string) => string;
  body: BodyKind;
}

const MASTER_ROUTES: Route[] = [
  { method: "GET", at: (x) => `/v1/master${x}`, body: "none" },
  { method: "POST", at: (x) => `/v1/heartbeat${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/report-corrupt${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/rpc/create${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/rpc/allocate${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/rpc/complete${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/rpc/abandon${x}`, body: "json" },
  { method: "GET", at: (x) => `/v1/rpc/locate?path=/a${x}`, body: "none" },
  { method: "POST", at: (x) => `/v1/rpc/append-target${x}`, body: "json" },
  { method: "PUT", at: (x) => `/v1/files/a${x}`, body: "bytes" },
  { method: "GET", at: (x) => `/v1/files/a${x}`, body: "none" },
  { method: "DELETE", at: (x) => `/v1/files/a${x}`, body: "none" },
  { method: "POST", at: (x) => `/v1/undelete${x}`, body: "json" },
  { method: "GET", at: (x) => `/v1/ls?prefix=/${x}`, body: "none" },
  { method: "GET", at: (x) => `/v1/stat/a${x}`, body: "none" },
  { method: "POST", at: (x) => `/v1/exists${x}`, body: "json" },
  { method: "GET", at: (x) => `/v1/chunkservers${x}`, body: "none" },
  { method: "GET", at: (x) => `/v1/health${x}`, body: "none" },
  { method: "GET", at: (x) => `/metrics${x}`, body: "none" },
];

const CHUNKSERVER_ROUTES: Route[] = [
  { method: "POST", at: (x) => `/v1/push/abcdefgh12${x}`, body: "bytes" },
  {
    method: "POST",
    at: (x) => `/v1/push/abcdefgh12?chain=${x}`,
    body: "bytes",
  },
  { method: "POST", at: (x) => `/v1/chunks/1${x}/write`, body: "json" },
  {
    method: "POST",
    at: (x) => `/v1/chunks/1/records?version=1${x}`,
    body: "bytes",
  },
  {
    method: "POST",
    at: (x) => `/v1/chunks/1/apply-bytes?version=1&offset=0${x}`,
    body: "bytes",
  },
  { method: "POST", at: (x) => `/v1/chunks/1/apply${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/chunks/1/version${x}`, body: "json" },
  { method: "POST", at: (x) => `/v1/chunks/1/clone${x}`, body: "json" },
  { method: "GET", at: (x) => `/v1/chunks/1${x}`, body: "none" },
  { method: "GET", at: (x) => `/v1/chunks/1?offset=${x}`, body: "none" },
  { method: "DELETE", at: (x) => `/v1/chunks/${x}`, body: "none" },
  { method: "GET", at: (x) => `/v1/health${x}`, body: "none" },
  { method: "GET", at: (x) => `/metrics${x}`, body: "none" },
];

/** Malformed percent-encodings: a lone `%`, bad hex, a cut UTF-8 sequence. */
const MALFORMED = ["%", "%zz", "%E0%A4%A", "a%2"];

/**
 * Sends a raw HTTP/1.1 request (so the body can be cut short: fewer bytes
 * than `content-length`, then the write side closed) and reads the answer.
 * @returns the status and the body text; status 0 if no answer in 10 s.
 */
async function rawRequest(
  base: string,
  head: string,
  body: Uint8Array,
): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  const conn = await Deno.connect({
    hostname: u.hostname,
    port: Number(u.port),
  });
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    await conn.write(new TextEncoder().encode(head));
    await conn.write(body);
    await conn.closeWrite();
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        break; // closed by the timer or the server
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      new Uint8Array(await new Blob(chunks).arrayBuffer()),
    );
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
    const sep = text.indexOf("\r\n\r\n");
    return {
      status: m ? Number(m[1]) : 0,
      body: sep >= 0 ? text.slice(sep + 4) : "",
    };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** Asserts a 4xx answer with a JSON error body (a chunked body is unwrapped). */
function assertClientError(
  what: string,
  status: number,
  body: string,
): void {
  assert.ok(
    status >= 400 && status < 500,
    `${what}: expected a 4xx, got ${status} ${body.slice(0, 300)}`,
  );
  const json = body.slice(body.indexOf("{"), body.lastIndexOf("}") + 1);
  let code: unknown;
  try {
    code = (JSON.parse(json) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = undefined;
  }
  assert.equal(
    typeof code,
    "string",
    `${what}: expected {"error":{"code",…}}, got ${body.slice(0, 300)}`,
  );
}

function startCell(dir: string) {
  return startTestCell(dir, {
    chunkBytes: 1024 * 1024,
    replication: 2,
    servers: 2,
  });
}

Deno.test({
  name:
    "every master and chunkserver route answers malformed percent-encoding, wrong content types and cut-short bodies with a 4xx JSON error, and keeps serving",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const cell = await startCell(dir);
    // The peer secret reaches every route, internal ones included.
    const api = fetchAs(cell.secrets.peerSecret);
    try {
      await until("both chunkservers registered", async () => {
        const r = await api(`${cell.master.url}/v1/chunkservers`);
        const b = await r.json() as { chunkservers: unknown[] };
        return b.chunkservers.length === 2;
      }, 30_000);
      // A file to aim at, so a request that got past validation would succeed.
      const gfs = new GfsClient(cell.master.url, {
        token: cell.secrets.tokens.write,
      });
      await gfs.upload("/a", pattern(1000, 1));
      const targets: Array<[string, Route[]]> = [
        [cell.master.url, MASTER_ROUTES],
        [cell.servers[0]!.url, CHUNKSERVER_ROUTES],
      ];
      let checked = 0;
      for (const [base, routes] of targets) {
        for (const r of routes) {
          for (const bad of MALFORMED) {
            const url = `${base}${r.at(bad)}`;
            const res = await api(url, {
              method: r.method,
              headers: r.body === "json"
                ? { "content-type": "application/json" }
                : {},
              body: r.body === "none" ? undefined : "{}",
              redirect: "manual",
            });
            assertClientError(
              `${r.method} ${url}`,
              res.status,
              await res.text(),
            );
            checked++;
          }
          if (r.body === "none") continue;
          const clean = r.at("");
          // Wrong content type: text for JSON routes, a form for byte routes.
          const type = r.body === "json"
            ? "text/plain"
            : "application/x-www-form-urlencoded";
          const wrong = await api(`${base}${clean}`, {
            method: r.method,
            headers: { "content-type": type },
            body: r.body === "json" ? "path=/a" : "a=1",
          });
          assertClientError(
            `${r.method} ${clean} as ${type}`,
            wrong.status,
            await wrong.text(),
          );
          // Cut short: 10 of 5000 declared bytes, then the client stops sending.
          const cut = await rawRequest(
            base,
            `${r.method} ${clean} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
              `Authorization: Bearer ${cell.secrets.peerSecret}\r\n` +
              `Content-Type: ${
                r.body === "json"
                  ? "application/json"
                  : "application/octet-stream"
              }\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n`,
            new TextEncoder().encode('{"path":"/'),
          );
          assertClientError(
            `${r.method} ${clean} cut short`,
            cut.status,
            cut.body,
          );
          // The same cut short with a chunked body that never ends.
          const chunked = await rawRequest(
            base,
            `${r.method} ${clean} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
              `Authorization: Bearer ${cell.secrets.peerSecret}\r\n` +
              `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
            new TextEncoder().encode('a\r\n{"path":"/\r\n'),
          );
          assertClientError(
            `${r.method} ${clean} chunked, cut short`,
            chunked.status,
            chunked.body,
          );
          checked += 3;
        }
      }
      assert.ok(checked > 100, `only ${checked} requests checked`);
      // Still serving: health, and the file reads back.
      for (const base of [cell.master.url, ...cell.servers.map((s) => s.url)]) {
        const h = await api(`${base}/v1/health`);
        assert.equal(h.status, 200);
        await h.body?.cancel();
      }
      assert.deepEqual(await gfs.readAll("/a"), pattern(1000, 1));
    } finally {
      await cell.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "a chunkserver pushes to, forwards to and clones from registered chunkservers only (no SSRF)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    // A bystander service: no request may reach it through a chunkserver.
    const hits: string[] = [];
    const bystander = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => {
        hits.push(`${req.method} ${req.url}`);
        return Response.json({ received: [], length: 0, ok: true });
      },
    );
    const outsider = `http://127.0.0.1:${bystander.addr.port}`;
    const cell = await startCell(dir);
    // The peer secret reaches every route, internal ones included.
    const api = fetchAs(cell.secrets.peerSecret);
    try {
      const [a, b] = cell.servers as [RunningChunkserver, RunningChunkserver];
      await until("both chunkservers registered", async () => {
        const r = await api(`${cell.master.url}/v1/chunkservers`);
        const body = await r.json() as { chunkservers: unknown[] };
        return body.chunkservers.length === 2;
      }, 30_000);
      const post = (url: string, body: unknown) =>
        api(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const expect403 = async (what: string, res: Response) => {
        const text = await res.text();
        assert.equal(res.status, 403, `${what}: ${text}`);
        assert.match(text, /"forbidden"/);
      };
      await expect403(
        "push chain to an outsider",
        await api(
          `${a.url}/v1/push/abcdefgh01?chain=${encodeURIComponent(outsider)}`,
          { method: "POST", body: new Uint8Array(10) },
        ),
      );
      await expect403(
        "push chain with an outsider after a registered server",
        await api(
          `${a.url}/v1/push/abcdefgh02?chain=${
            encodeURIComponent(`${b.url},${outsider}`)
          }`,
          { method: "POST", body: new Uint8Array(10) },
        ),
      );
      await expect403(
        "clone from an outsider",
        await post(`${a.url}/v1/chunks/7/clone`, {
          source: outsider,
          version: 1,
        }),
      );
      await expect403(
        "clone from a cloud metadata address",
        await post(`${a.url}/v1/chunks/7/clone`, {
          source: "http://169.254.169.254",
          version: 1,
        }),
      );
      await expect403(
        "write forwarding to an outsider",
        await post(`${a.url}/v1/chunks/7/write`, {
          dataId: "abcdefgh03",
          version: 1,
          offset: 0,
          secondaries: [outsider],
        }),
      );
      await expect403(
        "record append forwarding to an outsider",
        await api(
          `${a.url}/v1/chunks/7/records?version=1&secondaries=${
            encodeURIComponent(outsider)
          }`,
          { method: "POST", body: new Uint8Array(10) },
        ),
      );
      assert.deepEqual(hits, [], "a chunkserver contacted the outsider");
      // Registered peers still work: a chain push reaches both.
      const ok = await api(
        `${a.url}/v1/push/abcdefgh04?chain=${encodeURIComponent(b.url)}`,
        { method: "POST", body: new Uint8Array(10) },
      );
      assert.equal(ok.status, 200);
      const { received } = await ok.json() as { received: string[] };
      assert.deepEqual(received.sort(), [a.url, b.url].sort());
    } finally {
      await cell.stop();
      await bystander.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
