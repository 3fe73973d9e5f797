/**
 * Durable feeds and backup/restore on a real tables cell (processes):
 * kill -9 of a consumer process and of a tablet server while producers
 * append; a backup as of T while writers overwrite and delete, restored
 * and compared cell for cell. Local storage, one kv node and a small load
 * by default; STRATA_LONG=1 runs it on GFS with kv ×3 and more messages.
 */
import assert from "node:assert/strict";
import { startTablesStack } from "./stack_launcher.ts";
import { type Row, TablesClient } from "./client/tables_client.ts";
import { FeedClient, type FeedMessage } from "./feeds/feed_client.ts";
import { backupTable, readBackup, restoreTable } from "./backup/backup.ts";
import {
  type BackupStore,
  GfsBackupStore,
  LocalBackupStore,
} from "./backup/backup_store.ts";
import { GfsClient } from "@strata/gfs";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const DENO = new URL("../../node_modules/deno/deno", import.meta.url).pathname;
const CONSUMER = new URL("./feeds/_consumer_child.ts", import.meta.url)
  .pathname;
const PER_PRODUCER = LONG ? 150 : 25;
const PRODUCERS = 4;
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) for `cond`. */
async function until(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
) {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

interface Delivery {
  p: number;
  o: number;
  v: string;
  life: number;
}

/** A consumer process; its deliveries go to `into`, tagged with `life`. */
function startConsumer(
  masters: string[],
  token: string,
  life: number,
  into: Delivery[],
) {
  const child = new Deno.Command(DENO, {
    // The first life waits between printing and committing, so its kill
    // lands before a commit: the next life must deliver that batch again.
    args: [
      "run",
      "-A",
      CONSUMER,
      masters.join(","),
      "orders",
      "g1",
      life === 1 ? "400" : "0",
    ],
    env: { STRATA_TOKEN: token },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const done = (async () => {
    let buf = "";
    for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += s;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) into.push({ ...JSON.parse(l), life });
    }
  })();
  return {
    child,
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await done;
    },
  };
}

const cellsOf = (rows: Row[]) =>
  rows.flatMap((r) =>
    r.cells.map((c) =>
      `${dec.decode(r.key)} ${c.family}:${
        dec.decode(c.qualifier)
      } @${c.timestamp} = ${dec.decode(c.value)}`
    )
  );

