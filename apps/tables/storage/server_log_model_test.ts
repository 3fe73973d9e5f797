/**
 * Model test of per-server commit logs and their recovery by tablet: the
 * real ServerLog, TabletLogView, GfsFence, readOldEntries and
 * splitServerLog over an in-memory GFS (record append at least once: a
 * block can land twice), under random interleavings of several tablets'
 * concurrent writes, flushes, crashes of servers (appends in flight land
 * or not), a block's append held while later writes go out (then it
 * completes, fails, or its server dies; landed or not), expired sessions (the log split while its server still
 * runs: its later writes must be refused), splits of dead servers' logs (or none: the new owner reads the
 * log whole), sweeps of dead logs (sweepDeadLogs) at any point, clean moves and moves that depose a live owner. After each
 * recovery, every acknowledged write of the tablet is there exactly once,
 * at its index, and nothing of another tablet or of a deposed owner's
 * refused writes; at the end, once every tablet was recovered (and
 * raised its floor), the sweep has deleted every dead server's log.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type GfsClient, GfsError } from "@strata/gfs";
import { GfsFence } from "./gfs_fence.ts";
import { raiseFloor, readOldEntries } from "./log_sources.ts";
import { splitServerLog } from "./log_split.ts";
import { sweepDeadLogs } from "./log_sweep.ts";
import { ServerLog, type TabletLogView } from "./server_log.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ROOT = "/tables";
const TABLETS = ["t/a", "t/b", "t/c"];

/** Files of the in-memory GFS: uploads (bytes) and append files (records). */
class MemGfs {
  files = new Map<string, Uint8Array | Uint8Array[]>();
  constructor(readonly rand: () => number) {}
}

const notFound = (p: string) => new GfsError("not_found", `no ${p}`);
const hang = () => new Promise<never>(() => {});
const tick = () => Promise.resolve();
const timer = () => new Promise((r) => setTimeout(r, 0));

/** How a held append ends: its record lands or not; it fails or not. */
interface HeldEnd {
  lands: boolean;
  fails: boolean;
}

/** An append held by the model (a slow replica) until it says how it ends. */
interface Held {
  /** The append was called and is held. */
  reached: PromiseWithResolvers<void>;
  end: PromiseWithResolvers<HeldEnd>;
}

/**
 * A client of `mem`; after `crash()`, calls never answer (a dead process).
 * `hold()` holds its next append until the model ends it.
 */
function memClient(mem: MemGfs) {
  const state: { dead: boolean; held?: Held } = { dead: false };
  const live = async <T>(f: () => T): Promise<T> => {
    await tick();
    if (state.dead) return hang();
    return f();
  };
  const info = (path: string) => ({
    path,
    length: 0,
    mode: "upload" as const,
    replication: 3,
    chunks: 1,
    createdAt: 0,
    mtime: 0,
  });
  const client = {
    ls: (prefix: string) =>
      live(() =>
        [...mem.files.keys()].filter((p) => p.startsWith(prefix)).sort().map(
          info,
        )
      ),
    stat: (path: string) =>
      live(() => {
        if (!mem.files.has(path)) throw notFound(path);
        return info(path);
      }),
    exists: (paths: string[]) => live(() => paths.map((p) => mem.files.has(p))),
    upload: (path: string, bytes: Uint8Array) =>
      live(() => {
        if (mem.files.has(path)) {
          throw new GfsError("conflict", `${path} exists`);
        }
        mem.files.set(path, bytes.slice());
        return { path, bytes: bytes.length };
      }),
    readAll: (path: string) =>
      live(() => {
        const f = mem.files.get(path);
        if (!(f instanceof Uint8Array)) throw notFound(path);
        return f;
      }),
    async *readRecords(path: string) {
      const f = await live(() => mem.files.get(path));
      if (!Array.isArray(f)) throw notFound(path);
      yield* [...f];
    },
    remove: (path: string) =>
      live(() => {
        if (!mem.files.delete(path)) throw notFound(path);
        return path;
      }),
    locate: (_path: string) => live(() => ({ chunkBytes: 1 << 20 })),
    append: async (path: string, record: Uint8Array) => {
      const held = state.held;
      if (held !== undefined) {
        state.held = undefined;
        held.reached.resolve();
        const { lands, fails } = await held.end.promise;
        if (lands) {
          let f = mem.files.get(path);
          if (!Array.isArray(f)) mem.files.set(path, f = []);
          f.push(record.slice());
        }
        if (state.dead) return hang();
        if (fails) throw new GfsError("unavailable", "the held append failed");
        return { handle: 1, offset: 0 };
      }
      // Sometimes slow (a timer): later writes go out in a second block
      // while this one is in flight.
      await (mem.rand() < 0.5 ? timer() : tick());
      // A crash while the append is in flight: it lands or not.
      if (state.dead && mem.rand() < 0.5) return hang();
      let f = mem.files.get(path);
      if (!Array.isArray(f)) mem.files.set(path, f = []);
      f.push(record.slice());
      // At least once: a retried append lands twice.
      if (mem.rand() < 0.1) f.push(record.slice());
      await tick();
      if (state.dead) return hang();
      return { handle: 1, offset: 0 };
    },
  };
  return {
    gfs: client as unknown as GfsClient,
    crash: () => state.dead = true,
    hold: (): Held => {
      state.held = {
        reached: Promise.withResolvers(),
        end: Promise.withResolvers(),
      };
      return state.held;
    },
    unhold: () => state.held = undefined,
  };
}

