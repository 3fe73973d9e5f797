import assert from "node:assert/strict";
import { join } from "node:path";
import { GfsClient } from "./client/client.ts";
import { isGfsError } from "./shared/gfs_error.ts";
import { startCluster } from "./process_cluster.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";

/** fetch with the cluster's admin token (set once the cluster runs). */
let api: typeof fetch = fetch;

const LONG = Deno.env.get("STRATA_LONG") === "1";
const CHUNK = 1 << 20;

async function sha(b: Uint8Array): Promise<string> {
  return Array.from(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>),
    ),
  )
    .map((x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name:
    "a 3-chunkserver cluster of real processes stores, serves, repairs and rejects bad input",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gfs-cluster-" });
    const cluster = await startCluster({
      dataDir: dir,
      chunkservers: 3,
      master: {
        chunkBytes: CHUNK,
        tickMs: 200,
        deadAfterMs: 3000,
        maxFileBytes: 8 * CHUNK,
        // Leased (appended-to) chunks wait for their lease to lapse before
        // re-replication; the repair step follows the append step.
        leaseMs: 10_000,
      },
      chunkserver: () => ({ heartbeatMs: 200, scrubPauseMs: 50 }),
    });
    api = fetchAs(cluster.secrets!.tokens.admin);
    const client = new GfsClient(cluster.master.url, {
      token: cluster.secrets!.tokens.admin,
    });
    try {
      await t.step(
        "files from 0 bytes to several chunks round-trip with equal checksums",
        async () => {
          for (
            const n of [
              0,
              1,
              65_535,
              CHUNK - 1,
              CHUNK,
              CHUNK + 1,
              3 * CHUNK + 12_345,
            ]
          ) {
            const data = pattern(n, n);
            await client.upload(`/rt/f${n}`, data);
            const back = await client.readAll(`/rt/f${n}`);
            assert.equal(back.length, n);
            assert.equal(await sha(back), await sha(data));
            assert.equal((await client.stat(`/rt/f${n}`)).length, n);
          }
          const files = await client.ls("/rt/");
          assert.equal(files.length, 7);
        },
      );

      await t.step(
        "a large file streams through a client whose live memory does not grow with the file",
        async () => {
          const probe = async (path: string, bytes: number) => {
            const out = await new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "-A",
                "--v8-flags=--expose-gc",
                join(import.meta.dirname!, "_memory_probe.ts"),
                cluster.master.url,
                path,
                String(bytes),
              ],
              env: { STRATA_TOKEN: cluster.secrets!.tokens.write },
              stdout: "piped",
              stderr: "inherit",
            }).output();
            assert.equal(out.code, 0);
            const r = JSON.parse(
              new TextDecoder().decode(out.stdout).trim().split("\n").pop()!,
            );
            assert.equal(r.bytes, bytes);
            assert.equal(r.downloaded, r.uploaded, "checksums up and down");
            return r.peakRssBytes as number | null;
          };
          const small = await probe("/big/small", CHUNK);
          const bytes = LONG ? 200 * 2 ** 20 : 32 * 2 ** 20;
          const big = await probe("/big/file", bytes);
          if (small !== null && big !== null) {
            // A few chunks and pieces in flight, whatever the file size.
            assert.ok(
              big < small + 48 * 2 ** 20,
              `peak RSS ${big} for ${bytes} bytes vs ${small} for one chunk`,
            );
          }
        },
      );

      await t.step(
        "the CLI puts, gets, lists, stats and removes files, and rejects bad input",
        async () => {
          const cli = async (...args: string[]) => {
            const out = await new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "-A",
                join(import.meta.dirname!, "cli.ts"),
                "--master",
                cluster.master.url,
                "--token-file",
                `${cluster.secrets!.dir}/write.token`,
                ...args,
              ],
              stdout: "piped",
              stderr: "piped",
            }).output();
            return {
              code: out.code,
              stdout: new TextDecoder().decode(out.stdout),
              stderr: new TextDecoder().decode(out.stderr),
            };
          };
          const local = join(dir, "cli-in.bin");
          const back = join(dir, "cli-out.bin");
          const data = pattern(CHUNK + 4321, 5);
          await Deno.writeFile(local, data);
          assert.equal((await cli("put", local, "/cli/a.bin")).code, 0);
          assert.equal((await cli("get", "/cli/a.bin", back)).code, 0);
          assert.deepEqual(await Deno.readFile(back), data);
          assert.match((await cli("ls", "/cli/")).stdout, /\/cli\/a\.bin/);
          assert.equal(
            JSON.parse((await cli("stat", "/cli/a.bin")).stdout).length,
            data.length,
          );
          // A read token (a later --token-file wins) may read, not delete.
          const readOnly = `${cluster.secrets!.dir}/read.token`;
          assert.equal((await cli("--token-file", readOnly, "ls")).code, 0);
          const refused = await cli(
            "--token-file",
            readOnly,
            "rm",
            "/cli/a.bin",
          );
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /error forbidden/);
          assert.equal((await cli("rm", "/cli/a.bin")).code, 0);
          const missing = await cli("stat", "/cli/a.bin");
          assert.equal(missing.code, 1);
          assert.match(missing.stderr, /error not_found/);
          const bad = await cli("put", local, "no-slash");
          assert.equal(bad.code, 2);
          assert.match(bad.stderr, /error bad_request/);
        },
      );

      await t.step(
        "HTTP API: Range reads, ls, stat, delete to trash and undelete",
        async () => {
          const data = pattern(2 * CHUNK + 100, 7);
          const put = await api(`${cluster.master.url}/v1/files/api/x.bin`, {
            method: "PUT",
            body: data,
          });
          assert.equal(put.status, 201);
          await put.body?.cancel();
          const r = await api(`${cluster.master.url}/v1/files/api/x.bin`, {
            headers: { range: `bytes=${CHUNK - 5}-${CHUNK + 4}` },
          });
          assert.equal(r.status, 206);
          assert.deepEqual(
            new Uint8Array(await r.arrayBuffer()),
            data.subarray(CHUNK - 5, CHUNK + 5),
          );
          const suffix = await api(
            `${cluster.master.url}/v1/files/api/x.bin`,
            { headers: { range: "bytes=-10" } },
          );
          assert.deepEqual(
            new Uint8Array(await suffix.arrayBuffer()),
            data.subarray(data.length - 10),
          );
          const trash = await client.remove("/api/x.bin");
          await assert.rejects(
            client.stat("/api/x.bin"),
            (e) => isGfsError(e, "not_found"),
          );
          assert.equal((await client.ls("/api/")).length, 0);
          assert.equal(
            (await client.ls("/.trash/")).filter((f) =>
              f.path.endsWith("/api/x.bin")
            ).length,
            1,
          );
          assert.equal(await client.undelete(trash), "/api/x.bin");
          assert.deepEqual(await client.readAll("/api/x.bin"), data);
          const health = await (await api(`${cluster.master.url}/v1/health`))
            .json();
          assert.equal(health.lost, 0);
          const servers = (await (await api(
            `${cluster.master.url}/v1/chunkservers`,
          )).json()).chunkservers as { alive: boolean; chunks: number }[];
          assert.equal(servers.length, 3);
          assert.ok(servers.every((s) => s.alive && s.chunks > 0));
          const metrics = await (await api(`${cluster.master.url}/metrics`))
            .text();
          assert.match(metrics, /gfs_master_files \d+/);
        },
      );

      await t.step(
        "bad paths, oversized uploads, malformed ranges and bodies get clear 4xx errors",
        async () => {
          const m = cluster.master.url;
          const expect = async (
            res: Response,
            status: number,
            code: string,
          ) => {
            const body = await res.json();
            assert.equal(res.status, status, JSON.stringify(body));
            assert.equal(body.error.code, code);
            assert.equal(typeof body.error.message, "string");
            assert.ok(
              !String(body.error.message).includes("    at "),
              "no stack trace",
            );
          };
          await expect(
            await api(`${m}/v1/files/a%20b`, { method: "PUT", body: "x" }),
            400,
            "bad_request",
          );
          await expect(await api(`${m}/v1/files/a//b`), 400, "bad_request");
          await expect(
            await api(`${m}/v1/files/a/%2e%2e%2fb`),
            400,
            "bad_request",
          );
          await expect(await api(`${m}/v1/files/nope`), 404, "not_found");
          await expect(
            await api(`${m}/v1/files/too/big`, {
              method: "PUT",
              body: new Uint8Array(9 * CHUNK),
            }),
            413,
            "too_large",
          );
          const streamed = new ReadableStream<Uint8Array>({
            pull(ctl) {
              ctl.enqueue(new Uint8Array(CHUNK));
            },
          });
          await expect(
            await api(
              `${m}/v1/files/too/streamed`,
              { method: "PUT", body: streamed, duplex: "half" } as RequestInit,
            ),
            413,
            "too_large",
          );
          assert.equal((await client.ls("/too/")).length, 0);
          await expect(
            await api(`${m}/v1/files/rt/f1`, {
              headers: { range: "bytes=5-2" },
            }),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/files/rt/f1`, {
              headers: { range: "items=0-1" },
            }),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/files/rt/f1`, {
              headers: { range: "bytes=10-20" },
            }),
            416,
            "range_not_satisfiable",
          );
          await expect(
            await api(`${m}/v1/rpc/create`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: "{not json",
            }),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/rpc/create`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ path: 5 }),
            }),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/heartbeat`, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                // An internal route: the peer secret, not a user token.
                authorization: `Bearer ${cluster.secrets!.peerSecret}`,
              },
              body: JSON.stringify({ id: "x" }),
            }),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/ls?prefix=nope`),
            400,
            "bad_request",
          );
          await expect(
            await api(`${m}/v1/files/rt/f1`, { method: "PUT", body: "dup" }),
            409,
            "conflict",
          );
          await expect(
            await api(`${cluster.chunkservers[0]!.url}/v1/chunks/abc`),
            400,
            "bad_request",
          );
        },
      );

      await t.step(
        "a master alone is a one-member Raft group: its own leader, with raft's metrics, and no member added without a raft port",
        async () => {
          const view = await (await api(`${cluster.master.url}/v1/master`))
            .json();
          assert.equal(view.replicated, false);
          assert.equal(view.role, "leader");
          assert.equal(view.leader, view.id);
          assert.deepEqual(view.members, [{ id: 1, role: "voter" }]);
          assert.equal(view.serving, true);
          assert.equal(view.chunkBytes, CHUNK);
          assert.ok(view.appliedIndex > 0, "ops were applied");
          const metrics = await (await api(`${cluster.master.url}/metrics`))
            .text();
          assert.match(metrics, /^gfs_master_oplog_applied_index \d+$/m);
          assert.match(metrics, /^strata_raft_log_append_seconds_count \d+$/m);
          const add = await api(`${cluster.master.url}/v1/master/members`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              action: "add",
              id: 2,
              peer: "127.0.0.1:1",
              http: "127.0.0.1:2",
            }),
          });
          const body = await add.json();
          assert.equal(add.status, 400, JSON.stringify(body));
          assert.match(body.error.message, /--peers/);
        },
      );

      await t.step(
        "concurrent record appends from several clients: every acknowledged record is present and intact",
        async () => {
          const writers = 4, each = LONG ? 60 : 10;
          const acked = new Set<string>();
          await Promise.all(Array.from({ length: writers }, async (_, w) => {
            const c = new GfsClient(cluster.master.url, {
              token: cluster.secrets!.tokens.admin,
            });
            for (let i = 0; i < each; i++) {
              const body = `writer ${w} record ${i} `.padEnd(
                1000 + ((w * 7919 + i * 104_729) % 60_000),
                "x",
              );
              await c.append("/logs/app", new TextEncoder().encode(body));
              acked.add(body);
            }
          }));
          const seen = new Set<string>();
          for await (const r of client.readRecords("/logs/app")) {
            seen.add(new TextDecoder().decode(r));
          }
          for (const a of acked) {
            assert.ok(seen.has(a), `missing ${a.slice(0, 24)}`);
          }
          assert.equal(seen.size, acked.size);
          assert.ok(
            (await client.stat("/logs/app")).chunks > 1,
            "appends rolled over to new chunks",
          );
        },
      );

      await t.step(
        "flipped bytes on a replica: reads stay correct and the replica is repaired",
        async () => {
          const data = pattern(3 * CHUNK, 99);
          await client.upload("/flip/f", data);
          const victim = cluster.chunkservers[0]!;
          const vol = join(dir, "cs0", "volume", "volume.dat");
          const file = await Deno.open(vol, { read: true, write: true });
          const size = (await file.stat()).size;
          // The file's three chunks are the last 3 MiB of needles written.
          for (const back of [0.5, 1.5, 2.5]) {
            await file.seek(
              Math.floor(size - back * CHUNK),
              Deno.SeekMode.Start,
            );
            await file.write(new Uint8Array(16).fill(0xa5));
          }
          file.close();
          for (let i = 0; i < 3; i++) {
            assert.deepEqual(await client.readAll("/flip/f"), data);
          }
          // Read each chunk from the victim directly, so it must notice.
          const loc = await client.locate("/flip/f");
          for (const ch of loc.chunks) {
            await api(`${victim.url}/v1/chunks/${ch.handle}`).then((r) =>
              r.body?.cancel()
            );
          }
          await until("the victim to notice the corruption", async () => {
            const metrics = await (await api(`${victim.url}/metrics`)).text();
            return /gfs_chunkserver_corrupt_replicas_total\{id="cs0"\} [1-9]/
              .test(metrics);
          });
          await until(
            "every chunk back at 3 good replicas, the victim's included",
            async () => {
              const h = await (await api(`${cluster.master.url}/v1/health`))
                .json();
              const l = await client.locate("/flip/f");
              if (h.underReplicated !== 0 || h.lost !== 0) return false;
              if (!l.chunks.every((c) => c.replicas.length === 3)) return false;
              for (const ch of l.chunks) {
                const r = await api(
                  `${victim.url}/v1/chunks/${ch.handle}?version=${ch.version}`,
                );
                await r.body?.cancel();
                if (r.status !== 200) return false;
              }
              return true;
            },
          );
          assert.deepEqual(await client.readAll("/flip/f"), data);
        },
      );
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
