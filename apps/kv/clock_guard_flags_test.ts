// The kv:node clock guard flags: parsed into the guard's options, refused
// when they contradict each other or are out of range, and wired to the
// running node (with --no-clock-guard its status has no clock verdict).
import assert from "node:assert/strict";
import { z } from "zod";
import { CLOCK_GUARD_FLAGS, clockGuardFromFlags } from "./clock_guard_flags.ts";
import { startLocalCluster } from "./cluster_launcher.ts";

const parse = (flags: Record<string, unknown>) =>
  clockGuardFromFlags(z.object(CLOCK_GUARD_FLAGS).parse(flags));

Deno.test("clock guard flags become the guard's options; unset ones keep its defaults", () => {
  assert.deepEqual(parse({}), {});
  assert.deepEqual(
    parse({
      "clock-max-drift": "0.2",
      "clock-max-jump-ms": "250",
      "clock-max-offset-ms": "5000",
      "clock-window-ms": "4000",
    }),
    { maxRateDrift: 0.2, maxJumpMs: 250, maxOffsetMs: 5000, windowMs: 4000 },
  );
  assert.equal(parse({ "no-clock-guard": true }), false);
  assert.throws(
    () => parse({ "no-clock-guard": true, "clock-max-drift": "0.1" }),
    /--no-clock-guard turns the guard off/,
  );
  assert.throws(() => parse({ "clock-max-drift": "1.5" }));
  assert.throws(() => parse({ "clock-window-ms": "10" }));
});

Deno.test({
  name:
    "kv:node refuses contradicting clock flags with exit 2, and --no-clock-guard reaches the node",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const main = new URL("./node_main.ts", import.meta.url).pathname;
    const dir = await Deno.makeTempDir({ prefix: "strata-kv-clockflags-" });
    try {
      const bad = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          main,
          "--id",
          "1",
          "--peers",
          "1=127.0.0.1:1",
          "--data-dir",
          `${dir}/bad`,
          "--no-clock-guard",
          "--clock-max-drift",
          "0.1",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(bad.code, 2);
      assert.match(
        new TextDecoder().decode(bad.stderr),
        /--no-clock-guard turns the guard off/,
      );

      for (const off of [false, true]) {
        const c = await startLocalCluster({
          size: 1,
          dataRoot: `${dir}/${off}`,
          extraArgs: off ? ["--no-clock-guard"] : ["--clock-max-drift", "0.2"],
        });
        try {
          const n = c.nodes.get(1)!;
          const status = await (await fetch(`${n.url}/v1/status`, {
            headers: { authorization: `Bearer ${c.secrets!.tokens.read}` },
          })).json() as { lease: { clock?: unknown } };
          assert.equal(status.lease.clock === undefined, off);
        } finally {
          await c.stop();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
