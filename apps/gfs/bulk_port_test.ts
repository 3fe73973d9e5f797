import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { BulkPorts } from "./client/bulk_connection.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import {
  BulkReplySchema,
  encodeHeader,
  readHeader,
} from "./shared/bulk_protocol.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";
import { downloadChecks } from "./client/_download_checks.ts";

const CHUNK = 1 << 20;

/** Bulk port exchanges a chunkserver counted (its /metrics). */
async function bulkCalls(api: typeof fetch, url: string): Promise<number> {
  const text = await (await api(`${url}/metrics`)).text();
  const m = text.match(
    /^gfs_chunkserver_bulk_port_calls_total\{[^}]*\} (\d+)/m,
  );
  assert.ok(m, "the bulk port counter is in /metrics");
  return Number(m[1]);
}

Deno.test({
  name:
    "bulk port (real processes): large files across chunk boundaries, bad frames, downloads into the caller's memory, kill -9 of every chunkserver, a replica killed during uploads",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gfs-bulk-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 4,
      master: { chunkBytes: CHUNK, tickMs: 200, deadAfterMs: 3000 },
      chunkserver: () => ({ heartbeatMs: 200, scrubPauseMs: 0 }),
    });
    const tokens = cluster.secrets!.tokens;
    const api = fetchAs(tokens.admin);
    const client = new GfsClient(cluster.master.url, { token: tokens.admin });
    const http = new GfsClient(cluster.master.url, {
      token: tokens.admin,
      bulkPort: false,
    });
    const servers = () => cluster.chunkservers.map((c) => c.url);
    const total = async () =>
      (await Promise.all(servers().map((u) => bulkCalls(api, u)))).reduce(
        (a, b) => a + b,
        0,
      );
    const data = pattern(2 * CHUNK + 300_000, 1);
    try {
      await t.step("uploads and reads go over the bulk port", async () => {
        const before = await Promise.all(
          servers().map((u) => bulkCalls(api, u)),
        );
        await client.upload("/big/a", data);
        const after = await Promise.all(
          servers().map((u) => bulkCalls(api, u)),
        );
        // Three chunks × three replicas: a write at each primary and a
        // forward at each secondary, all on the bulk port.
        const grew = after.reduce((a, b, i) => a + b - before[i]!, 0);
        assert.ok(grew >= 9, `${grew} bulk exchanges for 3 chunks × 3`);
        const got = await client.readAll("/big/a");
        assert.equal(got.length, data.length);
        assert.ok(got.every((b, i) => b === data[i]), "downloaded bytes");
        // A pread across the first chunk boundary, both parts over 256 KiB: two bulk reads.
        const at = CHUNK - 400_000;
        const n0 = await total();
        const block = await client.pread("/big/a", at, 700_000);
        assert.ok(block.every((b, i) => b === data[at + i]), "pread bytes");
        assert.ok(await total() >= n0 + 2, "the pread went over bulk ports");
        // Small preads take the bulk port too while a connection is free.
        const n1 = await total();
        for (const [o, n] of [[5, 4096], [CHUNK + 9, 65536]]) {
          const small = await client.pread("/big/a", o!, n!);
          assert.deepEqual(small, data.subarray(o!, o! + n!), "small pread");
        }
        assert.ok(await total() >= n1 + 2, "small preads over bulk ports");
        // A full pool has no room (small reads then use the data port).
        const pool = new BulkPorts({ token: tokens.read, idlePerServer: 2 });
        const s0 = servers()[0]!;
        assert.ok(pool.hasRoom(s0));
        const held = [await pool.open(s0, 5_000), await pool.open(s0, 5_000)];
        assert.ok(!pool.hasRoom(s0), "two of two connections busy");
        pool.release(held[0]!);
        assert.ok(pool.hasRoom(s0), "one idle again");
        held[1]!.close();
        pool.release(held[1]!);
        await pool.close();
        // The HTTP path reads what the bulk path wrote.
        const viaHttp = await http.readAll("/big/a");
        assert.ok(viaHttp.every((b, i) => b === data[i]), "HTTP bytes");
      });

      await t.step(
        "bad frames get a clean error; the server survives",
        async () => {
          const target = servers()[0]!;
          const port = (await (await api(`${target}/v1/health`)).json())
            .bulkPort as number;
          // Not the protocol at all: the connection closes.
          const raw = await Deno.connect({ hostname: "127.0.0.1", port });
          await raw.write(
            new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n".repeat(8)),
          );
          const buf = new Uint8Array(4096);
          let ended = false;
          for (let i = 0; i < 10 && !ended; i++) {
            ended = (await raw.read(buf)) === null;
          }
          assert.ok(ended, "garbage closes the connection");
          raw.close();
          // A wrong token is refused in the handshake.
          const wrong = new BulkPorts({ token: "not-a-token" });
          await assert.rejects(
            () => wrong.open(target, 5000),
            (e) => isGfsError(e, "unauthorized"),
          );
          const read = new BulkPorts({ token: tokens.read });
          // Header not JSON: bad_request, then the connection closes.
          const c1 = (await read.open(target, 5000))!;
          const junk = new TextEncoder().encode("{not json");
          const framed = new Uint8Array(4 + junk.length);
          new DataView(framed.buffer).setUint32(0, junk.length);
          framed.set(junk, 4);
          await c1.send(framed);
          const r1 = await readHeader(c1.conn, BulkReplySchema);
          assert.ok(r1 && "error" in r1 && r1.error.code === "bad_request");
          assert.equal(
            await c1.conn.read(buf),
            null,
            "closed after a bad header",
          );
          c1.close();
          // A header that is JSON but not a request, and a huge length.
          for (
            const bad of [
              encodeHeader({ op: "erase", handle: 1 }),
              new Uint8Array([0xff, 0xff, 0xff, 0xff]),
            ]
          ) {
            const c = (await read.open(target, 5000))!;
            await c.send(bad);
            const r = await readHeader(c.conn, BulkReplySchema);
            assert.ok(r && "error" in r && r.error.code === "bad_request");
            c.close();
          }
          // A read token may not write, and only the peer secret forwards:
          // refused at once; the bytes sent anyway are dropped and the
          // connection serves the next exchange.
          for (
            const [ports, op] of [
              [read, "write"],
              [new BulkPorts({ token: tokens.admin }), "forward"],
            ] as const
          ) {
            const c = (await ports.open(target, 5000))!;
            await c.sendHeader({
              op,
              handle: 1,
              version: 1,
              offset: 0,
              length: 4,
              chain: [],
            });
            await assert.rejects(
              () => c.reply(),
              (e) => isGfsError(e, "forbidden"),
            );
            await c.send(new Uint8Array(4));
            if (op === "forward") await c.sendHeader({ seq: 1 });
            await c.sendHeader({
              op: "read",
              handle: 999_999,
              version: null,
              offset: 0,
              length: 4,
            });
            await assert.rejects(
              () => c.reply(),
              (e) => isGfsError(e, "not_found"),
            );
            c.close();
            await ports.close();
          }
          // A write without a lease: refused once its bytes are in, and the
          // connection goes on serving.
          const w = new BulkPorts({ token: tokens.write });
          const c2 = (await w.open(target, 5000))!;
          await c2.sendHeader({
            op: "write",
            handle: 999_999,
            version: 1,
            offset: 0,
            length: 4,
            chain: [],
          });
          await c2.send(new Uint8Array(4));
          await assert.rejects(
            () => c2.reply(),
            (e) => isGfsError(e, "no_lease"),
          );
          await c2.sendHeader({
            op: "read",
            handle: 999_999,
            version: null,
            offset: 0,
            length: 4,
          });
          await assert.rejects(
            () => c2.reply(),
            (e) => isGfsError(e, "not_found"),
          );
          w.release(c2);
          await w.close();
          await read.close();
          // Still serving.
          const got = await client.readAll("/big/a");
          assert.ok(got.every((b, i) => b === data[i]));
        },
      );

      // Downloads into the caller's memory, on this cell (one start less).
      await downloadChecks(t, { bulk: client, http }, total);

      await t.step(
        "an acknowledged upload survives kill -9 of every chunkserver",
        async () => {
          const more = pattern(CHUNK + 4321, 2);
          await client.upload("/big/b", more);
          await Promise.all(cluster.chunkservers.map((c) => c.stop(true)));
          for (let i = 0; i < cluster.chunkservers.length; i++) {
            await cluster.restartChunkserver(i);
          }
          // The restarted servers report their chunks in a heartbeat or two.
          await until(
            "the file readable again",
            async () => {
              const got = await client.readAll("/big/b");
              return got.length === more.length &&
                got.every((b, i) => b === more[i]);
            },
            60_000,
            300,
          );
          const a = await client.readAll("/big/a");
          assert.ok(a.every((b, i) => b === data[i]), "the first file too");
        },
      );

      await t.step(
        "a replica killed during uploads: each upload is whole or fails cleanly",
        async () => {
          const victim = cluster.chunkservers[1]!;
          const before = await bulkCalls(api, victim.url);
          const files = Array.from(
            { length: 4 },
            (_, i) => pattern(3 * CHUNK, 10 + i),
          );
          const uploads = files.map((f, i) =>
            client.upload(`/big/k${i}`, f).then(() => "ok" as const, (e) => e)
          );
          // Kill it once it has taken part in the pushes.
          await until(
            "the victim to take part",
            async () => (await bulkCalls(api, victim.url)) > before,
            30_000,
            20,
          );
          await victim.stop(true);
          const results = await Promise.all(uploads);
          let whole = 0;
          for (let i = 0; i < files.length; i++) {
            const r = results[i];
            if (r === "ok") {
              const got = await client.readAll(`/big/k${i}`);
              assert.equal(got.length, files[i]!.length);
              assert.ok(got.every((b, j) => b === files[i]![j]), `k${i} whole`);
              whole++;
            } else {
              // A clean failure: a GfsError, and no half file left behind.
              assert.ok(isGfsError(r), `k${i} failed with ${String(r)}`);
              await assert.rejects(
                () => client.readAll(`/big/k${i}`),
                (e) => isGfsError(e, "not_found"),
              );
            }
          }
          // Three replicas remain for every chunk: the uploads go on.
          assert.ok(whole >= 1, `${whole} of 4 uploads completed`);
        },
      );
    } finally {
      await client.close();
      await http.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
