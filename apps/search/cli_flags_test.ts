import assert from "node:assert/strict";

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("--help prints usage and exits 0; bad flags print one line and exit 2; never a stack trace", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Independent processes: started together (each is mostly start-up).
    const scripts = ["./main.ts", "./shard_server.ts", "./coordinator.ts"];
    const [helps, bads, host, noAuth, open] = await Promise.all([
      Promise.all(scripts.map((s) => run(s, ["--help"]))),
      Promise.all(scripts.map((s) => run(s, ["--no-such-flag"]))),
      run("./coordinator.ts", [
        "--shards",
        "http://127.0.0.1:1",
        "--host",
        "not a host",
      ]),
      // Secure by default: the coordinator needs the cluster's auth dir,
      // and nothing serves without auth off loopback.
      run("./coordinator.ts", ["--shards", "http://127.0.0.1:1"]),
      run("./shard_server.ts", [
        "--dir",
        dir,
        "--shard",
        "0",
        "--replica",
        "0",
        "--host",
        "0.0.0.0",
        "--insecure-no-auth",
      ]),
    ]);
    scripts.forEach((script, i) => {
      const help = helps[i]!;
      const bad = bads[i]!;
      assert.equal(help.code, 0, `${script}: ${help.stderr}`);
      assert.match(help.stdout, /--help/);
      if (script !== "./main.ts") assert.match(help.stdout, /--host/);
      assert.equal(bad.code, 2, script);
      assert.match(bad.stderr, /no-such-flag/);
      for (const r of [help, bad]) {
        assert.ok(
          !/\n\s+at |Stack backtrace/.test(r.stdout + r.stderr),
          script,
        );
      }
    });
    assert.equal(host.code, 2);
    assert.match(host.stderr, /host/);
    assert.equal(noAuth.code, 2);
    assert.match(noAuth.stderr, /--auth-dir: required/);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /only allowed on a loopback address/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a shard server listens on the --host it is given", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./shard_server.ts", import.meta.url).pathname,
      "--dir",
      dir,
      "--shard",
      "0",
      "--replica",
      "0",
      "--host",
      "127.0.0.2",
      "--sync",
      "never",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const deadline = performance.now() + 30_000;
    while (!text.includes("\n") && performance.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    reader.releaseLock();
    const ready = JSON.parse(text.split("\n")[0]!);
    // Its auth dir defaults to its data dir.
    const token = (await Deno.readTextFile(`${dir}/read.token`)).trim();
    const res = await fetch(`http://127.0.0.2:${ready.port}/health`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    await assert.rejects(fetch(`http://127.0.0.1:${ready.port}/health`));
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
