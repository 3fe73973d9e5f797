// A replica whose hard state or members file fails its checksum refuses to
// start with an error `isCorruptReplicaData` recognizes (the processes
// then exit 65 through `corruptDataExitCode`), and the file is left as it
// was. The log's own rule (torn tail cut, corruption refused) is tested in
// packages/storage; a real kv process refusing a damaged log, in
// apps/kv/corrupt_log_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "@strata/process";
import {
  type CommandStateMachine,
  corruptDataExitCode,
  isCorruptReplicaData,
  REPLICA_CORRUPT_EXIT_CODE,
  ReplicatedNode,
} from "./mod.ts";
import { writeMemberAddresses } from "./member_addresses_file.ts";
import { DiskReplicaStorage } from "./disk_replica_storage.ts";

class Noop implements CommandStateMachine<void> {
  appliedIndex = 0;
  apply(index: number): void {
    this.appliedIndex = index;
  }
  skip(index: number): void {
    this.appliedIndex = index;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(_data: Uint8Array, index: number): void {
    this.appliedIndex = index;
  }
}

for (const file of ["hardstate", "members"] as const) {
  Deno.test(`a replica whose ${file} file has a flipped bit refuses to start, naming it corrupt data (exit code 65)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "strata-corrupt-" });
    try {
      const port = freePort();
      const start = () =>
        ReplicatedNode.start({
          id: 1,
          members: new Map([[1, { peer: `127.0.0.1:${port}` }]]),
          dataDir: dir,
          listen: { hostname: "127.0.0.1", port },
          tickMs: 20,
        }, new Noop());
      const node = await start();
      await node.stop();
      if (file === "members") {
        await writeMemberAddresses(dir, { 2: { peer: "127.0.0.1:1" } });
      }
      const path = join(dir, file);
      const bytes = await Deno.readFile(path);
      bytes[bytes.length - 6]! ^= 0x10;
      await Deno.writeFile(path, bytes);
      const err = await start().then(
        async (n) => {
          await n.stop();
          assert.fail("started on a damaged file");
        },
        (e) => e,
      );
      assert.ok(isCorruptReplicaData(err), String(err));
      const logged: string[] = [];
      const error = console.error;
      console.error = (l: string) => logged.push(l);
      try {
        assert.equal(
          corruptDataExitCode(err, "replica 1", dir),
          REPLICA_CORRUPT_EXIT_CODE,
        );
      } finally {
        console.error = error;
      }
      const line = JSON.parse(logged[0]!);
      assert.equal(line.event, "fatal");
      assert.equal(line.exitCode, 65);
      assert.match(line.action, /refusing to start/);
      assert.deepEqual(await Deno.readFile(path), bytes);
      // Any other failure is the caller's to report.
      assert.equal(corruptDataExitCode(new Error("x"), "r", dir), undefined);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("a replica whose newest snapshot is damaged, with the log compacted past it, refuses to start as corrupt data (exit code 65)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-corrupt-snap-" });
  try {
    const storage = await DiskReplicaStorage.open({
      dataDir: dir,
      segmentBytes: 1 << 20,
    });
    await storage.installSnapshot({
      meta: { index: 10, term: 1, confState: { voters: [1], learners: [] } },
      data: new TextEncoder().encode("state at 10"),
    });
    await storage.append([
      { term: 1, index: 11, type: "normal", data: new Uint8Array([1]) },
    ]);
    assert.equal((await storage.recover()).snapshot?.meta.index, 10);
    await storage.close();
    const snaps = join(dir, "snapshots");
    const [name] = [...Deno.readDirSync(snaps)].map((e) => e.name)
      .filter((n) => n.endsWith(".snap"));
    const path = join(snaps, name!);
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3]! ^= 0x10;
    await Deno.writeFile(path, bytes);
    const again = await DiskReplicaStorage.open({
      dataDir: dir,
      segmentBytes: 1 << 20,
    });
    try {
      const err = await again.recover().then(
        () => assert.fail("recovered without the entries before 11"),
        (e) => e,
      );
      assert.ok(isCorruptReplicaData(err), String(err));
      assert.match(err.message, /damaged snapshot skipped/);
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
