import assert from "node:assert/strict";
import { v8FlagsFor, withV8Flags } from "./extra_v8_flags.ts";

Deno.test("v8FlagsFor picks the entries whose prefix starts the name", () => {
  const spec = "tables server=--always-sparkplug, --max-lazy;master=--x;" +
    "chunkserver=--y;bad;=--z";
  assert.deepEqual(v8FlagsFor(spec, "tables server 1"), [
    "--always-sparkplug",
    "--max-lazy",
  ]);
  assert.deepEqual(v8FlagsFor(spec, "master"), ["--x"]);
  assert.deepEqual(v8FlagsFor(spec, "tables master 0"), []);
  assert.deepEqual(v8FlagsFor(spec, "chunkserver"), ["--y"]);
});

Deno.test("withV8Flags merges into the child's own --v8-flags", () => {
  assert.deepEqual(
    withV8Flags(["run", "-A", "--v8-flags=--a", "s.ts", "--v8-flags=no"], [
      "--b",
    ]),
    ["run", "-A", "--v8-flags=--a,--b", "s.ts", "--v8-flags=no"],
  );
  assert.deepEqual(
    withV8Flags(["run", "-A", "s.ts", "--v8-flags=no"], ["--b"]),
    [
      "run",
      "--v8-flags=--b",
      "-A",
      "s.ts",
      "--v8-flags=no",
    ],
  );
  assert.deepEqual(withV8Flags(["run", "-A", "s.ts"], []), [
    "run",
    "-A",
    "s.ts",
  ]);
  assert.deepEqual(withV8Flags(["test", "x.ts"], ["--b"]), ["test", "x.ts"]);
});