interface TabletModel {
  /** Acknowledged payloads by index. */
  acked: Map<number, string>;
  /** Payloads written to this tablet (acknowledged or not). */
  sent: Set<string>;
  /** The tablet's content by index (what its tables and memtable hold). */
  content: Map<number, string>;
  /** Highest index its tables cover. */
  covered: number;
  owner?: { server: Server; view: TabletLogView };
}

interface Server {
  id: number;
  log: ServerLog;
  gfs: GfsClient;
  crash: () => void;
  hold: () => Held;
  unhold: () => void;
  dead: boolean;
  /** Its kv session is over (it may still run: SIGSTOP). */
  expired?: boolean;
}

type Op =
  | { kind: "write"; tablet: number; n: number }
  | {
    kind: "stall";
    tablet: number;
    n: number;
    end: "complete" | "fail" | "crash";
    lands: boolean;
  }
  | { kind: "flush"; tablet: number }
  | { kind: "crash"; server: number; inFlight: number }
  | { kind: "split"; server: number }
  | { kind: "sweep" }
  | { kind: "expire"; server: number; n: number }
  | { kind: "open"; tablet: number }
  | { kind: "move"; tablet: number; clean: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      tablet: fc.nat(2),
      n: fc.integer({ min: 1, max: 6 }),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("stall" as const),
      tablet: fc.nat(2),
      n: fc.integer({ min: 1, max: 6 }),
      end: fc.constantFrom(
        "complete" as const,
        "fail" as const,
        "crash" as const,
      ),
      lands: fc.boolean(),
    }),
    weight: 2,
  },
  fc.record({ kind: fc.constant("flush" as const), tablet: fc.nat(2) }),
  fc.record({
    kind: fc.constant("crash" as const),
    server: fc.nat(3),
    inFlight: fc.nat(4),
  }),
  fc.record({ kind: fc.constant("split" as const), server: fc.nat(3) }),
  fc.record({ kind: fc.constant("sweep" as const) }),
  fc.record({
    kind: fc.constant("expire" as const),
    server: fc.nat(3),
    n: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({ kind: fc.constant("open" as const), tablet: fc.nat(2) }),
  fc.record({
    kind: fc.constant("move" as const),
    tablet: fc.nat(2),
    clean: fc.boolean(),
  }),
);

async function run(ops: Op[], seed: number): Promise<void> {
  let s = seed >>> 0;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const mem = new MemGfs(rand);
  const master = memClient(mem).gfs;
  const servers: Server[] = [];
  const newServer = (): Server => {
    const c = memClient(mem);
    const id = servers.length;
    const srv: Server = {
      id,
      gfs: c.gfs,
      crash: c.crash,
      hold: c.hold,
      unhold: c.unhold,
      dead: false,
      log: ServerLog.open(c.gfs, `${ROOT}/_logs/s${id}/${id}-n`, {
        rollBytes: 600,
      }),
    };
    servers.push(srv);
    return srv;
  };
  const liveServer = () => servers.filter((x) => !x.dead)[0] ?? newServer();
  const tablets: TabletModel[] = TABLETS.map(() => ({
    acked: new Map(),
    sent: new Set(),
    content: new Map(),
    covered: 0,
  }));
  let counter = 0;
  // The master's sweep of dead logs: a server's session is live while it
  // neither died nor expired.
  const sweep = () =>
    sweepDeadLogs(master, ROOT, (server, session) => {
      const srv = servers[session];
      assert.equal(server, `s${session}`);
      return Promise.resolve(srv !== undefined && !srv.dead && !srv.expired);
    });

  /** What the tablet opener does (tablet_storage.ts), checking the replay. */
  const open = async (k: number, srv: Server) => {
    const t = tablets[k]!;
    const store = TABLETS[k]!;
    const path = `${ROOT}/${store}`;
    const fence = await GfsFence.claim(
      srv.gfs,
      path,
      `s${srv.id}`,
      undefined,
      srv.log.dir,
    );
    const view = srv.log.view(
      store,
      fence,
      () => readOldEntries(srv.gfs, path, store, fence.epoch),
    );
    const content = new Map(
      [...t.content].filter(([i]) => i <= t.covered),
    );
    const last = await view.recover(t.covered, (i, r) => {
      const p = dec.decode(r);
      assert.ok(t.sent.has(p), `${store}: replayed ${p}, never sent to it`);
      assert.ok(!content.has(i), `${store}: index ${i} twice`);
      content.set(i, p);
    });
    for (const [i, p] of t.acked) {
      assert.equal(content.get(i), p, `${store}: acknowledged #${i} lost`);
    }
    const seen = new Set(content.values());
    assert.equal(seen.size, content.size, `${store}: a write appears twice`);
    for (let i = 1; i <= last; i++) assert.ok(content.has(i));
    t.content = content;
    // From here on, what is in content is the tablet's history.
    t.acked = new Map(content);
    if (fence.epoch > 1) {
      if (view.replayed > 0) {
        t.covered = last;
        await view.compactPrefix(last);
      }
      await raiseFloor(srv.gfs, path, fence.epoch);
    }
    await view.releaseStart();
    t.owner = { server: srv, view };
  };

  for (const op of ops) {
    if (op.kind === "write") {
      const t = tablets[op.tablet]!;
      if (!t.owner || t.owner.server.dead) continue;
      const view = t.owner.view;
      await Promise.all(Array.from({ length: op.n }, async (_, i) => {
        // Staggered: some writes arrive while a block is in flight.
        for (let k = 0; k < i % 3; k++) await timer();
        const p = `${TABLETS[op.tablet]}:${counter++}`;
        t.sent.add(p);
        try {
          const { last } = await view.append([enc.encode(p)]);
          t.acked.set(last, p);
          t.content.set(last, p);
        } catch {
          // Refused (fenced or sealed): not acknowledged.
        }
      }));
    } else if (op.kind === "stall") {
      // One block's GFS append is held (a slow replica) while later writes
      // of the same server go out; then the held append completes, or
      // fails (landed or not), or the server dies with it in flight
      // (landed or not). A later block must not be acknowledged before
      // the held one, nor at all if the held one failed: replay stops at
      // a tablet's first missing index.
      const t = tablets[op.tablet]!;
      if (!t.owner || t.owner.server.dead) continue;
      const srv = t.owner.server;
      const write = (k: number) => {
        const tk = tablets[k]!;
        const p = `${TABLETS[k]}:${counter++}`;
        tk.sent.add(p);
        return tk.owner!.view.append([enc.encode(p)]).then(({ last }) => {
          tk.acked.set(last, p);
          tk.content.set(last, p);
        }, () => {
          // Refused: not acknowledged.
        });
      };
      const held = srv.hold();
      const first = write(op.tablet);
      const reached = await Promise.race([
        held.reached.promise.then(() => true),
        first.then(() => false),
      ]);
      if (!reached) {
        // Refused before any append (the tablet or the log had failed).
        srv.unhold();
        continue;
      }
      // Later writes: mostly this tablet's, some of the server's others.
      const mine = tablets.flatMap((x, k) =>
        x.owner?.server === srv ? [k] : []
      );
      const later = Array.from(
        { length: op.n },
        (_, i) => write(i % 3 === 2 ? mine[i % mine.length]! : op.tablet),
      );
      // Time for a later block to be appended and checked (a few turns).
      for (let i = 0; i < 20; i++) await timer();
      if (op.end === "crash") {
        srv.crash();
        srv.dead = true;
        held.end.resolve({ lands: op.lands, fails: false });
        // What was acknowledged before it died must be recovered.
        continue;
      }
      held.end.resolve({
        lands: op.end === "complete" || op.lands,
        fails: op.end === "fail",
      });
      await Promise.all([first, ...later]);
      if (op.end === "fail") {
        // A failed log takes no more writes: the server gives up its
        // session and starts over (tablet_server_main.ts).
        assert.ok(srv.log.failed, "a failed append left the log writable");
        srv.expired = true;
        srv.crash();
        srv.dead = true;
      }
    } else if (op.kind === "flush") {
      const t = tablets[op.tablet]!;
      if (!t.owner || t.owner.server.dead) continue;
      const upTo = Math.max(t.covered, ...t.acked.keys());
      t.covered = upTo;
      await t.owner.view.compactPrefix(upTo);
    } else if (op.kind === "crash") {
      const srv = servers[op.server];
      if (!srv || srv.dead) continue;
      // Writes in flight when it dies: never acknowledged.
      for (const t of tablets) {
        if (t.owner?.server !== srv) continue;
        for (let i = 0; i < op.inFlight; i++) {
          const p = `${TABLETS[tablets.indexOf(t)]}:${counter++}`;
          t.sent.add(p);
          t.owner.view.append([enc.encode(p)]).catch(() => {});
        }
      }
      srv.crash();
      srv.dead = true;
    } else if (op.kind === "split") {
      const srv = servers[op.server];
      if (!srv?.dead) continue;
      await splitServerLog(master, srv.log.dir);
    } else if (op.kind === "sweep") {
      await sweep();
    } else if (op.kind === "expire") {
      // Its session expired but it still runs (SIGSTOP, then SIGCONT): the
      // master splits its log, then it tries to write.
      const srv = servers[op.server];
      if (!srv || srv.dead) continue;
      srv.expired = true;
      // The sweep seals a dead log too (and must keep it: its tablets'
      // claims name it).
      if (rand() < 0.5) await sweep();
      else await splitServerLog(master, srv.log.dir);
      for (const t of tablets) {
        if (t.owner?.server !== srv) continue;
        await Promise.all(Array.from({ length: op.n }, async () => {
          const p = `${TABLETS[tablets.indexOf(t)]}:${counter++}`;
          t.sent.add(p);
          await assert.rejects(
            t.owner!.view.append([enc.encode(p)]),
            /sealed/,
            "a sealed log acknowledged a write",
          );
        }));
      }
      srv.crash();
      srv.dead = true;
    } else if (op.kind === "open") {
      const t = tablets[op.tablet]!;
      if (t.owner && !t.owner.server.dead) continue;
      await open(op.tablet, liveServer());
    } else {
      const t = tablets[op.tablet]!;
      if (!t.owner || t.owner.server.dead) continue;
      const from = t.owner;
      const to = servers.find((x) => !x.dead && x !== from.server) ??
        newServer();
      if (op.clean) {
        const upTo = Math.max(t.covered, ...t.acked.keys());
        t.covered = upTo;
        await from.view.compactPrefix(upTo);
        await from.view.close();
        await open(op.tablet, to);
      } else {
        // The old owner is still serving: the new claim deposes it.
        await open(op.tablet, to);
        const p = `${TABLETS[op.tablet]}:${counter++}`;
        t.sent.add(p);
        await assert.rejects(from.view.append([enc.encode(p)]), /superseded/);
      }
    }
  }
  // Every tablet recovered at the end, whatever state the run left.
  for (const srv of servers) {
    if (rand() < 0.5 && !srv.dead) {
      srv.crash();
      srv.dead = true;
    }
  }
  for (const srv of servers) {
    if (srv.dead && rand() < 0.5) await splitServerLog(master, srv.log.dir);
  }
  if (rand() < 0.5) await sweep();
  for (let k = 0; k < TABLETS.length; k++) {
    const t = tablets[k]!;
    const srv = liveServer();
    if (t.owner?.server === srv) {
      t.owner = undefined;
      const fresh = newServer();
      await open(k, fresh);
    } else await open(k, srv);
  }
  // Every tablet flushed what it replayed and raised its floor: no dead
  // log is needed any more, and the sweep leaves none behind.
  const swept = await sweep();
  assert.deepEqual(swept.kept, [], "a dead log was kept");
  const deadLogs = servers.filter((x) => x.dead).map((x) => `${x.log.dir}/`);
  const left = [...mem.files.keys()].filter((p) =>
    deadLogs.some((d) => p.startsWith(d))
  );
  assert.deepEqual(left, [], "a dead server's log files were left behind");
  // Old floor files go in sweeps that find a dead log (they list the stores).
  const floors = [...mem.files.keys()].filter((p) => p.includes("/logfloor/"));
  if (swept.removed.length > 0) {
    assert.ok(floors.length <= TABLETS.length, "old floor files were left");
  }
  // And what the sweep deleted was not needed: one more recovery of each.
  for (let k = 0; k < TABLETS.length; k++) await open(k, newServer());
}

Deno.test("server log model: random writes of 3 tablets, flushes, crashes, splits and moves; every acknowledged write is recovered exactly once into its tablet", async () => {
  const long = Deno.env.get("STRATA_LONG") === "1";
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 5, maxLength: long ? 80 : 30 }),
      fc.integer(),
      async (ops, seed) => {
        // Every tablet starts on server 0.
        await run([
          { kind: "open", tablet: 0 },
          { kind: "open", tablet: 1 },
          { kind: "open", tablet: 2 },
          ...ops,
        ], seed);
      },
    ),
    { numRuns: long ? 300 : 25 },
  );
});

