/**
 * The master's reconcile is event driven: against a real kv node and two
 * stand-in tablet servers (HTTP handlers that count what the master asks),
 * with a safety-net period far longer than the test, a quiet cell costs
 * no server report and no METADATA read per tick, while a change made in
 * kv by someone else (a new table's tablets, a server joining, a server
 * leaving) is acted on within seconds: only the watch can have told it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { KvClient, type KvSession } from "@strata/kv";
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { MasterService } from "./master_service.ts";
import {
  schemaKey,
  serverKey,
  tabletKey,
  type TabletRecord,
} from "../shared/kv_layout.ts";
import { META_TABLE } from "../shared/metadata_layout.ts";

/** A stand-in tablet server: opens and closes what it is told, keeps METADATA rows. */
function fakeServer(
  id: string,
  o: { closeDelayMs?: number; events?: Handoff[] } = {},
) {
  const open = new Set<string>();
  const rows = new Map<string, string>(); // METADATA row key (base64) → value (base64)
  const counts = { reports: 0, opens: 0, metaScans: 0, metaWrites: 0 };
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      const p = url.pathname;
      if (req.method === "GET" && p === "/v1/tablets") {
        counts.reports++;
        return json({
          server: id,
          serving: true,
          tablets: [...open].map((t) => ({ id: t, bytes: 0, frozen: false })),
        });
      }
      if (p === "/v1/tablets/open") {
        const b = await req.json() as { tablet: TabletRecord };
        o.events?.push({ server: id, what: "open", tablet: b.tablet.id });
        open.add(b.tablet.id);
        counts.opens++;
        return json({ opened: b.tablet.id });
      }
      if (p === "/v1/tablets/close") {
        const b = await req.json() as { id: string };
        // A server closing a tablet waits for its writes in flight.
        if (o.closeDelayMs) {
          await new Promise((r) => setTimeout(r, o.closeDelayMs));
        }
        open.delete(b.id);
        o.events?.push({ server: id, what: "closed", tablet: b.id });
        return json({ closed: true });
      }
      if (p === `/v1/tables/${META_TABLE}/scan`) {
        counts.metaScans++;
        const b = (s: string | null) => Buffer.from(s ?? "", "base64");
        const start = b(url.searchParams.get("start"));
        const end = url.searchParams.get("end");
        const lines = [...rows].filter(([k]) =>
          Buffer.compare(b(k), start) >= 0 &&
          (end === null || Buffer.compare(b(k), b(end)) < 0)
        ).sort(([a], [c]) => Buffer.compare(b(a), b(c))).map(([key, value]) =>
          JSON.stringify({
            key,
            cells: [{ family: "loc", qualifier: "", value }],
          })
        );
        lines.push(JSON.stringify({ done: true, continueAt: null }));
        return new Response(lines.join("\n") + "\n");
      }
      if (p === `/v1/tables/${META_TABLE}/mutate`) {
        counts.metaWrites++;
        const b = await req.json() as {
          row: string;
          mutations: Array<{ op: string; value?: string }>;
        };
        const m = b.mutations[0]!;
        if (m.op === "deleteRow") rows.delete(b.row);
        else rows.set(b.row, m.value!);
        return json({ applied: 1 });
      }
      // Log splits and sweeps: "no GFS here".
      return json(
        { error: { code: "bad_request", message: "no GFS here" } },
        400,
      );
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { id, url, open, counts, stop: () => server.shutdown() };
}

/** An open or a finished close at a stand-in server, in the order they happened. */
interface Handoff {
  server: string;
  what: "open" | "closed";
  tablet: string;
}

/** A one-node kv cell in a new temporary directory, and a writer's client. */
async function startKv(prefix: string) {
  const dir = await Deno.makeTempDir({ prefix });
  const kvCell = await startLocalCluster({ size: 1, dataRoot: dir });
  const kv = new KvClient([kvCell.nodes.get(1)!.url], {
    token: kvCell.secrets!.tokens.write,
  });
  return { dir, kvCell, kv };
}

