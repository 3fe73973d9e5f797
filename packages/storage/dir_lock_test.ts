import assert from "node:assert/strict";
import { DirLock } from "./dir_lock.ts";
import { isStorageError } from "./storage_error.ts";

const CHILD = new URL("./_lock_child.ts", import.meta.url).pathname;

Deno.test("a second process opening a locked directory gets the lock error naming the holder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lock-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("locked")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.ok(text.includes("locked"), "child took the lock");
    await assert.rejects(
      DirLock.acquire(dir),
      (e) =>
        isStorageError(e, "locked") &&
        e.message.includes(`process ${child.pid}`),
    );
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    // The kernel dropped the dead holder's lock: no stale lock to clean up.
    const lock = await DirLock.acquire(dir);
    assert.ok(lock.held);
    lock.release();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a released lock can be taken again in the same process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lock-" });
  try {
    const a = await DirLock.acquire(dir);
    await assert.rejects(
      DirLock.acquire(dir),
      (e) => isStorageError(e, "locked"),
    );
    a.release();
    a.release();
    const b = await DirLock.acquire(dir);
    b.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
