import assert from "node:assert/strict";
import { assertClustersOverTls, StartProcess } from "./_start_process.ts";

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

// The default suite checks a TLS start in dashboard_browser_test.ts (its
// second start, on the data of a plain one); this whole stack runs there
// only when that test cannot (no Chromium), and under STRATA_LONG.
const hasChromium = (() => {
  try {
    return Deno.statSync("/usr/bin/chromium").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "with --tls every cluster and the dashboard speak HTTPS, with tokens; Ctrl-C stops every process (under STRATA_LONG first while the corpus is being indexed: the next start indexes again)",
  ignore: !LONG && hasChromium,
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
