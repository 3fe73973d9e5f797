import assert from "node:assert/strict";
import { join } from "node:path";

const DENO = Deno.execPath();
const DIR = import.meta.dirname!;

/** Runs an entry point with `args`; none of these cases may start a server. */
async function run(
  file: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(DENO, {
    args: ["run", "-A", join(DIR, file), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

const ENTRIES = ["master_main.ts", "chunkserver_main.ts", "main.ts", "cli.ts"];

for (const file of ENTRIES) {
  Deno.test(`${file}: --help prints the usage and exits 0; bad flags exit 2 with the usage, never a stack`, async () => {
    const bad: string[][] = [["--no-such-flag", "1"]];
    if (file === "master_main.ts" || file === "chunkserver_main.ts") {
      bad.push(["--data-dir", "x", "--port", "not-a-number"], ["stray"]);
    }
    if (file === "main.ts") bad.push(["--masters", "0"], ["stray"]);
    if (file === "cli.ts") bad.push(["put", "a", "/b", "--replication", "0"]);
    // Independent processes, mostly start-up: run them together.
    const [helps, bads] = await Promise.all([
      Promise.all(["--help", "-h"].map((h) => run(file, [h]))),
      Promise.all(bad.map((args) => run(file, args))),
    ]);
    for (const [i, r] of helps.entries()) {
      const help = i === 0 ? "--help" : "-h";
      assert.equal(r.code, 0, `${file} ${help}: ${r.stderr}`);
      assert.match(r.stdout, /usage/, `${file} ${help}`);
      assert.doesNotMatch(r.stdout + r.stderr, /\bat .*:\d+:\d+/);
    }
    for (const [i, r] of bads.entries()) {
      const args = bad[i]!;
      assert.equal(r.code, 2, `${file} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /usage/, `${file} ${args.join(" ")}`);
      assert.doesNotMatch(
        r.stderr,
        /\bat .*:\d+:\d+/,
        `${file} ${args.join(" ")} printed a stack: ${r.stderr}`,
      );
    }
  });
}
