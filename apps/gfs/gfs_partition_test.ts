// GFS on separate hosts (@strata/hosts), each process binding and
// advertising its host's address. Needs root; skipped with a message
// outside CI.
// - short (default): the master and four chunkservers on five hosts; a
//   chunkserver holding replicas is cut off from everything during reads,
//   uploads and record appends, with the client's push/read/append
//   timeouts set to a few seconds. Reads fail over, the server is declared
//   dead no sooner than its dead-after time, no replica of the files placed
//   before the cut moves until then, acknowledged uploads and
//   records are intact after healing (every listed replica of the log holds
//   every acknowledged record), and uploaded chunks are back at exactly 3
//   replicas; with STRATA_GFS_APPEND_PARTITION=1 it also waits for the
//   log's chunks to be back at 3 replicas (about 15 s more);
// - long (STRATA_LONG=1): the same on the client's default timeouts, so an
//   upload that meets the silent partition waits out the 120 s push
//   timeout before it fails over (minutes);
// - leader, short (default): three masters on Raft on three hosts, no
//   chunkserver (empty files), the leader cut off; a new leader serves and
//   deletes a file; the old leader answers no request sent once the new
//   one served (it refuses: not_leader), and after healing follows the new
//   leader with the same log;
// - leader (STRATA_LONG=1, or STRATA_GFS_LEADER_PARTITION=1 alone): three
//   masters and three chunkservers, the leader cut off during uploads; a
//   new leader, uploads through it, nothing acknowledged lost, no stale
//   answer from the old leader.
// The long and flagged variants are off by default only for their length.
import assert from "node:assert/strict";
import { type Host, HostNetwork, skipWithoutHosts } from "@strata/hosts";
import type { ReadyProcess } from "@strata/process";
import { GfsClient } from "./client/client.ts";
import { fetchAs, pattern, until } from "./_test_support.ts";
import { startGfsOnHost } from "./host_process.ts";
import { type ClusterSecrets, loadOrCreateSecrets } from "@strata/edge";

const CHUNK = 1 << 20;
const DEAD_AFTER_MS = 3000;
const PORT = 7300;
const LONG = Deno.env.get("STRATA_LONG") === "1";
const skip = await skipWithoutHosts("gfs_partition_test");
/**
 * Also wait, at the end of the short test, for the append file's chunks to
 * be back at 3 replicas: they are copied only once no lease on them can be
 * held, about 15 s after the appends stop (`--lease-ms 5000`, extended
 * while mutated within 10 s), which would double the test's length.
 */
const APPEND_REPAIR = Deno.env.get("STRATA_GFS_APPEND_PARTITION") === "1";
/**
 * The master-leader partition test (28–84 s more). Off by default for its
 * length; runs under STRATA_LONG=1, or alone with this set to 1.
 */
const LEADER = Deno.env.get("STRATA_GFS_LEADER_PARTITION") === "1";

/**
 * Starts a gfs process (`master` or `chunkserver`) inside `host`. Every
 * process of this test starts here, so flags (auth, secrets) are set in
 * one place.
 */
function startGfsProcess(
  net: HostNetwork,
  host: Host,
  role: "master" | "chunkserver",
  flags: Record<string, string | number>,
): Promise<ReadyProcess<string>> {
  // Off loopback auth is required: every process shares one auth dir.
  return startGfsOnHost(net, host, role, {
    port: PORT,
    "auth-dir": secrets.dir,
    ...flags,
  });
}

/** The current test's cell secrets (tokens, peer secret), shared by its processes. */
let secrets: ClusterSecrets;
/** fetch with the current test's admin token. */
let api: typeof fetch = fetch;

/** Creates the cell's secrets in `<dir>/auth` for the processes and the test's calls. */
async function useCellSecrets(dir: string): Promise<void> {
  secrets = await loadOrCreateSecrets(`${dir}/auth`);
  api = fetchAs(secrets.tokens.admin);
}

interface Health {
  underReplicated: number;
  lost: number;
  liveServers: number;
  deadServers: number;
}

async function health(master: string): Promise<Health> {
  const res = await api(`${master}/v1/health`, {
    signal: AbortSignal.timeout(5000),
  });
  return await res.json();
}

