import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CELL_FILE,
  DEFAULT_CHUNK_BYTES,
  settleChunkBytes,
} from "./cell_config_file.ts";
import { isGfsError } from "./gfs_error.ts";
import { loadOrCreateSecrets } from "@strata/edge";
import { fetchAs } from "../_test_support.ts";

Deno.test("the first start records the chunk size; later starts keep it and refuse another", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await settleChunkBytes(dir, 1 << 20), 1 << 20);
    assert.equal(await settleChunkBytes(dir, undefined), 1 << 20);
    assert.equal(await settleChunkBytes(dir, 1 << 20), 1 << 20);
    await assert.rejects(
      settleChunkBytes(dir, 64 << 20),
      (e) =>
        isGfsError(e, "conflict") &&
        /1MiB chunks; --chunk-bytes 64MiB/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with no flag a new cell gets 64 MiB chunks; a damaged cell file is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await settleChunkBytes(dir, undefined), DEFAULT_CHUNK_BYTES);
    const path = join(dir, CELL_FILE);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 6]! ^= 0x20;
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      settleChunkBytes(dir, undefined),
      (e) => isGfsError(e, "bad_request") && e.message.includes(path),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a master restarted on its data with another --chunk-bytes is refused; without the flag it keeps the cell's size", async () => {
  const { startMaster } = await import("../master/master_server.ts");
  const dir = await Deno.makeTempDir();
  try {
    const first = await startMaster({ dataDir: dir, chunkBytes: 1 << 20 });
    assert.equal(first.core.options.chunkBytes, 1 << 20);
    await first.close();
    await assert.rejects(
      startMaster({ dataDir: dir, chunkBytes: 64 << 20 }),
      (e) => isGfsError(e, "conflict") && e.message.includes(dir),
    );
    const again = await startMaster({ dataDir: dir });
    try {
      assert.equal(again.core.options.chunkBytes, 1 << 20);
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a chunkserver restarted on its data with another --chunk-bytes is refused; without the flag it keeps its size",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { startChunkserver } = await import("../chunkserver/chunkserver.ts");
    const dir = await Deno.makeTempDir();
    // No master listens there: heartbeats fail quietly.
    const base = {
      dataDir: dir,
      master: "http://127.0.0.1:9",
      scrubPauseMs: 0,
    };
    try {
      const first = await startChunkserver({ ...base, chunkBytes: 1 << 20 });
      assert.equal(first.store.chunkBytes, 1 << 20);
      await first.close();
      await assert.rejects(
        startChunkserver({ ...base, chunkBytes: 64 << 20 }),
        (e) => isGfsError(e, "conflict") && e.message.includes(dir),
      );
      const again = await startChunkserver(base);
      try {
        assert.equal(again.store.chunkBytes, 1 << 20);
      } finally {
        await again.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a master refuses heartbeats from a chunkserver with another chunk size, so it never places chunks there", async () => {
  const { startMaster } = await import("../master/master_server.ts");
  const dir = await Deno.makeTempDir();
  const master = await startMaster({ dataDir: dir, chunkBytes: 1 << 20 });
  // Its auth dir is its data dir; heartbeats carry the peer secret.
  const api = fetchAs((await loadOrCreateSecrets(dir)).peerSecret);
  try {
    const beat = (chunkBytes: number) =>
      api(`${master.url}/v1/heartbeat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          id: `cs-${chunkBytes}`,
          url: "http://127.0.0.1:9",
          rack: "",
          capacityBytes: 2 ** 30,
          usedBytes: 0,
          load: 0,
          chunks: [],
          extend: [],
          chunkBytes,
        }),
      });
    const refused = await beat(64 << 20);
    assert.equal(refused.status, 409);
    const body = await refused.json();
    assert.equal(body.error.code, "conflict");
    assert.match(body.error.message, /cs-67108864 keeps 67108864-byte chunks/);
    const ok = await beat(1 << 20);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const list = await (await api(`${master.url}/v1/chunkservers`)).json();
    assert.deepEqual(
      list.chunkservers.map((s: { id: string }) => s.id),
      [`cs-${1 << 20}`],
    );
  } finally {
    await master.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without a flag a new directory takes the cell's size from the caller's source; a recorded one does not ask", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let asked = 0;
    const fromCell = () => {
      asked++;
      return Promise.resolve(2 << 20);
    };
    assert.equal(await settleChunkBytes(dir, undefined, fromCell), 2 << 20);
    assert.equal(await settleChunkBytes(dir, undefined, fromCell), 2 << 20);
    assert.equal(asked, 1, "the recorded size is used, not asked again");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a new chunkserver started without --chunk-bytes joins its master's cell at the cell's chunk size",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { startMaster } = await import("../master/master_server.ts");
    const { startChunkserver } = await import("../chunkserver/chunkserver.ts");
    const mdir = await Deno.makeTempDir();
    const cdir = await Deno.makeTempDir();
    const master = await startMaster({ dataDir: mdir, chunkBytes: 1 << 20 });
    const api = fetchAs((await loadOrCreateSecrets(mdir)).peerSecret);
    try {
      const cs = await startChunkserver({
        dataDir: cdir,
        authDir: mdir,
        master: master.url,
        scrubPauseMs: 0,
        heartbeatMs: 100,
      });
      try {
        assert.equal(cs.store.chunkBytes, 1 << 20);
        // And the master accepts its heartbeats (same size).
        const deadline = Date.now() + 10_000;
        let ids: string[] = [];
        while (Date.now() < deadline) {
          const list = await (await api(`${master.url}/v1/chunkservers`))
            .json();
          ids = list.chunkservers.map((s: { id: string }) => s.id);
          if (ids.includes(cs.id)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(ids.includes(cs.id), `registered: ${ids}`);
      } finally {
        await cs.close();
      }
    } finally {
      await master.close();
      await Deno.remove(mdir, { recursive: true });
      await Deno.remove(cdir, { recursive: true });
    }
  },
});
