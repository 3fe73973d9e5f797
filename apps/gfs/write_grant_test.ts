import assert from "node:assert/strict";
import { GfsClient } from "./client/client.ts";
import { BulkPorts } from "./client/bulk_connection.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import {
  CreatedSchema,
  type WriteTarget,
  WriteTargetSchema,
} from "./shared/messages.ts";
import { signGrant } from "./shared/write_grant.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";

const CHUNK = 1 << 20;

/** Chunks a chunkserver created from a write grant (its /metrics). */
async function granted(api: typeof fetch, url: string): Promise<number> {
  const text = await (await api(`${url}/metrics`)).text();
  const m = text.match(
    /^gfs_chunkserver_granted_creates_total\{[^}]*\} (\d+)/m,
  );
  assert.ok(m, "the grant counter is in /metrics");
  return Number(m[1]);
}

Deno.test({
  name:
    "write grants (real processes): uploads create their chunks from the master's grant; forged, expired and replayed grants are refused; acknowledged uploads survive kill -9 of the master and every chunkserver",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gfs-grant-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 3,
      master: { chunkBytes: CHUNK, tickMs: 200, deadAfterMs: 5000 },
      chunkserver: () => ({ heartbeatMs: 200, scrubPauseMs: 0 }),
    });
    const tokens = cluster.secrets!.tokens;
    const api = fetchAs(tokens.admin);
    const client = new GfsClient(cluster.master.url, { token: tokens.admin });
    const bulk = new BulkPorts({ token: tokens.write });
    const servers = () => cluster.chunkservers.map((c) => c.url);
    const grantedTotal = async () =>
      (await Promise.all(servers().map((u) => granted(api, u)))).reduce(
        (a, b) => a + b,
        0,
      );
    /** A pending file with chunk 0 placed under a grant (the client's create). */
    const create = async (path: string): Promise<WriteTarget> => {
      const res = await api(`${cluster.master.url}/v1/rpc/create`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path, allocate: true, grant: true }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const first = CreatedSchema.parse(await res.json()).first;
      assert.ok(first?.grant, "chunk 0 comes with a grant");
      return first;
    };
    const write = (t: WriteTarget, over: Partial<WriteTarget> = {}) => {
      const w = { ...t, ...over };
      return bulk.write(
        w.primary,
        {
          handle: w.handle,
          version: w.version,
          offset: 0,
          chain: w.secondaries,
          grant: w.grant,
        },
        pattern(4096, w.handle),
        10_000,
      );
    };
    const files = new Map<string, Uint8Array>();
    try {
      await t.step(
        "an upload's chunks are created from grants on every replica",
        async () => {
          const before = await grantedTotal();
          const data = pattern(2 * CHUNK + 12_345, 1);
          await client.upload("/g/a", data);
          files.set("/g/a", data);
          // Three chunks × three replicas, none created by a master call.
          assert.equal(await grantedTotal() - before, 9);
          const got = await client.readAll("/g/a");
          assert.ok(
            got.length === data.length && got.every((b, i) => b === data[i]),
          );
          // A client without bulk ports asks for no grant: the HTTP chain.
          const http = new GfsClient(cluster.master.url, {
            token: tokens.admin,
            bulkPort: false,
          });
          const mid = await grantedTotal();
          const small = pattern(CHUNK / 2, 2);
          await http.upload("/g/http", small);
          files.set("/g/http", small);
          assert.equal(await grantedTotal(), mid, "no grant over HTTP");
          await http.close();
        },
      );

      await t.step(
        "forged, expired, misdirected and replayed grants are refused; nothing is created",
        async () => {
          const a = await create("/g/raw-a");
          const b = await create("/g/raw-b");
          const before = await grantedTotal();
          const refused = async (
            p: Promise<unknown>,
            code: "forbidden" | "no_lease",
            match: RegExp,
          ) =>
            await assert.rejects(p, (e) => {
              assert.ok(isGfsError(e, code), `${code}: ${e}`);
              assert.match((e as Error).message, match);
              return true;
            });
          // Forged: a MAC that is not the master's.
          const bad = a.grant!.mac.startsWith("0") ? "1" : "0";
          await refused(
            write(a, {
              grant: { ...a.grant!, mac: bad + a.grant!.mac.slice(1) },
            }),
            "forbidden",
            /not signed by this cell's master/,
          );
          // Stretched: a later expiry under the old MAC.
          await refused(
            write(a, {
              grant: { ...a.grant!, expiresAt: a.grant!.expiresAt + 3_600_000 },
            }),
            "forbidden",
            /not signed/,
          );
          // Expired (signed with the cell's secret, as the master would).
          const expired = signGrant(cluster.secrets!.peerSecret, {
            ...a.grant!,
            expiresAt: Date.now() - 1000,
          });
          await refused(
            write(a, { grant: expired }),
            "no_lease",
            /expired/,
          );
          // Replayed onto another chunk: a's grant with b's handle.
          await refused(
            write(b, { grant: a.grant }),
            "forbidden",
            new RegExp(`for chunk ${a.handle} v1, not chunk ${b.handle} v1`),
          );
          // Sent to a secondary as if it were the primary.
          await refused(
            write(a, {
              primary: a.secondaries[0]!,
              secondaries: [a.primary, ...a.secondaries.slice(1)],
            }),
            "forbidden",
            /as its primary/,
          );
          // A chain that skips a member of the lease.
          await refused(
            write(a, { secondaries: a.secondaries.slice(0, 1) }),
            "forbidden",
            /is not the grant's replicas/,
          );
          assert.equal(await grantedTotal(), before, "no chunk was created");
          // Without a grant a write to a chunk no one created finds none.
          await assert.rejects(
            write(b, { grant: undefined }),
            (e) => isGfsError(e) && /lease|not_found|chunk/.test(e.message),
          );
          // The genuine grants still work, each for its own chunk.
          assert.equal((await write(a))!.length, 3);
          assert.equal((await write(b))!.length, 3);
          assert.equal(await grantedTotal(), before + 6);
        },
      );

      await t.step(
        "an append file's chunk gets no grant (its replica set is logged first)",
        async () => {
          await client.append("/g/log", pattern(100, 5));
          const loc = await (await api(
            `${cluster.master.url}/v1/rpc/locate?path=/g/log`,
          )).json() as { fileId: number; chunks: unknown[] };
          const res = await api(`${cluster.master.url}/v1/rpc/allocate`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              path: "/g/log",
              fileId: loc.fileId,
              index: loc.chunks.length,
              grant: true,
            }),
          });
          assert.equal(res.status, 200, await res.clone().text());
          const target = WriteTargetSchema.parse(await res.json());
          assert.equal(target.grant, undefined);
        },
      );

      await t.step(
        "acknowledged uploads survive kill -9 of the master and every chunkserver",
        async () => {
          for (const [i, n] of [CHUNK, CHUNK + 7, 1000].entries()) {
            const data = pattern(n, 30 + i);
            await client.upload(`/g/k${i}`, data);
            files.set(`/g/k${i}`, data);
          }
          await Promise.all([
            cluster.master.stop(true),
            ...cluster.chunkservers.map((c) => c.stop(true)),
          ]);
          await cluster.restartMaster(true);
          for (let i = 0; i < cluster.chunkservers.length; i++) {
            await cluster.restartChunkserver(i);
          }
          const after = new GfsClient(cluster.master.url, {
            token: tokens.admin,
          });
          try {
            for (const [path, data] of files) {
              await until(
                `${path} readable again`,
                async () => {
                  const got = await after.readAll(path).catch(() => null);
                  return got !== null && got.length === data.length &&
                    got.every((b, i) => b === data[i]);
                },
                60_000,
                300,
              );
            }
            // And the cell takes new grants after the restart.
            const more = pattern(CHUNK, 99);
            await after.upload("/g/after", more);
            const got = await after.readAll("/g/after");
            assert.ok(got.every((b, i) => b === more[i]));
          } finally {
            await after.close();
          }
        },
      );
    } finally {
      await client.close();
      await bulk.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "write grants (real processes): in a cell where one chunkserver has no bulk port, an upload whose grant it cannot carry is allocated again without one",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gfs-grant-mixed-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 3,
      master: { chunkBytes: CHUNK },
      chunkserver: (i) => ({
        heartbeatMs: 200,
        scrubPauseMs: 0,
        ...(i === 0 ? { bulkPort: -1 } : {}),
      }),
    });
    const tokens = cluster.secrets!.tokens;
    const api = fetchAs(tokens.admin);
    const client = new GfsClient(cluster.master.url, { token: tokens.admin });
    try {
      // Replication 3 on 3 servers: every chain has the one without a port.
      const data = pattern(CHUNK + 5000, 7);
      await client.upload("/mixed/a", data);
      const got = await client.readAll("/mixed/a");
      assert.ok(
        got.length === data.length && got.every((b, i) => b === data[i]),
      );
      const created = await Promise.all(
        cluster.chunkservers.map((c) => granted(api, c.url)),
      );
      assert.deepEqual(created, [0, 0, 0], "no chunk came from a grant");
    } finally {
      await client.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