Deno.test(`feeds and backup on a tables cell (${LONG ? "GFS" : "local storage"}): kill -9 of a consumer and a tablet server; backup as of T under writes`, async (t) => {
  const dataRoot = await Deno.makeTempDir({ prefix: "strata-feeds-" });
  const stack = await startTablesStack({
    dataRoot,
    kvNodes: LONG ? 3 : 1,
    masters: 1,
    servers: 2,
    sessionTtlMs: LONG ? 4000 : 2000,
    reconcileMs: 300,
    ...(LONG
      ? { gfs: { masters: 1, chunkservers: 3, chunkBytes: 1 << 20 } }
      : {}),
  });
  const token = stack.secrets.tokens.admin;
  using client = new TablesClient(stack.masterUrls(), { token });
  const consumers: { kill(): Promise<void> }[] = [];
  try {
    await t.step(
      "feeds: nothing acknowledged is lost, nothing skipped, repeats only after a consumer crash",
      async () => {
        const feeds = new FeedClient(client);
        await feeds.createFeed("orders", { partitions: 3 });
        const delivered: Delivery[] = [];
        consumers.push(startConsumer(stack.masterUrls(), token, 1, delivered));
        const acked = new Map<string, { partition: number; offset: number }>();
        const started = performance.now();
        const producers = Array.from({ length: PRODUCERS }, async (_, w) => {
          const mine = new FeedClient(client, { producerId: `p${w}` });
          for (let i = 0; i < PER_PRODUCER; i++) {
            const v = `w${w}-${i}`;
            acked.set(v, await mine.append("orders", `k${i % 7}`, v));
          }
        });
        const total = PRODUCERS * PER_PRODUCER;
        await until(() => delivered.length >= total / 5, 60_000, "deliveries");
        await consumers.pop()!.kill(); // kill -9 of the consumer
        consumers.push(startConsumer(stack.masterUrls(), token, 2, delivered));
        await until(() => acked.size >= total / 2, 60_000, "half the appends");
        // kill -9 of the tablet server holding partition 0.
        const p0 = (await client.tablets("feed.orders")).find((x) =>
          dec.decode(x.start) === "m/"
        )!;
        const victim = [...stack.servers.values()].find((s) =>
          s.url === p0.url
        )!;
        await stack.signal("server", victim.id, "SIGKILL");
        await Promise.all(producers);
        const elapsed = performance.now() - started;
        console.log(
          `feeds: ${total} appends by ${PRODUCERS} producers in ${
            Math.round(elapsed)
          } ms, with a tablet server killed`,
        );
        await until(
          () => new Set(delivered.map((d) => d.v)).size >= total,
          60_000,
          "every message delivered",
        );
        // The consumer prints a batch before it commits it: let its last
        // commit land before stopping it.
        await until(
          async () => {
            const c = await feeds.committed("orders", "g1");
            for (let p = 0; p < 3; p++) {
              if (c.get(p) !== await feeds.tail("orders", p)) return false;
            }
            return true;
          },
          30_000,
          "the last batch committed",
        );
        await consumers.pop()!.kill();

        // The log: contiguous offsets, each acknowledged message once, where acknowledged.
        const stored = new Map<string, FeedMessage>();
        for (let p = 0; p < 3; p++) {
          let from = 0;
          for (;;) {
            const r = await feeds.read("orders", p, from, 500);
            for (const m of r.messages) {
              assert.equal(m.offset, from++, "offsets are contiguous");
              const v = dec.decode(m.value);
              assert.ok(!stored.has(v), `${v} is stored once`);
              stored.set(v, m);
            }
            if (r.messages.length === 0) break;
          }
        }
        assert.equal(acked.size, total);
        for (const [v, a] of acked) {
          const m = stored.get(v);
          assert.ok(m, `acknowledged ${v} is in the feed`);
          assert.deepEqual({ partition: m.partition, offset: m.offset }, a);
        }
        assert.equal(stored.size, total, "nothing unacknowledged was stored");
        // Deliveries: each consumer life reads each partition in order, no gaps.
        for (const life of [1, 2]) {
          for (let p = 0; p < 3; p++) {
            const os = delivered.filter((d) => d.life === life && d.p === p)
              .map((d) => d.o);
            os.forEach((o, i) =>
              i > 0 && assert.equal(o, os[i - 1]! + 1, "nothing skipped")
            );
          }
        }
        const seen = new Map<string, number>();
        for (const d of delivered) {
          const life = seen.get(d.v);
          assert.ok(life === undefined || life < d.life, `${d.v} repeated`);
          seen.set(d.v, d.life);
          const a = acked.get(d.v);
          assert.deepEqual(a, { partition: d.p, offset: d.o });
        }
        const repeats = delivered.length - seen.size;
        assert.ok(
          repeats > 0,
          "the batch the killed consumer had not committed came again",
        );
        console.log(
          `feeds: ${delivered.length} deliveries, ${repeats} repeats after the consumer's kill -9`,
        );
        const committed = await feeds.committed("orders", "g1");
        for (let p = 0; p < 3; p++) {
          assert.equal(committed.get(p), await feeds.tail("orders", p));
        }
        // A stale commit moves nothing back.
        assert.equal(
          (await feeds.commit("orders", "g1", 0, 1)).moved,
          false,
        );
      },
    );

    await t.step(
      "backup as of T during overwrites and deletes; the restored table equals a consistent scan as of T",
      async () => {
        await client.createTable("accounts", [
          { name: "f" },
          { name: "h", maxVersions: 3 },
        ], ["r040", "r080"]);
        const rows = Array.from(
          { length: LONG ? 300 : 120 },
          (_, i) => `r${String(i).padStart(3, "0")}`,
        );
        for (let i = 0; i < rows.length; i += 30) {
          await Promise.all(
            rows.slice(i, i + 30).map((r) =>
              client.mutateRow("accounts", r, [
                { op: "put", family: "f", qualifier: "v", value: "0" },
                { op: "put", family: "h", qualifier: "v", value: "0" },
              ])
            ),
          );
        }
        // Writers own rows i % 4 == w; each write recorded with its wall-clock span.
        const writes = new Map<
          string,
          { v: string | null; start: number; end: number }[]
        >(
          rows.map((r) => [r, [{ v: "0", start: 0, end: 0 }]]),
        );
        let writing = true;
        const writers = Array.from({ length: 4 }, async (_, w) => {
          const mine = rows.filter((_, i) => i % 4 === w);
          for (let n = 1; writing; n++) {
            const r = mine[Math.floor(Math.random() * mine.length)]!;
            const v = Math.random() < 0.2 ? null : `${w}.${n}`;
            const start = Date.now();
            await client.mutateRow(
              "accounts",
              r,
              v === null ? [{ op: "deleteRow" }] : [
                { op: "put", family: "f", qualifier: "v", value: v },
                { op: "put", family: "h", qualifier: "v", value: v },
              ],
            );
            // Unpaced: several thousand mutations a second on 3 tablets.
            // The wall-clock check below failed every time while a tablet's
            // clock ran ahead of the wall clock past 1,000 a second.
            writes.get(r)!.push({ v, start, end: Date.now() });
          }
        });
        await sleep(300);
        // On GFS (STRATA_LONG) the backup goes to the cell, else to a directory.
        const store: BackupStore = stack.gfs
          ? new GfsBackupStore(
            new GfsClient(stack.gfs.masterUrls, {
              token: stack.gfs.secrets!.tokens.write,
            }),
          )
          : new LocalBackupStore(`${dataRoot}/backups`);
        const began = performance.now();
        // As of one second from now (the default): writes go on throughout.
        const manifest = await backupTable(
          client,
          store,
          "accounts",
          "/backups/b1",
        );
        const at = manifest.at;
        console.log(
          `backup: ${
            manifest.tablets.reduce((n, x) => n + x.cells, 0)
          } cells of ${manifest.tablets.length} tablets in ${
            Math.round(performance.now() - began)
          } ms under writes`,
        );
        // The plain asOf check below needs deletes after T: go on until
        // there are some (bounded; a loaded machine makes few).
        const lateDeletes = () =>
          [...writes.values()].reduce(
            (n, ws) =>
              n + ws.filter((w) => w.v === null && w.start > at).length,
            0,
          );
        for (let i = 0; i < 100 && lateDeletes() < 5; i++) await sleep(50);
        writing = false;
        await Promise.all(writers);
        const moreWrites = [...writes.values()].reduce(
          (n, w) => n + w.length,
          0,
        );
        assert.ok(moreWrites > rows.length + 20, "the writers kept writing");
        await restoreTable(client, store, "/backups/b1", "accounts_r");

        const original: Row[] = [];
        for await (
          const r of client.scan("accounts", { asOf: at, consistent: true })
        ) original.push(r);
        const restored: Row[] = [];
        for await (const r of client.scan("accounts_r")) restored.push(r);
        assert.deepEqual(cellsOf(restored), cellsOf(original));
        // And as of T by the writers' own record: the last write finished
        // before T, or one in flight at T.
        const got = new Map(restored.map((r) => [
          dec.decode(r.key),
          dec.decode(r.cells.find((c) => c.family === "f")!.value),
        ]));
        for (const [r, ws] of writes) {
          const done = ws.filter((w) => w.end < at);
          const allowed = new Set([
            done[done.length - 1]!.v,
            ...ws.filter((w) => w.start <= at && w.end >= at).map((w) => w.v),
          ]);
          assert.ok(
            allowed.has(got.get(r) ?? null),
            `${r} as of T=${at}: got ${got.get(r)} of ${
              JSON.stringify(restored.find((x) => dec.decode(x.key) === r))
            }, writes ${JSON.stringify(ws)}`,
          );
        }
        // A plain asOf read is not a snapshot: later deletes hide rows.
        let plain = 0;
        for await (const _ of client.scan("accounts", { asOf: at })) plain++;
        assert.ok(
          plain < original.length,
          "deletes after T hide rows from a plain asOf scan",
        );
        // A damaged file is refused (checked on the local store); a time
        // before the tablets opened is `compacted`.
        if (!stack.gfs) {
          const file = `${dataRoot}/backups/backups/b1/${
            manifest.tablets[1]!.file
          }`;
          const bytes = await Deno.readFile(file);
          bytes[0] = bytes[0]! ^ 1;
          await Deno.writeFile(file, bytes);
          await assert.rejects(readBackup(store, "/backups/b1"), /damaged/);
        }
        await assert.rejects(
          backupTable(client, store, "accounts", "/backups/old", 1),
          (e) => (e as { code?: string }).code === "compacted",
        );
        // Bad input to the new routes is a 4xx with a code.
        const url = (await client.tablets("accounts"))[0]!.url!;
        const h = { authorization: `Bearer ${token}` };
        const bad = async (res: Promise<Response>, status: number) => {
          const r = await res;
          const body = await r.json();
          assert.equal(r.status, status, JSON.stringify(body));
          assert.equal(typeof body.error.code, "string");
        };
        await bad(
          fetch(`${url}/v1/tables/accounts/scan?consistent=true`, {
            headers: h,
          }),
          400,
        );
        await bad(
          fetch(`${url}/v1/tables/accounts/scan?consistent=true&asOf=1`, {
            headers: h,
          }),
          410,
        );
        for (
          const body of [
            { row: "r000", asOf: at, ms: 10_000_000 },
            { row: "r000", asOf: Date.now() + 60_000, ms: 10 },
            { row: "r000", asOf: -1, ms: 10 },
          ]
        ) {
          await bad(
            fetch(`${url}/v1/tables/accounts/hold`, {
              method: "POST",
              headers: { ...h, "content-type": "application/json" },
              body: JSON.stringify(body),
            }),
            400,
          );
        }
      },
    );
  } finally {
    for (const c of consumers) await c.kill();
    await stack.stop();
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
});
