/**
 * CRDT ranges on a real cell (kv ×1, one master, tablet servers ×3, real
 * processes), started once for the file. A range is declared with 3
 * replicas; then:
 * - bad input, roles and the peer route answer 4xx;
 * - SIGSTOP partitions: each replica in turn (the home first) is stopped
 *   while the two others take counter increments, set adds and removes and
 *   register writes; the live ones keep the stopped one's keys pending;
 *   a client without a pinned replica gets `unknown_outcome` from the
 *   stopped home once, then writes and reads at another replica;
 * - after every replica resumed, all three converge (equal digests) to the
 *   merge of every acknowledged operation: counters are the sums, the set
 *   holds each element added and not removed afterwards (add wins over a
 *   concurrent remove), the register holds the acknowledged write with the
 *   highest timestamp;
 * - STRATA_LONG=1 only (a restart waits out the old kv session): kill -9
 *   of a replica while the other two are stopped: after a restart it still
 *   has every write it acknowledged (from its own disk; `crdt_log_test.ts`
 *   checks the log itself in the default suite).
 * STRATA_LONG=1 also runs 20 times more operations per phase.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { startTablesStack, type TablesStack } from "../stack_launcher.ts";
import { TablesClient } from "../client/tables_client.ts";
import type { TablesClientError } from "../client/tables_client_error.ts";
import { CrdtClient, type CrdtKeyValue } from "../client/crdt_client.ts";
import { compareHlc, type Hlc } from "./hlc.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const PHASE_OPS = LONG ? 240 : 12;
/** Counter keys written (the long run: one per increment, past a push batch). */
const COUNTER_KEYS = LONG ? Infinity : 4;
const RANGE = "likes";

