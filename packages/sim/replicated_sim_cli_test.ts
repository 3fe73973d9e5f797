import assert from "node:assert/strict";
import { main } from "./replicated_sim_cli.ts";

async function quietly(args: string[]): Promise<{ code: number; out: string }> {
  const log = console.log;
  const error = console.error;
  let out = "";
  console.log = (...a: unknown[]) => out += a.join(" ") + "\n";
  console.error = (...a: unknown[]) => out += a.join(" ") + "\n";
  try {
    return { code: await main(args), out };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("sim:replicated runs a seed, and a planted bug's seed fails with its replay line", async () => {
  assert.equal((await quietly(["--seed", "21"])).code, 0);
  const bad = await quietly([
    "--seed",
    "21",
    "--bug",
    "read_index_skips_quorum",
  ]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.out,
    /replay: deno task sim:replicated --seed 21 --bug read_index_skips_quorum/,
  );
});

Deno.test("sim:replicated rejects bad arguments with exit code 2", async () => {
  assert.equal((await quietly(["--seeds", "0"])).code, 2);
  assert.equal((await quietly(["--seed"])).code, 2);
  assert.equal((await quietly(["--seed", "1", "--bug", "nope"])).code, 2);
  assert.equal((await quietly(["--help"])).code, 0);
});
