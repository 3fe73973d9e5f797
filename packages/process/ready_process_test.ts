import assert from "node:assert/strict";
import { join } from "node:path";
import { ProcessError, spawnUntilReady } from "./mod.ts";

async function script(body: string): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "child.ts");
  await Deno.writeTextFile(path, body);
  return { path, dir };
}

Deno.test("a child's ready line is found among log lines, and stop ends it", async () => {
  const { path, dir } = await script(`
    console.log("starting up");
    console.log("{not json");
    console.log(JSON.stringify({ event: "other" }));
    console.log(JSON.stringify({ event: "ready", port: 1234 }));
    setInterval(() => console.log("still here"), 10);
  `);
  try {
    const p = await spawnUntilReady(
      ["run", path],
      (l) => (l as { event?: string }).event === "ready" ? l : undefined,
      { stderr: "null" },
    );
    assert.deepEqual(p.ready, { event: "ready", port: 1234 });
    assert.equal(p.exited, false);
    await p.stop();
    assert.equal(p.exited, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a child that exits before its ready line is a typed error", async () => {
  const { path, dir } = await script(`console.log("bye"); Deno.exit(3);`);
  try {
    await assert.rejects(
      spawnUntilReady(["run", path], () => undefined, {
        stderr: "null",
        name: "quitter",
      }),
      (e) =>
        e instanceof ProcessError && e.code === "exited" &&
        e.message.includes("quitter"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a silent child times out and is killed", async () => {
  const { path, dir } = await script(`setInterval(() => {}, 1000);`);
  try {
    await assert.rejects(
      spawnUntilReady(["run", path], () => undefined, {
        stderr: "null",
        timeoutMs: 1500,
      }),
      (e) => e instanceof ProcessError && e.code === "timeout",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
