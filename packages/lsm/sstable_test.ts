import assert from "node:assert/strict";
import { BlockCache } from "./block_cache.ts";
import { bloomMayContain, buildBloom } from "./bloom.ts";
import { LocalFileStore } from "./local_file_store.ts";
import { isLsmError } from "./lsm_error.ts";
import { SSTable } from "./sstable.ts";
import { SSTableBuilder } from "./sstable_builder.ts";

const enc = new TextEncoder();
const key = (i: number) => enc.encode(`key-${String(i).padStart(6, "0")}`);

async function writeTable(files: LocalFileStore, n: number): Promise<void> {
  const b = new SSTableBuilder({ blockBytes: 256 });
  for (let i = 0; i < n; i++) {
    b.add(key(i), i % 7 === 0 ? null : enc.encode(`v${i}`));
  }
  const f = await files.create("0000000001.sst");
  await f.append(b.finish());
  await f.sync();
  await f.close();
}

Deno.test("an SSTable returns every entry, tombstones as null, and iterates from any key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await LocalFileStore.open(dir);
    await writeTable(files, 1000);
    const cache = new BlockCache(1 << 20);
    const t = await SSTable.open(
      1,
      "0000000001.sst",
      await files.open("0000000001.sst"),
      cache,
    );
    assert.equal(t.entries, 1000);
    assert.ok(t.blockCount > 10);
    await t.verify();
    for (let i = 0; i < 1000; i++) {
      const v = await t.get(key(i));
      assert.deepEqual(v, i % 7 === 0 ? null : enc.encode(`v${i}`));
    }
    assert.equal(await t.get(enc.encode("key-0000005")), undefined);
    assert.equal(await t.get(enc.encode("zzz")), undefined);
    const from = [];
    for await (const e of t.iterate(enc.encode("key-000990x"))) {
      from.push(e.key);
    }
    assert.deepEqual(
      from,
      [991, 992, 993, 994, 995, 996, 997, 998, 999].map(key),
    );
    assert.ok(cache.hits > 0);
    t.retire();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flipped byte in an SSTable data block is reported as corrupt, naming file and block", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await LocalFileStore.open(dir);
    await writeTable(files, 1000);
    const path = `${dir}/0000000001.sst`;
    const bytes = await Deno.readFile(path);
    bytes[16 + 300]! ^= 0x10; // inside the second data block
    await Deno.writeFile(path, bytes);
    const t = await SSTable.open(
      1,
      "0000000001.sst",
      await files.open("0000000001.sst"),
      new BlockCache(0),
    );
    let corrupt = 0;
    for (let i = 0; i < 1000; i++) {
      try {
        await t.get(key(i));
      } catch (e) {
        assert.ok(isLsmError(e, "corrupt"), String(e));
        assert.match(
          e.message,
          /0000000001\.sst data block 1 at offset \d+: block checksum mismatch/,
        );
        corrupt++;
      }
    }
    assert.ok(corrupt > 0 && corrupt < 100, `${corrupt} keys in the bad block`);
    await assert.rejects(t.verify(), (e) => isLsmError(e, "corrupt"));
    t.retire();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged footer or index is refused when the table is opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await LocalFileStore.open(dir);
    await writeTable(files, 100);
    const path = `${dir}/0000000001.sst`;
    const good = await Deno.readFile(path);
    for (const at of [good.length - 10, good.length - 60, 3]) {
      const bad = good.slice();
      bad[at]! ^= 1;
      await Deno.writeFile(path, bad);
      await assert.rejects(
        async () =>
          SSTable.open(
            1,
            "0000000001.sst",
            await files.open("0000000001.sst"),
            new BlockCache(0),
          ),
        (e) => isLsmError(e, "corrupt") && /0000000001\.sst/.test(e.message),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Bloom filter never misses an added key and rejects most others", () => {
  const keys = Array.from({ length: 10000 }, (_, i) => key(i));
  const f = buildBloom(keys, 10);
  for (const k of keys) assert.ok(bloomMayContain(f, k));
  let fp = 0;
  for (let i = 10000; i < 20000; i++) if (bloomMayContain(f, key(i))) fp++;
  assert.ok(fp < 300, `false positives ${fp}/10000`);
});

Deno.test("the block cache stays within its byte budget, evicting least recently used", () => {
  const c = new BlockCache(10_000);
  const block = (n: number) => ({
    data: new Uint8Array(1),
    offs: new Int32Array(4),
    count: 1,
    bytes: n,
  });
  for (let i = 0; i < 100; i++) c.set(1, i, block(1000));
  assert.ok(c.bytes <= 10_000);
  assert.equal(c.get(1, 0), undefined);
  assert.ok(c.get(1, 99) !== undefined);
  c.evictTable(1);
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
});
