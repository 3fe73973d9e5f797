import assert from "node:assert/strict";
import { connectTcp, isTransportError } from "@strata/transport";
import { GfsClient } from "../client/client.ts";
import { DataPorts } from "../client/data_connection.ts";
import {
  AppendRecord,
  ApplyBytes,
  type DataMessages,
  dataMessages,
  ReadChunk,
} from "../shared/data_protocol.ts";
import { isGfsError } from "../shared/gfs_error.ts";
import { pattern, startTestCell, until } from "../_test_support.ts";
import { Secondaries } from "./secondaries.ts";

const CHUNK = 256 * 1024;

/** A data port counter a chunkserver reports in /metrics (calls or applies). */
async function portCalls(
  url: string,
  token: string,
  what: "calls" | "applies" = "calls",
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  })).text();
  const m = new RegExp(
    `gfs_chunkserver_data_port_${what}_total\\{[^}]*\\} (\\d+)`,
  )
    .exec(text);
  assert.ok(m, `the data port ${what} counter is in /metrics`);
  return Number(m[1]);
}

Deno.test({
  name:
    "chunkserver data port: reads and appends over framed TCP, tokens checked, bad frames close only their connection",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir();
    const cell = await startTestCell(dir, {
      chunkBytes: CHUNK,
      replication: 3,
      servers: 3,
    });
    const { tokens } = cell.secrets;
    // Bulk ports off: small preads would take them while a connection is
    // free (bulk_port_test covers that); this test is about the data port.
    const gfs = new GfsClient(cell.master.url, {
      token: tokens.write,
      bulkPort: false,
    });
    const http = new GfsClient(cell.master.url, {
      token: tokens.write,
      dataPort: false,
      bulkPort: false,
    });
    const total = async (what: "calls" | "applies" = "calls") => {
      let n = 0;
      for (const s of cell.servers) {
        n += await portCalls(s.url, tokens.read, what);
      }
      return n;
    };
    try {
      await until("3 chunkservers registered", async () => {
        const r = await fetch(`${cell.master.url}/v1/chunkservers`, {
          headers: { authorization: `Bearer ${tokens.read}` },
        });
        const b = await r.json() as { chunkservers: unknown[] };
        return b.chunkservers.length === 3;
      }, 30_000);
      for (const s of cell.servers) assert.ok((s.dataPort ?? 0) > 0);
      const data = pattern(2 * CHUNK + 777, 9);
      await gfs.upload("/f", data);

      await t.step(
        "pread, download, record appends and their forwards to the secondaries go over the port; an HTTP-only client gets the same bytes",
        async () => {
          const before = await total();
          const appliesBefore = await total("applies");
          for (const [o, n] of [[0, 10], [CHUNK - 5, 10], [1234, 65536]]) {
            assert.deepEqual(
              await gfs.pread("/f", o!, n!),
              data.subarray(o!, o! + n!),
            );
          }
          assert.deepEqual(await gfs.readAll("/f"), data);
          const records = [1, 2, 3].map((i) => pattern(100 * i, i));
          await Promise.all(records.map((r) => gfs.append("/log", r)));
          const afterPort = await total();
          assert.ok(
            afterPort - before >= 3 + 3 + 3,
            `${afterPort - before} data port calls`,
          );
          // Each batch goes to both secondaries over their ports.
          const applies = await total("applies") - appliesBefore;
          assert.ok(applies >= 2, `${applies} batches applied over the port`);
          const back: Uint8Array[] = [];
          for await (const r of http.readRecords("/log")) back.push(r);
          assert.equal(back.length, 3);
          for (const r of records) {
            assert.ok(back.some((b) => b.length === r.length), "record found");
          }
          assert.deepEqual(
            await http.pread("/f", 1234, 65536),
            data.subarray(1234, 1234 + 65536),
          );
          assert.equal(
            await total(),
            afterPort,
            "the HTTP-only client used HTTP",
          );
        },
      );

      const port = cell.servers[0]!.dataPort!;
      const handle = (await gfs.locate("/f")).chunks[0]!;

      await t.step(
        "a wrong token is refused in the handshake; a read token cannot append; only the peer secret forwards batches",
        async () => {
          await assert.rejects(
            connectTcp<DataMessages>({ port }, {
              set: dataMessages,
              secret: "not a token of this cell",
              differential: false,
            }),
            (e) => isTransportError(e, "auth_failed"),
          );
          await assert.rejects(
            connectTcp<DataMessages>({ port }, {
              set: dataMessages,
              differential: false,
            }),
            (e) => isTransportError(e, "auth_failed"),
          );
          const reader = await connectTcp<DataMessages>({ port }, {
            set: dataMessages,
            secret: tokens.read,
            differential: false, // as the port (client/data_connection.ts)
          });
          try {
            const ok = await reader.call(ReadChunk, {
              handle: handle.handle,
              version: handle.version,
              offset: 0,
              length: 5,
            });
            assert.equal(ok.type, "ChunkBytes");
            const no = await reader.call(AppendRecord, {
              handle: handle.handle,
              version: handle.version,
              secondaries: [],
              data: new Uint8Array(10),
            });
            assert.equal(no.type, "DataRefused");
            assert.equal((no.message as { code: string }).code, "forbidden");
            const forward = {
              handle: handle.handle,
              version: handle.version,
              offset: 0,
              seq: null,
              data: new Uint8Array(10),
            };
            const noApply = await reader.call(ApplyBytes, forward);
            assert.equal(
              (noApply.message as { code: string }).code,
              "forbidden",
            );
            const admin = await connectTcp<DataMessages>({ port }, {
              set: dataMessages,
              secret: tokens.admin,
              differential: false,
            });
            try {
              const noAdmin = await admin.call(ApplyBytes, forward);
              assert.equal(
                (noAdmin.message as { code: string }).code,
                "forbidden",
                "a user's admin token is not the peer secret",
              );
            } finally {
              await admin.close();
            }
            const huge = await reader.call(ReadChunk, {
              handle: handle.handle,
              version: null,
              offset: 0,
              length: 64 * 2 ** 20,
            });
            assert.equal(
              (huge.message as { code: string }).code,
              "bad_request",
            );
            const missing = await reader.call(ReadChunk, {
              handle: 999_999,
              version: null,
              offset: 0,
              length: 5,
            });
            assert.equal(
              (missing.message as { code: string }).code,
              "not_found",
            );
          } finally {
            await reader.close();
          }
        },
      );

      await t.step(
        "garbage on the port closes that connection; the server goes on serving",
        async () => {
          const raw = await Deno.connect({ hostname: "127.0.0.1", port });
          await raw.write(
            new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n".repeat(20)),
          );
          // The server answers with its hello (and a goodbye) and hangs up.
          const buf = new Uint8Array(4096);
          const end = performance.now() + 10_000;
          let closed = false;
          while (performance.now() < end) {
            const n = await raw.read(buf).catch(() => null);
            if (n === null) {
              closed = true;
              break;
            }
          }
          raw.close();
          assert.ok(closed, "the server closed the bad connection");
          assert.deepEqual(
            await gfs.pread("/f", 10, 100),
            data.subarray(10, 110),
          );
        },
      );

      await t.step(
        "a server without a data port is read over HTTP",
        async () => {
          const fake = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: () => {} },
            () => Response.json({ status: "ok", dataPort: null }),
          );
          const ports = new DataPorts({ token: tokens.read });
          try {
            const got = await ports.read(
              `http://127.0.0.1:${fake.addr.port}`,
              { handle: 1, version: 1, offset: 0, length: 1 },
              5_000,
            );
            assert.equal(got, null);
          } finally {
            await ports.close();
            await fake.shutdown();
          }
        },
      );

      await t.step(
        "a secondary without a data port gets its batch over HTTP",
        async () => {
          const got: { url: string; body: Uint8Array }[] = [];
          const fake = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: () => {} },
            async (req) => {
              const url = new URL(req.url);
              if (url.pathname === "/v1/health") {
                return Response.json({ status: "ok", dataPort: null });
              }
              got.push({
                url: url.pathname + url.search,
                body: new Uint8Array(await req.arrayBuffer()),
              });
              return Response.json({ ok: true });
            },
          );
          const secondaries = new Secondaries(
            cell.secrets.peerSecret,
            undefined,
          );
          try {
            const at = `http://127.0.0.1:${fake.addr.port}`;
            const batch = pattern(300, 4);
            const r = await secondaries.applyBytes(
              [at],
              7,
              { version: 2, offset: 100, seq: 3 },
              batch,
            );
            assert.deepEqual(r, { ok: [at], failed: [] });
            assert.equal(got.length, 1);
            assert.equal(
              got[0]!.url,
              "/v1/chunks/7/apply-bytes?version=2&offset=100&seq=3",
            );
            assert.deepEqual(got[0]!.body, batch);
          } finally {
            await secondaries.close();
            await fake.shutdown();
          }
        },
      );

      await t.step(
        "a stopped chunkserver: reads fail over to another replica",
        async () => {
          // Close one server: its connections drop, reads go to the others.
          await cell.servers[1]!.close();
          for (let i = 0; i < 20; i++) {
            const o = (i * 9973) % (data.length - 4096);
            assert.deepEqual(
              await gfs.pread("/f", o, 4096),
              data.subarray(o, o + 4096),
            );
          }
          await assert.rejects(
            new DataPorts({ token: tokens.read }).read(
              cell.servers[1]!.url,
              { handle: 1, version: 1, offset: 0, length: 1 },
              2_000,
            ),
            (e) => isGfsError(e, "unavailable"),
          );
        },
      );
    } finally {
      await gfs.close();
      await http.close();
      await cell.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
