import assert from "node:assert/strict";
import { join } from "node:path";
import { syncDir, writeFileAtomic } from "./atomic_file.ts";
import { isStorageError } from "./storage_error.ts";

Deno.test("writeFileAtomic replaces a file whole and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-atomic-" });
  try {
    const path = join(dir, "state.bin");
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
    const chunks = async function* () {
      yield new Uint8Array([4, 5]);
      yield new Uint8Array([6]);
    };
    assert.equal(await writeFileAtomic(path, chunks()), 3);
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([4, 5, 6]));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["state.bin"]);
    await syncDir(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed streaming write keeps the old file and removes its temporary file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-atomic-" });
  try {
    const path = join(dir, "state.bin");
    await writeFileAtomic(path, new Uint8Array([9]));
    const failing = async function* () {
      yield new Uint8Array([1]);
      throw new Error("producer failed");
    };
    await assert.rejects(
      writeFileAtomic(path, failing()),
      (e) => isStorageError(e, "io") && /producer failed/.test(e.message),
    );
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([9]));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["state.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