/** The master on the first host and a chunkserver on each other host. */
async function startCell(
  net: HostNetwork,
  dir: string,
  chunkBytes: number,
): Promise<{ master: string; servers: string[]; csHosts: Host[] }> {
  const [mh, ...csHosts] = net.hosts as Host[];
  const master = await startGfsProcess(net, mh!, "master", {
    "data-dir": `${dir}/master`,
    "chunk-bytes": chunkBytes,
    "tick-ms": 200,
    "dead-after-ms": DEAD_AFTER_MS,
    // A chunk under appends is cloned only once its lease lapses (60 s by
    // default): short leases let the test see the goal restored.
    "lease-ms": 5000,
  });
  assert.equal(master.ready, `http://${mh!.address}:${PORT}`);
  const servers = await Promise.all(
    csHosts.map((h, i) =>
      startGfsProcess(net, h, "chunkserver", {
        "data-dir": `${dir}/cs${i + 1}`,
        master: master.ready,
        id: `cs${i + 1}`,
        "heartbeat-ms": 200,
      })
    ),
  );
  await until(
    `${csHosts.length} live chunkservers`,
    async () => (await health(master.ready)).liveServers === csHosts.length,
    30_000,
  );
  return {
    master: master.ready,
    servers: servers.map((s) => s.ready),
    csHosts,
  };
}

