import assert from "node:assert/strict";
import { StartProcess } from "./_start_process.ts";

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
    "Ctrl-C while the corpus is being indexed stops every process; the next start indexes again and comes up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "strata-start-" });
    let start: StartProcess | undefined = new StartProcess(dataDir, [
      "--index-limit",
      "3000",
    ]);
    try {
      await start.waitForLine(/indexed 1000\/3000 emails/, 120_000);
      const first = await start.interrupt();
      start = undefined;
      assert.equal(first.code, 0, "Ctrl-C during startup exits cleanly");
      assert.equal(await leftovers(dataDir), "", "no node outlives the start");

      start = new StartProcess(dataDir, ["--index-limit", "300"]);
      await start.waitForLine(/strata playground: http/, 120_000);
      assert.ok(
        start.lines.some((l) => /indexed 300\/300 emails/.test(l)),
        `an interrupted indexing runs again:\n${start.lines.join("\n")}`,
      );
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
