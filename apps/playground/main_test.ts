import assert from "node:assert/strict";

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