/** A tablet record of table `table`, unassigned, from `start` to `end` (plain strings). */
function tabletRecord(
  table: string,
  id: string,
  start: string,
  end: string | null,
): TabletRecord {
  return {
    id,
    table,
    start: start && Buffer.from(start).toString("base64"),
    end: end === null ? null : Buffer.from(end).toString("base64"),
    dir: `${table}/${id}`,
    server: null,
  };
}

/** Writes table `name` (one family) and its tablets to kv, as a master would. */
async function writeTable(
  kv: KvClient,
  name: string,
  tablets: readonly TabletRecord[],
): Promise<void> {
  await kv.txn({
    compare: [],
    success: [
      {
        op: "put",
        key: schemaKey(name),
        value: JSON.stringify({ name, families: [{ name: "f" }] }),
      },
      ...tablets.map((x) => ({
        op: "put",
        key: tabletKey(name, x.id),
        value: JSON.stringify(x),
      })),
    ],
  });
}

/** Registers stand-in server `s` as a tablet server does (a session, its key). */
async function registerServer(
  kv: KvClient,
  s: { id: string; url: string },
): Promise<KvSession> {
  // Long TTLs: a keep-alive late on a loaded machine must not expire a
  // session (a change in kv) inside a test's quiet window.
  const session = await kv.openSession(10_000);
  await kv.put(
    serverKey(s.id),
    JSON.stringify({ id: s.id, url: s.url, session: session.id }),
    { session: session.id },
  );
  return session;
}

