import assert from "node:assert/strict";
import { main } from "./sim_cli.ts";

function quietly<T>(fn: () => T): T {
  const log = console.log;
  const error = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    return fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("the sim CLI runs a range of seeds and replays one", () => {
  assert.equal(quietly(() => main(["--seeds", "3", "--from", "10"])), 0);
  assert.equal(quietly(() => main(["--seed", "11"])), 0);
});

Deno.test("the sim CLI rejects bad arguments with exit code 2", () => {
  assert.equal(quietly(() => main(["--seeds", "-4"])), 2);
  assert.equal(quietly(() => main(["--seed"])), 2);
  assert.equal(quietly(() => main(["--help"])), 0);
});