Deno.test("server log blocks: sections decode by tablet; a flipped byte anywhere stops decoding at its section", async () => {
  const { decodeSections, encodeSections, splitByTablet } = await import(
    "./server_log_format.ts"
  );
  const rec = (index: number, s: string) => ({
    kind: "record" as const,
    epoch: 2,
    index,
    payload: enc.encode(s),
  });
  const block = encodeSections([
    { dir: "t/a", entries: [rec(1, "a1"), rec(2, "a2")] },
    { dir: "t/b", entries: [{ kind: "start", epoch: 3, index: 7 }] },
    { dir: "t/a", entries: [rec(3, "a3")] },
  ]);
  const split = splitByTablet([block, block]);
  assert.deepEqual(
    split.get("t/a")!.map((e) => e.kind === "record" ? e.index : -1),
    [1, 2, 3, 1, 2, 3],
  );
  assert.deepEqual(split.get("t/b"), [
    { kind: "start", epoch: 3, index: 7 },
    { kind: "start", epoch: 3, index: 7 },
  ]);
  const sizes = decodeSections(block).map((s) => encodeSections([s]).length);
  for (let i = 0; i < block.length; i++) {
    const bad = block.slice();
    bad[i]! ^= 0x40;
    const got = decodeSections(bad);
    // The section holding byte i and everything after it are dropped.
    let before = 0;
    for (let o = 0, k = 0; k < sizes.length; o += sizes[k]!, k++) {
      if (i >= o + sizes[k]!) before++;
    }
    assert.equal(got.length, before, `byte ${i}`);
  }
});