/** Polls `check` every 50 ms; fails after `ms`. @returns the ms it took. */
async function within(
  what: string,
  ms: number,
  check: () => boolean,
): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > ms) {
      assert.fail(`${what}: not within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - started;
}

Deno.test({
  name:
    "the master skips quiet ticks (no report, no METADATA read) and acts at once on changes in kv",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { dir, kvCell, kv } = await startKv("strata-reconcile-events-");
    const a = fakeServer("ts1");
    const b = fakeServer("ts2");
    const sessions = new Map<string, KvSession>();
    const register = async (s: ReturnType<typeof fakeServer>) => {
      sessions.set(s.id, await registerServer(kv, s));
    };
    const lines: string[] = [];
    const master = new MasterService({
      id: "m1",
      url: "http://127.0.0.1:1",
      kv,
      ttlMs: 10_000,
      reconcileMs: 100,
      // Far beyond this test: only the watch can start a pass after a
      // quiet one.
      fullPassMs: 600_000,
      log: (l) => lines.push(l),
    });
    try {
      await register(a);
      master.start();
      // Bootstrap: the root and METADATA tablets open on ts1, the
      // METADATA tablet's row written to the root.
      await within("METADATA open on ts1", 20_000, () => a.open.size === 2);
      await within(
        "METADATA rows written",
        20_000,
        () => a.counts.metaWrites >= 1,
      );

      // Quiet: ticks are skipped, the servers are not asked anything.
      let before = master.passes;
      await within("a quiet tick", 10_000, () => {
        const now = master.passes;
        const quiet = now.skipped > before.skipped && now.full === before.full;
        before = now;
        return quiet;
      });
      const reports = a.counts.reports, scans = a.counts.metaScans;
      const p0 = master.passes;
      await new Promise((r) => setTimeout(r, 1500));
      const p1 = master.passes;
      assert.ok(
        p1.skipped - p0.skipped >= 5,
        `only ${p1.skipped - p0.skipped} ticks in 1.5 s`,
      );
      assert.equal(p1.full, p0.full, "a full pass ran with nothing changed");
      assert.equal(a.counts.reports, reports, "ts1 was asked for its report");
      assert.equal(a.counts.metaScans, scans, "METADATA was read again");

      // A kick runs a full pass (ts1 is asked for its report), but the
      // rows METADATA should hold did not change: it is not read.
      master.kick();
      await within(
        "a kicked pass",
        10_000,
        () => master.passes.full > p1.full && a.counts.reports > reports,
      );
      assert.equal(a.counts.metaScans, scans, "METADATA was read again");

      // A table written to kv by someone else: assigned and opened.
      const tablets = [
        tabletRecord("t", "t-1", "", "g"),
        tabletRecord("t", "t-2", "g", "p"),
        tabletRecord("t", "t-3", "p", null),
      ];
      const scansBefore = a.counts.metaScans;
      await writeTable(kv, "t", tablets);
      const tookTable = await within(
        "the new table's tablets open",
        10_000,
        () => tablets.every((x) => a.open.has(x.id)),
      );
      // Their METADATA rows changed, so METADATA was read (and written).
      await within(
        "METADATA read again",
        10_000,
        () => a.counts.metaScans > scansBefore,
      );

      // A server joins: it gets a tablet of ts1's (count balancing).
      await register(b);
      const tookJoin = await within(
        "a tablet moved to ts2",
        10_000,
        () => b.open.size > 0,
      );

      // A server leaves (its session closed: its key goes): everything it
      // held, the root first, goes to ts2.
      await sessions.get("ts1")!.close();
      sessions.delete("ts1");
      const tookLeave = await within(
        "ts1's tablets reassigned to ts2",
        10_000,
        () => b.open.size === 5,
      );
      assert.ok(
        lines.some((l) => l.includes("tablet server ts1 is gone")),
        lines.join("\n"),
      );
      console.log(
        `acted on: a new table after ${
          tookTable.toFixed(0)
        } ms, a server joining after ${
          tookJoin.toFixed(0)
        } ms, a server leaving after ${tookLeave.toFixed(0)} ms; passes ${
          JSON.stringify(master.passes)
        }`,
      );
    } finally {
      await master.stop();
      for (const s of sessions.values()) await s.close().catch(() => {});
      await a.stop();
      await b.stop();
      await kvCell.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "a moved tablet opens on its new server only after its old server has closed it (a handoff)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { dir, kvCell, kv } = await startKv("strata-handoff-");
    const events: Handoff[] = [];
    // ts1's closes take a while (writes in flight), as a real server's can.
    const a = fakeServer("ts1", { closeDelayMs: 800, events });
    const b = fakeServer("ts2", { events });
    const sessions: KvSession[] = [];
    const register = async (s: ReturnType<typeof fakeServer>) => {
      sessions.push(await registerServer(kv, s));
    };
    const master = new MasterService({
      id: "m1",
      url: "http://127.0.0.1:1",
      kv,
      ttlMs: 10_000,
      reconcileMs: 100,
      log: () => {},
    });
    try {
      await register(a);
      master.start();
      const tablets = ["h-1", "h-2", "h-3", "h-4"].map((id, i) =>
        tabletRecord(
          "h",
          id,
          i === 0 ? "" : `k${i}`,
          i === 3 ? null : `k${i + 1}`,
        )
      );
      await writeTable(kv, "h", tablets);
      await within(
        "the tablets open on ts1",
        20_000,
        () => tablets.every((x) => a.open.has(x.id)),
      );
      // ts2 joins: count balancing moves tablets of ts1's to it.
      await register(b);
      await within("a tablet moved to ts2", 20_000, () => b.open.size >= 2);
      const moved = [...b.open];
      for (const t of moved) {
        const opened = events.findIndex((e) =>
          e.server === "ts2" && e.what === "open" && e.tablet === t
        );
        const closed = events.findIndex((e) =>
          e.server === "ts1" && e.what === "closed" && e.tablet === t
        );
        assert.ok(
          closed >= 0 && closed < opened,
          `${t} opened on ts2 before ts1 had closed it: ${
            JSON.stringify(events)
          }`,
        );
      }
    } finally {
      await master.stop();
      for (const s of sessions) await s.close().catch(() => {});
      await a.stop();
      await b.stop();
      await kvCell.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