/** A record that names its appender and number, 100 B – 2 KiB long. */
function record(w: number, i: number): Uint8Array {
  const size = 100 + ((w * 7919 + i * 104_729) % 1948);
  const out = pattern(size, w * 1_000_003 + i + 1);
  out.set(new TextEncoder().encode(`w${w} r${i} `));
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test({
  name:
    "gfs on 5 hosts (short): a chunkserver holding replicas partitioned during reads, uploads and record appends: reads fail over, it is declared dead only after its dead-after time, everything acknowledged is intact after healing on every listed replica, and uploaded chunks are back at exactly 3 replicas",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const chunk = 256 * 1024;
    const dir = await Deno.makeTempDir({ prefix: "strata-gfs-partition-" });
    await useCellSecrets(dir);
    const net = await HostNetwork.create({ hosts: 5 });
    try {
      const { master, servers, csHosts } = await startCell(net, dir, chunk);
      // Timeouts of a few seconds, so a silent partition costs seconds per
      // attempt instead of the defaults (120 s push, 60 s read and append).
      const client = new GfsClient(master, {
        token: secrets.tokens.admin,
        pushTimeoutMs: 3000,
        readTimeoutMs: 2000,
        appendTimeoutMs: 3000,
      });
      const files = new Map<string, Uint8Array>();
      for (let i = 0; i < 3; i++) {
        const data = pattern(2 * chunk + i * 777, i + 1);
        await client.upload(`/p/f${i}`, data);
        files.set(`/p/f${i}`, data);
      }
      const LOG = "/p/log";
      const acked = new Map<string, Uint8Array>();
      await client.append(LOG, record(0, 0));
      acked.set("w0 r0", record(0, 0));

      // The victim holds a replica of the log's chunk and of /p/f0's first
      // chunk (two 3-of-4 sets always share a server).
      const logReplicas = (await client.locate(LOG)).chunks.at(-1)!.replicas;
      const f0Replicas = (await client.locate("/p/f0")).chunks[0]!.replicas;
      const victimUrl = logReplicas.find((r) => f0Replicas.includes(r))!;
      const victim = servers.indexOf(victimUrl);
      assert.ok(victim >= 0, victimUrl);

      let stopAppends = false;
      let stop = false;
      let cutAt = Infinity;
      let ackedAfterCut = 0;
      const appendFailures: string[] = [];
      const appenders = [1, 2, 3].map(async (w) => {
        for (let i = 1; !stopAppends; i++) {
          const r = record(w, i);
          try {
            await client.append(LOG, r);
            acked.set(`w${w} r${i}`, r);
            if (performance.now() > cutAt) ackedAfterCut++;
          } catch (e) {
            appendFailures.push(`w${w} r${i}: ${String(e)}`);
          }
        }
      });
      let reads = 0;
      let readsWhileCut = 0;
      const wrong: string[] = [];
      const readErrors: string[] = [];
      const reader = (async () => {
        while (!stop) {
          for (const [path, data] of [...files]) {
            if (stop) break;
            try {
              const got = await client.readAll(path);
              if (!sameBytes(got, data)) wrong.push(path);
              reads++;
              if (performance.now() > cutAt) readsWhileCut++;
            } catch (e) {
              readErrors.push(`${path}: ${String(e)}`);
            }
          }
        }
      })();
      let uploads = 0;
      let slowestUploadMs = 0;
      const uploadErrors: string[] = [];
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const data = pattern(chunk + 31 * i, 100 + i);
          const started = performance.now();
          try {
            await client.upload(`/p/w${i}`, data);
            slowestUploadMs = Math.max(
              slowestUploadMs,
              performance.now() - started,
            );
            files.set(`/p/w${i}`, data); // acknowledged
            uploads++;
          } catch (e) {
            uploadErrors.push(`w${i}: ${String(e)}`);
          }
        }
      })();
      let deadAfter = 0;
      let repairedAt = 0;
      let uploadsWhileCut = 0;
      try {
        await until(
          "appends and uploads under way",
          () => Promise.resolve(acked.size >= 20 && uploads >= 1),
          30_000,
        );
        // The cut takes effect somewhere inside isolate(), which can take
        // hundreds of ms on a loaded machine: the dead-after check counts
        // from its start, the rest from its end.
        // Where the first files' chunks are: until the cut-off server is
        // declared dead, the master must not copy any of them elsewhere.
        const placement = async () =>
          JSON.stringify(
            await Promise.all(
              ["/p/f0", "/p/f1", "/p/f2"].map(async (path) =>
                (await client.locate(path)).chunks.map((c) =>
                  [...c.replicas].sort()
                )
              ),
            ),
          );
        const placedAtCut = await placement();
        const cutBegun = performance.now();
        await net.isolate(csHosts[victim]!, { root: true });
        cutAt = performance.now();
        const uploadsAtCut = uploads;
        let placementChecks = 0;
        const movedEarly: string[] = [];
        await until(
          "the partitioned server declared dead",
          async () => {
            // Read before asking whether it is dead: a change seen here
            // happened before the master declared it dead.
            const placed = await placement();
            if ((await health(master)).deadServers === 1) return true;
            if (placed !== placedAtCut) movedEarly.push(placed);
            placementChecks++;
            return false;
          },
          30_000,
        );
        assert.deepEqual(
          movedEarly,
          [],
          `replicas moved before the server was declared dead (at the cut: ${placedAtCut})`,
        );
        assert.ok(placementChecks > 0, "no placement read before dead");
        deadAfter = performance.now() - cutAt;
        // Its last heartbeat may precede the cut by one interval, and the
        // master checks every tick.
        assert.ok(
          performance.now() - cutBegun >= DEAD_AFTER_MS - 200 - 200,
          `declared dead ${deadAfter.toFixed(0)} ms after the cut (${
            (cutAt - cutBegun).toFixed(0)
          } ms to cut)`,
        );
        await until(
          "appends acknowledged while partitioned",
          () => Promise.resolve(ackedAfterCut >= 20),
          40_000,
        );
        stopAppends = true;
        await Promise.all(appenders);
        // The uploaded files' chunks are cloned off the cut server. (The
        // log's chunk is left out: in some runs it stayed at 2 replicas for
        // longer than this test waits; see the README.)
        await until("uploads re-replicated", async () => {
          for (const path of [...files.keys()]) {
            const l = await client.locate(path);
            if (
              l.chunks.some((c) =>
                c.replicas.length !== 3 || c.replicas.includes(victimUrl)
              )
            ) return false;
          }
          return true;
        }, 40_000);
        repairedAt = performance.now() - cutAt;
        await until(
          "uploads while partitioned",
          () => {
            if (uploads >= uploadsAtCut + 2) return Promise.resolve(true);
            // Not yet: a timeout then names what the writer saw (failed
            // once in a full suite with no clue why uploads stopped).
            return Promise.reject(
              new Error(
                `${uploads - uploadsAtCut} since the cut; last upload errors: ${
                  uploadErrors.slice(-3).join(" | ") || "none"
                }`,
              ),
            );
          },
          40_000,
        );
        uploadsWhileCut = uploads - uploadsAtCut;
        await net.heal();
        await until(
          "the healed server live again",
          async () => (await health(master)).deadServers === 0,
          30_000,
        );
        const readsNow = reads;
        await until(
          "reads after healing",
          () => Promise.resolve(reads >= readsNow + 4),
          30_000,
        );
      } finally {
        stop = true;
        stopAppends = true;
        await Promise.all([reader, writer, ...appenders]);
      }
      console.log(
        `  cs${victim + 1} cut off: declared dead after ${
          deadAfter.toFixed(0)
        } ms, goal restored after ${
          repairedAt.toFixed(0)
        } ms; ${acked.size} records acknowledged (${ackedAfterCut} after the cut), ${appendFailures.length} failed; ${uploads} uploads acknowledged (${uploadsWhileCut} while cut, slowest ${
          slowestUploadMs.toFixed(0)
        } ms), ${uploadErrors.length} failed; ${reads} reads (${readsWhileCut} after the cut), ${readErrors.length} failed; the log's chunk has ${
          (await client.locate(LOG)).chunks.map((c) => c.replicas.length)
        } replicas`,
      );
      assert.deepEqual(wrong, [], "reads returned wrong bytes");
      assert.deepEqual(readErrors, [], "reads failed instead of failing over");
      // Every acknowledged record is present and intact.
      const seen = new Map<string, Uint8Array[]>();
      for await (const r of client.readRecords(LOG)) {
        const name = new TextDecoder().decode(r.subarray(0, 12)).split(" ")
          .slice(0, 2).join(" ");
        seen.set(name, [...(seen.get(name) ?? []), r]);
      }
      const missing = [...acked.keys()].filter((n) => !seen.has(n));
      const damaged = [...acked].filter(([n, bytes]) =>
        seen.get(n)?.some((r) => !sameBytes(r, bytes))
      ).map(([n]) => n);
      if (missing.length > 0) {
        // Which replicas hold what, to read the failure against.
        const { scanRecords } = await import("./client/record_format.ts");
        const loc = await client.locate(LOG);
        for (const c of loc.chunks) {
          for (const r of [...c.replicas, ...servers]) {
            const res = await api(
              `${r}/v1/chunks/${c.handle}?offset=0&length=${chunk}`,
            );
            const b = new Uint8Array(await res.arrayBuffer());
            const names = [...scanRecords(b)].map((x) =>
              new TextDecoder().decode(x.subarray(0, 8))
            );
            console.log(
              `  chunk ${c.handle} v${c.version} listed ${
                c.replicas.includes(r)
              } ${r}: ${res.status} ${b.length} B, ${names.length} records, has missing[0]: ${
                names.some((n) => n.startsWith(missing[0]!))
              }`,
            );
          }
        }
      }
      assert.deepEqual(missing, [], "acknowledged records lost");
      assert.deepEqual(damaged, [], "records read back different");
      for (const [path, data] of files) {
        assert.ok(sameBytes(await client.readAll(path), data), `${path}`);
      }
      await until("every uploaded chunk at exactly 3 replicas", async () => {
        for (const path of files.keys()) {
          const l = await client.locate(path);
          if (l.chunks.some((c) => c.replicas.length !== 3)) return false;
        }
        return true;
      }, 30_000);
      // The log's chunks are re-replicated too, once no lease on them can
      // be held (appends stopped), and every replica the master lists
      // holds every acknowledged record of its chunk: readRecords may
      // read any of them.
      if (APPEND_REPAIR) {
        await until("every chunk of the log at 3 replicas", async () => {
          const l = await client.locate(LOG);
          return l.chunks.every((c) => c.replicas.length === 3);
        }, 40_000);
      }
      const { scanRecords } = await import("./client/record_format.ts");
      for (const c of (await client.locate(LOG)).chunks) {
        const held = new Map<string, Set<string>>();
        for (const r of c.replicas) {
          const res = await api(
            `${r}/v1/chunks/${c.handle}?offset=0&length=${chunk}&version=${c.version}`,
            { signal: AbortSignal.timeout(10_000) },
          );
          if (res.status !== 200) {
            // Fine only if it is no longer listed (a surplus copy trimmed
            // since the locate, say); a listed replica must answer.
            const why = await res.text();
            const now = (await client.locate(LOG)).chunks.find((x) =>
              x.handle === c.handle
            );
            assert.ok(
              now?.version !== c.version || !now.replicas.includes(r),
              `${r} is listed for chunk ${c.handle} v${c.version}: ${res.status} ${why}`,
            );
            continue;
          }
          const b = new Uint8Array(await res.arrayBuffer());
          held.set(
            r,
            new Set(
              [...scanRecords(b)].map((x) =>
                new TextDecoder().decode(x.subarray(0, 12)).split(" ")
                  .slice(0, 2).join(" ")
              ).filter((n) => acked.has(n)),
            ),
          );
        }
        const all = new Set([...held.values()].flatMap((x) => [...x]));
        for (const [r, names] of held) {
          const lacking = [...all].filter((n) => !names.has(n));
          assert.deepEqual(
            lacking,
            [],
            `chunk ${c.handle} v${c.version} at ${r} lacks acknowledged records`,
          );
        }
      }
    } catch (e) {
      console.error(`faults:\n${net.describeFaults()}`);
      throw e;
    } finally {
      await net.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "gfs on 5 hosts: a chunkserver holding replicas partitioned during uploads: nothing acknowledged is lost or torn, it is declared dead only after its dead-after time, re-replication restores the goal, and after healing the cell is back at exactly 3 replicas",
  ignore: skip || !LONG,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "strata-gfs-partition-" });
    await useCellSecrets(dir);
    const net = await HostNetwork.create({ hosts: 5 });
    try {
      const [mh, ...csHosts] = net.hosts as Host[];
      const master = await startGfsProcess(net, mh!, "master", {
        "data-dir": `${dir}/master`,
        "chunk-bytes": CHUNK,
        "tick-ms": 200,
        "dead-after-ms": DEAD_AFTER_MS,
      });
      assert.equal(master.ready, `http://${mh!.address}:${PORT}`);
      const servers = await Promise.all(
        csHosts.map((h, i) =>
          startGfsProcess(net, h, "chunkserver", {
            "data-dir": `${dir}/cs${i + 1}`,
            master: master.ready,
            id: `cs${i + 1}`,
            "heartbeat-ms": 200,
          })
        ),
      );
      const client = new GfsClient(master.ready, {
        token: secrets.tokens.admin,
      });
      await until(
        "4 live chunkservers",
        async () => (await health(master.ready)).liveServers === 4,
        30_000,
      );

      const files = new Map<string, Uint8Array>();
      for (let i = 0; i < 4; i++) {
        const data = pattern(2 * CHUNK + i * 777, i + 1);
        await client.upload(`/p/f${i}`, data);
        files.set(`/p/f${i}`, data);
      }
      let stop = false;
      let reads = 0;
      let uploads = 0;
      let slowestUploadMs = 0;
      const wrong: string[] = [];
      const readErrors: string[] = [];
      const uploadErrors: string[] = [];
      const reader = (async () => {
        while (!stop) {
          for (const [path, data] of [...files]) {
            if (stop) break;
            try {
              const got = await client.readAll(path);
              if (
                got.length !== data.length ||
                !got.every((b, i) => b === data[i])
              ) wrong.push(path);
              reads++;
            } catch (e) {
              readErrors.push(`${path}: ${String(e)}`);
            }
          }
        }
      })();
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const data = pattern(CHUNK + 31 * i, 100 + i);
          const started = performance.now();
          try {
            await client.upload(`/p/w${i}`, data);
            slowestUploadMs = Math.max(
              slowestUploadMs,
              performance.now() - started,
            );
            files.set(`/p/w${i}`, data); // acknowledged
            uploads++;
          } catch (e) {
            uploadErrors.push(`w${i}: ${String(e)}`);
          }
        }
      })();
      try {
        await until("uploads under way", () => Promise.resolve(uploads >= 2));
        // Cut off a chunkserver that holds a replica of the first file.
        const loc = await client.locate("/p/f0");
        const victimUrl = loc.chunks[0]!.replicas[0]!;
        const victim = servers.findIndex((s) => s.ready === victimUrl);
        assert.ok(victim >= 0, victimUrl);
        await net.isolate(csHosts[victim]!, { root: true });
        const cutAt = performance.now();
        await until(
          "the partitioned server declared dead",
          async () => (await health(master.ready)).deadServers === 1,
          30_000,
        );
        const deadAfter = performance.now() - cutAt;
        // Its last heartbeat may precede the cut by one interval, and the
        // master checks every tick.
        assert.ok(
          deadAfter >= DEAD_AFTER_MS - 200 - 200,
          `declared dead ${deadAfter.toFixed(0)} ms after the cut`,
        );
        await until("re-replicated", async () => {
          const h = await health(master.ready);
          return h.underReplicated === 0 && h.lost === 0;
        }, 90_000);
        const repairedAt = performance.now() - cutAt;
        console.log(
          `  cs${victim + 1} cut off: declared dead after ${
            deadAfter.toFixed(0)
          } ms, goal restored after ${repairedAt.toFixed(0)} ms`,
        );
        const before = uploads;
        await until(
          "uploads while partitioned",
          () => Promise.resolve(uploads >= before + 2),
          200_000,
        );
        await net.heal();
        await until(
          "the healed server live again",
          async () => (await health(master.ready)).deadServers === 0,
          30_000,
        );
        const readsNow = reads;
        await until(
          "reads after healing",
          () => Promise.resolve(reads >= readsNow + 4),
          200_000,
        );
      } finally {
        stop = true;
        await Promise.all([reader, writer]);
      }
      console.log(
        `  ${uploads} uploads acknowledged (slowest ${
          slowestUploadMs.toFixed(0)
        } ms), ${uploadErrors.length} failed; ${reads} reads, ${readErrors.length} failed`,
      );
      assert.deepEqual(wrong, [], "reads returned wrong bytes");
      // Every acknowledged file reads back, and has exactly 3 replicas
      // once the cell has settled.
      for (const [path, data] of files) {
        const got = await client.readAll(path);
        assert.ok(
          got.length === data.length && got.every((b, i) => b === data[i]),
          `${path} reads back`,
        );
      }
      await until("every chunk at exactly 3 replicas", async () => {
        for (const path of files.keys()) {
          const l = await client.locate(path);
          if (l.chunks.some((c) => c.replicas.length !== 3)) return false;
        }
        return true;
      }, 60_000);
    } catch (e) {
      console.error(`faults:\n${net.describeFaults()}`);
      throw e;
    } finally {
      await net.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

async function masterView(url: string) {
  const res = await api(`${url}/v1/master`, {
    signal: AbortSignal.timeout(2000),
  });
  return await res.json() as {
    serving: boolean;
    term: number;
    leader: number;
    appliedIndex: number;
  };
}

/** Index of a master that says it serves, among `among`; -1 if none within `timeoutMs`. */
async function servingMaster(
  urls: string[],
  among: number[],
  timeoutMs: number,
): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    for (const i of among) {
      try {
        if ((await masterView(urls[i]!)).serving) return i;
      } catch { /* unreachable or busy */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return -1;
}

Deno.test({
  name:
    "gfs on 6 hosts: the master leader (3 masters on Raft) partitioned from the other masters and the chunkservers: the majority elects a new leader, uploads continue through it, nothing acknowledged is lost, and the old leader serves no stale metadata during the partition or after healing",
  ignore: skip || !(LEADER || LONG),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const chunk = 256 * 1024;
    const dir = await Deno.makeTempDir({ prefix: "strata-gfs-partition-" });
    await useCellSecrets(dir);
    const net = await HostNetwork.create({ hosts: 6 });
    try {
      const hosts = net.hosts as Host[];
      const mHosts = hosts.slice(0, 3);
      const csHosts = hosts.slice(3);
      const peers = mHosts.map((h, i) =>
        `${i + 1}=${h.address}:${PORT + 1}/${h.address}:${PORT}`
      ).join(",");
      const masters = await Promise.all(
        mHosts.map((h, i) =>
          startGfsProcess(net, h, "master", {
            "data-dir": `${dir}/master-${i + 1}`,
            "chunk-bytes": chunk,
            "tick-ms": 200,
            "dead-after-ms": DEAD_AFTER_MS,
            id: i + 1,
            peers,
            "raft-tick-ms": 50, // election timeout 500 ms
          })
        ),
      );
      const urls = masters.map((m) => m.ready);
      await Promise.all(
        csHosts.map((h, i) =>
          startGfsProcess(net, h, "chunkserver", {
            "data-dir": `${dir}/cs${i + 1}`,
            master: urls.join(","),
            id: `cs${i + 1}`,
            "heartbeat-ms": 200,
          })
        ),
      );
      const old = await servingMaster(urls, [0, 1, 2], 30_000);
      assert.ok(old >= 0, "no master leads");
      await until(
        "3 live chunkservers",
        async () => (await health(urls[old]!)).liveServers === 3,
        30_000,
      );
      const client = new GfsClient(urls, {
        token: secrets.tokens.admin,
        pushTimeoutMs: 5000,
        readTimeoutMs: 5000,
      });
      await client.upload("/p/doomed", pattern(1000, 7));

      const files = new Map<string, Uint8Array>();
      let stop = false;
      let cutAt = Infinity;
      let ackedAfterCut = 0;
      let slowestUploadMs = 0;
      const uploadErrors: string[] = [];
      // One writer from the start, another from the cut on: an upload in
      // flight at the cut can wait out a client timeout (60 s for complete)
      // at the old leader, holding up its writer.
      const writer = async (name: string) => {
        for (let i = 0; !stop; i++) {
          const data = pattern(10_000 + 97 * i, 200 + i);
          const started = performance.now();
          try {
            await client.upload(`/p/${name}${i}`, data);
            slowestUploadMs = Math.max(
              slowestUploadMs,
              performance.now() - started,
            );
            files.set(`/p/${name}${i}`, data); // acknowledged
            if (started > cutAt) ackedAfterCut++;
          } catch (e) {
            uploadErrors.push(`${name}${i}: ${String(e)}`);
          }
        }
      };
      const writers = [writer("u")];
      let electedAfter = 0;
      let steppedDownAfter = 0;
      const staleAnswers: string[] = [];
      let oldAsked = 0;
      try {
        await until(
          "uploads under way",
          () => Promise.resolve(files.size >= 3),
          30_000,
        );
        // Cut the leader off from the other masters and the chunkservers;
        // the test's clients still reach it (a client on the minority side).
        await net.isolate(mHosts[old]!);
        cutAt = performance.now();
        writers.push(writer("v"));
        const others = [0, 1, 2].filter((i) => i !== old);
        const next = await servingMaster(urls, others, 20_000);
        assert.ok(next >= 0, "the majority elected no new leader");
        electedAfter = performance.now() - cutAt;
        await until(
          "the old leader steps down",
          async () => !(await masterView(urls[old]!)).serving,
          20_000,
        );
        steppedDownAfter = performance.now() - cutAt;
        // The new leader deletes a file the old one still lists.
        const del = await api(`${urls[next]}/v1/files/p/doomed`, {
          method: "DELETE",
          signal: AbortSignal.timeout(10_000),
        });
        assert.equal(del.status, 200, await del.text());
        await until(
          "uploads acknowledged through the new leader",
          () => Promise.resolve(ackedAfterCut >= 3),
          60_000,
        ).catch((e) => {
          console.error(
            `  ${files.size} acknowledged, ${ackedAfterCut} after the cut; client at ${client.master}; last errors: ${
              uploadErrors.slice(-4).join(" | ")
            }`,
          );
          throw e;
        });
        // Asked directly, the cut-off old leader must not answer from its
        // stale namespace.
        const askOld = async () => {
          for (let k = 0; k < 5; k++) {
            oldAsked++;
            try {
              const r = await api(`${urls[old]}/v1/stat/p/doomed`, {
                redirect: "manual",
                signal: AbortSignal.timeout(5000),
              });
              const body = await r.text();
              if (r.status === 200) staleAnswers.push(body);
            } catch { /* no answer is not a stale answer */ }
          }
        };
        await askOld();
        await net.heal();
        await askOld();
        // After healing it follows again: it redirects to the leader, and
        // its own log holds the delete.
        await until(
          "the old leader caught up",
          async () => {
            // The redirect is followed by hand: fetch drops the
            // Authorization header on a redirect to another origin.
            const r = await api(`${urls[old]}/v1/stat/p/doomed`, {
              redirect: "manual",
              signal: AbortSignal.timeout(5000),
            });
            await r.body?.cancel();
            const to = r.status === 307 ? r.headers.get("location") : null;
            if (to === null) return r.status === 404;
            const r2 = await api(to, { signal: AbortSignal.timeout(5000) });
            await r2.body?.cancel();
            return r2.status === 404;
          },
          30_000,
        );
        await askOld();
        const before = files.size;
        await until(
          "uploads after healing",
          () => Promise.resolve(files.size >= before + 2),
          60_000,
        );
      } finally {
        stop = true;
        await Promise.all(writers);
      }
      console.log(
        `  master ${old + 1} cut off: a new leader after ${
          electedAfter.toFixed(0)
        } ms, the old one stepped down after ${
          steppedDownAfter.toFixed(0)
        } ms; ${files.size} uploads acknowledged (${ackedAfterCut} begun after the cut, slowest ${
          slowestUploadMs.toFixed(0)
        } ms), ${uploadErrors.length} failed; old leader asked ${oldAsked} times, ${staleAnswers.length} stale answers`,
      );
      assert.deepEqual(
        staleAnswers,
        [],
        "the old leader served stale metadata",
      );
      // Nothing acknowledged is lost, through any master.
      const listed = new Set((await client.ls("/p/")).map((f) => f.path));
      assert.ok(!listed.has("/p/doomed"), "the deleted file is listed");
      for (const [path, data] of files) {
        assert.ok(listed.has(path), `${path} listed`);
        assert.ok(sameBytes(await client.readAll(path), data), path);
      }
    } catch (e) {
      console.error(`faults:\n${net.describeFaults()}`);
      throw e;
    } finally {
      await net.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** One request to the cut-off old leader: when it was sent, and its answer. */
interface Probe {
  sentAt: number;
  /** 0: no answer. */
  status: number;
  code?: string;
}

Deno.test({
  name:
    "gfs on 3 hosts (short): 3 masters on Raft, the leader cut off from the others: a new leader serves and deletes a file, the old leader refuses every request sent once the new one served (no stale stat of the deleted file), and after healing it follows the new leader with the same log",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "strata-gfs-partition-" });
    await useCellSecrets(dir);
    const net = await HostNetwork.create({ hosts: 3 });
    try {
      const hosts = net.hosts as Host[];
      const peers = hosts.map((h, i) =>
        `${i + 1}=${h.address}:${PORT + 1}/${h.address}:${PORT}`
      ).join(",");
      // Masters only: the files are empty (created and completed with no
      // chunk), so the metadata changes need no chunkserver, and the test
      // starts three processes instead of four or more.
      const urls = (await Promise.all(
        hosts.map((h, i) =>
          startGfsProcess(net, h, "master", {
            "data-dir": `${dir}/master-${i + 1}`,
            id: i + 1,
            peers,
            "raft-tick-ms": 50, // election timeout 500 ms
          })
        ),
      )).map((m) => m.ready);
      const old = await servingMaster(urls, [0, 1, 2], 20_000);
      assert.ok(old >= 0, "no master leads");
      const others = [0, 1, 2].filter((i) => i !== old);
      const client = new GfsClient(urls, { token: secrets.tokens.admin });
      const empty = new Uint8Array(0);
      await client.upload("/p/doomed", empty);
      await client.upload("/p/kept", empty);

      // Ask the old leader about /p/doomed again and again, from before
      // the cut until just before the heal, one request at a time.
      const probes: Probe[] = [];
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const sentAt = performance.now();
          try {
            const r = await api(`${urls[old]}/v1/stat/p/doomed`, {
              redirect: "manual",
              signal: AbortSignal.timeout(3000),
            });
            const body = await r.json().catch(() => ({})) as {
              error?: { code?: string };
            };
            probes.push({ sentAt, status: r.status, code: body.error?.code });
          } catch {
            probes.push({ sentAt, status: 0 });
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      let cutBegun = 0;
      let newServedAt = Infinity;
      let deletedAt = Infinity;
      let next = -1;
      try {
        await until(
          "answers from the leader",
          () => Promise.resolve(probes.length >= 2),
          10_000,
          50,
        );
        cutBegun = performance.now();
        // The test's process still reaches the old leader: a client on the
        // minority side.
        await net.isolate(hosts[old]!);
        // The new leader serves once it answers a read itself (its lease
        // comes later: the clock guard measures peers' clocks over 2 s
        // first, and until then it confirms each read with a ReadIndex
        // round).
        await until(
          "a new leader serving",
          async () => {
            for (const i of others) {
              const r = await api(`${urls[i]}/v1/stat/p/kept`, {
                redirect: "manual",
                signal: AbortSignal.timeout(2000),
              });
              await r.body?.cancel();
              if (r.status === 200) {
                next = i;
                return true;
              }
            }
            return false;
          },
          15_000,
          50,
        );
        newServedAt = performance.now();
        // The new leader changes what the old one would still answer.
        // Through the client library, which follows a 307 with its token,
        // should leadership move once more (a loaded machine).
        await new GfsClient(urls[next]!, { token: secrets.tokens.admin })
          .remove("/p/doomed");
        deletedAt = performance.now();
        await new GfsClient(urls[next]!, { token: secrets.tokens.admin })
          .upload("/p/born", empty);
        const n = probes.length;
        await until(
          "the old leader asked since the delete",
          () => Promise.resolve(probes.length >= n + 3),
          15_000,
          50,
        );
      } finally {
        probing = false;
        await prober;
      }
      const askedAfter = probes.filter((p) => p.sentAt > newServedAt);
      const stale = askedAfter.filter((p) => p.status === 200);
      const refused = askedAfter.filter((p) =>
        p.status === 503 && p.code === "not_leader"
      );
      const lastOk = Math.max(
        ...probes.filter((p) => p.status === 200).map((p) => p.sentAt),
      );
      console.log(
        `  master ${old + 1} cut off: master ${next + 1} served ${
          (newServedAt - cutBegun).toFixed(0)
        } ms after the cut began; the old one's last 200 answered a request sent ${
          (lastOk - cutBegun).toFixed(0)
        } ms after it; asked ${askedAfter.length} times once the new leader served: ${stale.length} stale, ${refused.length} refused (not_leader), ${
          askedAfter.length - stale.length - refused.length
        } other`,
      );
      assert.deepEqual(
        stale.map((p) => `${(p.sentAt - cutBegun).toFixed(0)} ms`),
        [],
        "the cut-off old leader answered 200 to requests sent (after the cut began) once a new leader served",
      );
      assert.ok(
        askedAfter.some((p) => p.sentAt > deletedAt),
        "the old leader was not asked after the delete",
      );
      assert.ok(refused.length > 0, "the old leader never refused");
      await net.heal();
      const healedAt = performance.now();
      // Converged: every master names the new leader in the same term and
      // has applied the same log; the old one redirects there.
      // Converged: every master names the same leader in the same term and
      // has applied the same log; the old one redirects there (unless it
      // was elected again), where /p/doomed is gone.
      let lead = 0;
      await until(
        "the masters converged",
        async () => {
          const views = await Promise.all(urls.map((u) => masterView(u)));
          lead = views[0]!.leader;
          const l = views[lead - 1];
          return l !== undefined &&
            views.every((v) =>
              v.term === l.term && v.leader === lead &&
              v.appliedIndex === l.appliedIndex
            );
        },
        15_000,
        50,
      );
      const convergedAfter = performance.now() - healedAt;
      const r = await api(`${urls[old]}/v1/stat/p/doomed`, {
        redirect: "manual",
        signal: AbortSignal.timeout(5000),
      });
      await r.body?.cancel();
      if (lead - 1 === old) {
        assert.equal(r.status, 404, "the old leader, elected again");
      } else {
        assert.equal(r.status, 307, "the old leader does not redirect");
        const to = r.headers.get("location")!;
        assert.equal(new URL(to).origin, urls[lead - 1]);
        const r2 = await api(to, { signal: AbortSignal.timeout(5000) });
        await r2.body?.cancel();
        assert.equal(r2.status, 404, "the leader still has /p/doomed");
      }
      console.log(`  converged ${convergedAfter.toFixed(0)} ms after healing`);
      const listed = (await client.ls("/p/")).map((f) => f.path).sort();
      assert.deepEqual(listed, ["/p/born", "/p/kept"]);
    } catch (e) {
      console.error(`faults:\n${net.describeFaults()}`);
      throw e;
    } finally {
      await net.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
