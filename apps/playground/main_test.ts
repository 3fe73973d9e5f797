import assert from "node:assert/strict";
import { tlsClient } from "@strata/edge";
import { StartProcess } from "./_start_process.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

async function runMain(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("deno task start with a taken port says which and exits before starting anything", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (l.addr as Deno.NetAddr).port;
  const dataDir = await Deno.makeTempDir({ prefix: "strata-start-" });
  try {
    const r = await runMain([
      "--data-dir",
      dataDir,
      "--port",
      String(taken),
      "--raft-http-base",
      "0",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`port ${taken} \\(the dashboard\\) is taken.*--port`),
    );
    assert.doesNotMatch(r.stdout, /\[1\/3\]/, "nothing was started");
    assert.deepEqual([...Deno.readDirSync(dataDir)], [], "no data written");
  } finally {
    l.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start with a bad flag prints the usage and exits 2; --help exits 0", async () => {
  const bad = await runMain(["--port", "http"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^--port: /);
  assert.match(bad.stderr, /usage: deno task start/);
  const help = await runMain(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--raft-http-base/);
});

async function leftovers(dataDir: string): Promise<string> {
  const out = await new Deno.Command("pgrep", {
    args: ["-af", dataDir],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name:
    "with --tls every cluster and the dashboard speak HTTPS, with tokens; Ctrl-C stops every process (under STRATA_LONG first while the corpus is being indexed: the next start indexes again)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "strata-start-" });
    // Both starts run over TLS (--tls: a self-signed certificate made on
    // the first and reused by the second), so this one stack also checks
    // that the playground drives TLS clusters with their tokens.
    // The interrupted first start costs a whole stack's start-up (about
    // 15 s idle), so the default suite starts once.
    let start: StartProcess | undefined;
    try {
      if (LONG) {
        start = new StartProcess(dataDir, ["--tls", "--index-limit", "3000"]);
        await start.waitForLine(/indexed 1000\/3000 emails/, 120_000);
        const first = await start.interrupt();
        start = undefined;
        assert.equal(first.code, 0, "Ctrl-C during startup exits cleanly");
        assert.equal(await leftovers(dataDir), "", "no node outlives it");
      }
      start = new StartProcess(dataDir, ["--tls", "--index-limit", "300"]);
      const [, url] = await start.waitForLine(
        /strata playground: (https:\/\/\S+)\/ /,
        120_000,
      );
      assert.ok(
        start.lines.some((l) => /indexed 300\/300 emails/.test(l)),
        `the corpus is indexed (again, after an interrupted indexing):\n${
          start.lines.join("\n")
        }`,
      );
      await assertClustersOverTls(url!, `${dataDir}/tls/cert.pem`);
      const second = await start.interrupt();
      start = undefined;
      assert.equal(second.code, 0);
      assert.equal(await leftovers(dataDir), "");
    } finally {
      if (start) await start.interrupt();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * The dashboard at `url` (https) answers a client trusting `caFile`, and
 * its snapshot shows every cluster reached over https with its token: a
 * raft leader, the serving GFS master and its chunkservers, the search
 * shards, the tables cell's tablet map. A plain-HTTP request is refused.
 */
async function assertClustersOverTls(url: string, caFile: string) {
  const client = await tlsClient(caFile);
  try {
    const deadline = Date.now() + 60_000;
    let last = "";
    for (;;) {
      const res = await fetch(`${url}/api/snapshot`, {
        client,
        signal: AbortSignal.timeout(10_000),
      });
      const s = await res.json();
      const ok = s.raft.leader !== null && s.gfs.reachable &&
        s.gfs.chunkservers.length === 3 &&
        s.gfs.chunkservers.every((c: { url: string }) =>
          c.url.startsWith("https://")
        ) &&
        s.search.shards.length === 3 && s.tables.reachable &&
        s.tables.tablets.length >= 2 &&
        s.tables.servers.length === 3 &&
        s.tables.servers.every((x: { url: string; serving: boolean | null }) =>
          x.url.startsWith("https://") && x.serving === true
        );
      if (ok) break;
      last = JSON.stringify({
        leader: s.raft.leader,
        gfs: s.gfs.error,
        shards: s.search.shards.length,
        tables: s.tables.error,
      });
      if (Date.now() > deadline) {
        assert.fail(`the clusters were not all reached over TLS: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await assert.rejects(
      fetch(url.replace("https:", "http:") + "/api/snapshot", {
        signal: AbortSignal.timeout(5000),
      }).then((r) => r.body?.cancel()),
      "the dashboard does not answer plain HTTP",
    );
  } finally {
    client.close();
  }
}