async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms (${last ?? ""})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("crdt ranges: writable at every replica under SIGSTOP partitions, converging to the merge of every acknowledged operation", async (t) => {
  const dataRoot = await Deno.makeTempDir({ prefix: "crdt_stack_" });
  let stack: TablesStack | undefined;
  try {
    stack = await startTablesStack({
      dataRoot,
      kvNodes: 1,
      masters: 1,
      servers: 3,
      sessionTtlMs: 2000,
      reconcileMs: 500,
    });
    const s = stack;
    const tokens = s.secrets.tokens;
    const tables = (token: string) =>
      new TablesClient(s.masterUrls(), { token, retryForMs: 10_000 });
    const admin = new CrdtClient(tables(tokens.admin), { timeoutMs: 1000 });
    const crdt = new CrdtClient(tables(tokens.write), { timeoutMs: 1000 });
    const info = await admin.createRange(RANGE, 3);
    const order = info.replicas.map((r) => r.id);
    strictEqual(new Set(order).size, 3);
    const url = (id: string) => s.servers.get(id)!.url;
    const call = async (
      id: string,
      path: string,
      token: string | undefined,
      body?: unknown,
    ) => {
      const r = await fetch(`${url(id)}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined
          ? {}
          : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      return { status: r.status, body: await r.json() };
    };
    const digests = () =>
      Promise.all(order.map((id) => crdt.digest(RANGE, { replica: id })));
    const converged = async () => {
      const d = await digests();
      return d.every((x) => x.digest === d[0]!.digest) ? d[0] : undefined;
    };

    await t.step(
      "bad input, roles and the peer route are refused with 4xx",
      async () => {
        const home = order[0]!;
        const upd = `/v1/crdt/${RANGE}/update`;
        const cases: [string, string | undefined, unknown, number, string][] = [
          [
            upd,
            tokens.write,
            { key: "k", op: "incr", by: 0 },
            400,
            "bad_request",
          ],
          [upd, tokens.write, { key: "k", op: "jump" }, 400, "bad_request"],
          [
            upd,
            tokens.write,
            { key: "", op: "set", value: "v" },
            400,
            "bad_request",
          ],
          [upd, tokens.write, "{not json", 400, "bad_request"],
          [upd, tokens.read, { key: "k", op: "incr", by: 1 }, 403, "forbidden"],
          [
            upd,
            undefined,
            { key: "k", op: "incr", by: 1 },
            401,
            "unauthorized",
          ],
          [
            "/v1/crdt/nope/update",
            tokens.write,
            { key: "k", op: "incr", by: 1 },
            404,
            "not_found",
          ],
          [
            "/v1/crdt/_sync",
            tokens.admin,
            { from: "x", range: RANGE, incarnation: "i", entries: [] },
            401,
            "unauthorized",
          ],
        ];
        for (const [path, token, body, status, code] of cases) {
          const r = await call(home, path, token, body);
          strictEqual(r.status, status, `${path} ${JSON.stringify(body)}`);
          strictEqual(r.body.error.code, code);
        }
        const bad = await call(home, `/v1/crdt/${RANGE}/get`, tokens.read);
        strictEqual(bad.status, 400);
        // A range on one server: the others say where it is.
        const solo = await admin.createRange("solo", 1);
        const other = order.find((id) => id !== solo.replicas[0]!.id)!;
        const r = await call(other, "/v1/crdt/solo/update", tokens.write, {
          key: "k",
          op: "incr",
          by: 1,
        });
        strictEqual(r.status, 409);
        deepStrictEqual(r.body.error.replicas, [solo.replicas[0]!.id]);
        await admin.createRange("solo", 1).then(
          () => ok(false, "a second declaration"),
          (e) => strictEqual((e as TablesClientError).code, "conflict"),
        );
        // Dropped and declared again: the new range starts empty.
        await crdt.incr("solo", "k", 7);
        await admin.deleteRange("solo");
        await admin.createRange("solo", 1);
        await eventually("the old copy dropped", 10_000, async () => {
          const v = await crdt.get("solo", "k");
          return v.counter === undefined ? true : undefined;
        });
        await crdt.incr("solo", "k", 1);
        strictEqual((await crdt.get("solo", "k")).counter, 1);
        await admin.deleteRange("solo");
      },
    );

    // What was acknowledged.
    const sums = new Map<string, number>();
    const present = new Set<string>(["x"]);
    const removed = new Set<string>(["z"]);
    const writes: { value: string; ts: Hlc }[] = [];
    let maybeFo = 0;
    let ackedFo = 0;
    const latencies: number[] = [];
    const incr = async (id: string, key: string, by: number) => {
      const t0 = performance.now();
      await crdt.incr(RANGE, key, by, { replica: id });
      latencies.push(performance.now() - t0);
      sums.set(key, (sums.get(key) ?? 0) + by);
    };

    await t.step(
      "before the partitions: x and z in the set everywhere",
      async () => {
        await crdt.add(RANGE, "s", ["x", "z"], { replica: order[1]! });
        await incr(order[2]!, "c0", 1);
        await eventually("convergence", 20_000, converged);
      },
    );

    const homeClient = new CrdtClient(tables(tokens.write), {
      timeoutMs: 1000,
    });
    strictEqual((await homeClient.incr(RANGE, "fo", 1)).replica, order[0]);
    ackedFo++;
    let resumedAt = 0;
    await t.step(
      `SIGSTOP each replica in turn; ${PHASE_OPS} operations at the two others`,
      async () => {
        for (let phase = 0; phase < 3; phase++) {
          const stopped = order[phase]!;
          const live = order.filter((id) => id !== stopped);
          await s.signal("server", stopped, "SIGSTOP");
          try {
            if (phase === 0) {
              // x and z removed while the home is away; x comes back in phase 1.
              await crdt.remove(RANGE, "s", ["x", "z"], { replica: live[0]! });
              // A client whose last write went to the home: no answer,
              // outcome unknown; its next calls go to another replica.
              await homeClient.incr(RANGE, "fo", 1).then(
                () => ok(false, "the stopped home answered"),
                (e) =>
                  strictEqual((e as TablesClientError).code, "unknown_outcome"),
              );
              maybeFo++;
              const w = await homeClient.incr(RANGE, "fo", 1);
              ackedFo++;
              ok(w.replica !== stopped);
              ok((await homeClient.get(RANGE, "c0")).replica !== stopped);
              // A new client tries the home first, finds it silent before
              // sending anything, and writes at another replica.
              const fresh = new CrdtClient(tables(tokens.write), {
                timeoutMs: 1000,
              });
              const f = await fresh.incr(RANGE, "fo", 1);
              ackedFo++;
              ok(f.replica !== stopped);
            }
            if (phase === 1) {
              await crdt.add(RANGE, "s", ["x"], { replica: order[0]! });
            }
            const added: Record<string, string[]> = {};
            for (let n = 0; n < PHASE_OPS; n++) {
              const id = live[n % 2]!;
              const by = [-3, -1, 1, 2, 5][n % 5]!;
              await incr(id, `c${(phase * PHASE_OPS + n) % COUNTER_KEYS}`, by);
              const el = `e-${phase}-${id}-${n}`;
              await crdt.add(RANGE, "s", [el], { replica: id });
              (added[id] ??= []).push(el);
              present.add(el);
              if (n % 3 === 2) {
                // Removed where it was added, with no add after: gone.
                const gone = added[id]!.shift()!;
                await crdt.remove(RANGE, "s", [gone], { replica: id });
                present.delete(gone);
                removed.add(gone);
              }
              const value = `${phase}-${id}-${n}`;
              const r = await crdt.set(RANGE, "r", value, { replica: id });
              strictEqual(r.register?.value, value);
              writes.push({ value, ts: r.register!.ts });
            }
            // The live replicas hold keys the stopped one has not acknowledged.
            const st = await call(live[0]!, "/v1/crdt", tokens.read);
            const mine = st.body.ranges.find((x: { name: string }) =>
              x.name === RANGE
            );
            ok(mine.pending[stopped] > 0, JSON.stringify(mine.pending));
          } finally {
            await s.signal("server", stopped, "SIGCONT");
            resumedAt = performance.now();
          }
        }
      },
    );

    await t.step(
      "every replica converges to the merge of the acknowledged operations",
      async () => {
        const d = await eventually("convergence", 30_000, converged);
        const sorted = [...latencies].sort((a, b) => a - b);
        const pct = (p: number) =>
          sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
            .toFixed(1);
        console.log(
          `crdt: incr at a replica (fsynced) p50 ${pct(0.5)} ms, p99 ${
            pct(0.99)
          } ms (${sorted.length} calls, 1 client)`,
        );
        console.log(
          `crdt: 3 replicas equal ${
            Math.round(performance.now() - resumedAt)
          } ms after the last SIGCONT (${d.keys} keys)`,
        );
        for (const id of order) {
          const { keys } = await crdt.scan(RANGE, {}, { replica: id });
          const byKey = new Map<string, CrdtKeyValue>(
            keys.map((k) => [k.key, k]),
          );
          for (const [key, sum] of sums) {
            strictEqual(byKey.get(key)?.counter, sum, key);
          }
          const fo = byKey.get("fo")?.counter ?? 0;
          ok(fo >= ackedFo && fo <= ackedFo + maybeFo, `fo = ${fo}`);
          deepStrictEqual(byKey.get("s")?.set, [...present].sort());
          for (const el of removed) ok(!byKey.get("s")!.set!.includes(el));
          const last = [...writes].sort((a, b) => compareHlc(a.ts, b.ts)).at(
            -1,
          )!;
          deepStrictEqual(byKey.get("r")?.register, last);
        }
      },
    );

    if (LONG) {
      await t.step(
        "kill -9 of a replica cut off from the others: its acknowledged writes survive",
        async () => {
          const [victim, ...others] = order as [string, string, string];
          for (const id of others) await s.signal("server", id, "SIGSTOP");
          try {
            for (let i = 0; i < 5; i++) await incr(victim, "durable", 2);
            await crdt.add(RANGE, "s", ["after-kill"], { replica: victim });
            present.add("after-kill");
            await s.signal("server", victim, "SIGKILL");
            await s.restart("server", victim);
            const v = await crdt.get(RANGE, "durable", { replica: victim });
            strictEqual(v.counter, 10);
            ok(
              (await crdt.get(RANGE, "s", { replica: victim })).set!.includes(
                "after-kill",
              ),
            );
          } finally {
            for (const id of others) await s.signal("server", id, "SIGCONT");
          }
          await eventually("convergence after the restart", 30_000, converged);
          const { keys } = await crdt.scan(RANGE, {}, { replica: others[1] });
          const byKey = new Map(keys.map((k) => [k.key, k]));
          strictEqual(byKey.get("durable")?.counter, 10);
          deepStrictEqual(byKey.get("s")?.set, [...present].sort());
        },
      );
    }
  } finally {
    await stack?.stop();
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
});