Deno.test("server log: a block whose seal and fence checks the GFS master cannot answer is acknowledged to no one, and the log refuses every later write", async () => {
  const mem = new MemGfs(() => 0.9);
  const c = memClient(mem);
  let down = false;
  const gfs = {
    ...(c.gfs as unknown as Record<string, unknown>),
    exists: (paths: string[]) =>
      down
        ? Promise.reject(new GfsError("unavailable", "no master answers"))
        : (c.gfs as unknown as { exists: typeof gfs.exists }).exists(paths),
  } as unknown as GfsClient & {
    exists: (paths: string[]) => Promise<boolean[]>;
  };
  const log = ServerLog.open(gfs, `${ROOT}/_logs/s1/1-a`);
  const fence = await GfsFence.claim(gfs, `${ROOT}/t/a`, "s1");
  const view = log.view("t/a", fence, () => Promise.resolve([]));
  await view.recover(0, () => {});
  assert.equal((await view.append([enc.encode("ok")])).last, 1);
  down = true;
  await assert.rejects(
    view.append([enc.encode("unchecked")]),
    (e) => e instanceof GfsError && e.code === "unavailable",
  );
  assert.ok(log.failed, "an unconfirmed block left the log writable");
  down = false;
  await assert.rejects(view.append([enc.encode("later")]));
  await log.close();
});
