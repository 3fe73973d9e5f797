import assert from "node:assert/strict";
import { RestartBudget, restartOnExit } from "./restart_on_exit.ts";

function exits(code: number): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: ["-c", `exit ${code}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("restartOnExit: a child that exits unasked is reported and restarted until the budget is spent, then left down", async () => {
  const log: string[] = [];
  const policy = {
    delayMs: 10,
    maxRestarts: 2,
    log: (l: string) => log.push(l),
  };
  const budget = new RestartBudget(policy);
  const watched: Promise<void>[] = [];
  let starts = 0;
  const watch = (child: Deno.ChildProcess) =>
    watched.push(restartOnExit(
      child,
      {
        name: "node 1",
        asked: () => false,
        restart: () => {
          starts++;
          watch(exits(74));
          return Promise.resolve();
        },
      },
      budget,
      policy,
    ));
  watch(exits(74));
  // Each restart adds the next child's watch before its own settles.
  for (let i = 0; i < watched.length; i++) await watched[i];
  assert.equal(starts, 2);
  assert.deepEqual(log, [
    "node 1 exited with code 74; restarting it in 10 ms",
    "node 1 restarted",
    "node 1 exited with code 74; restarting it in 10 ms",
    "node 1 restarted",
    "node 1 exited with code 74; not restarted: 2 restarts within 60 s, left down",
  ]);
});

Deno.test("restartOnExit: an exit the launcher asked for is not restarted; a failed restart is retried", async () => {
  const log: string[] = [];
  const policy = { delayMs: 10, log: (l: string) => log.push(l) };
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  let asked = false;
  const done = restartOnExit(
    child,
    {
      name: "a",
      asked: () => asked,
      restart: () => Promise.reject(new Error("unreachable")),
    },
    new RestartBudget(policy),
    policy,
  );
  asked = true;
  child.kill("SIGKILL");
  await done;
  assert.deepEqual(log, []);

  let attempts = 0;
  await restartOnExit(
    exits(1),
    {
      name: "b",
      asked: () => false,
      restart: () =>
        ++attempts === 1
          ? Promise.reject(new Error("port taken"))
          : Promise.resolve(),
    },
    new RestartBudget(policy),
    policy,
  );
  assert.deepEqual(log, [
    "b exited with code 1; restarting it in 10 ms",
    "b did not restart (port taken); restarting it in 10 ms",
    "b restarted",
  ]);
});

Deno.test("restartOnExit: an exit code in noRestartCodes is reported and left down at once", async () => {
  const log: string[] = [];
  let starts = 0;
  await restartOnExit(
    exits(65),
    {
      name: "kv node 2",
      asked: () => false,
      restart: () => {
        starts++;
        return Promise.resolve();
      },
    },
    new RestartBudget(),
    { delayMs: 10, noRestartCodes: [65], log: (l) => log.push(l) },
  );
  assert.equal(starts, 0);
  assert.deepEqual(log, [
    "kv node 2 exited with code 65; not restarted: that code says a restart cannot help (see its log)",
  ]);
});

Deno.test("RestartBudget: counts restarts within a sliding window", () => {
  let now = 0;
  const b = new RestartBudget({ maxRestarts: 2, windowMs: 1000 }, () => now);
  assert.ok(b.take());
  now = 500;
  assert.ok(b.take());
  assert.ok(!b.take());
  now = 1001; // the first one left the window
  assert.ok(b.take());
  assert.ok(!b.take());
});
