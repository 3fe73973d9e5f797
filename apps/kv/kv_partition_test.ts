// A 5-node KV cluster on 5 hosts (network namespaces, @strata/hosts), each
// node binding and advertising its host's own address, under a load of
// clients in the machine's namespace: some spread over every node, one
// pinned to each node (so some clients sit on the minority side of every
// fault). Faults are real partitions: the leader isolated, a 2/3 split with
// the leader in the minority, a one-way loss from the leader to a follower,
// then heal. Every history (puts, linearizable and lease reads, CAS) is
// checked with packages/sim's checker, final reads included, so no
// acknowledged write may be lost. A second test splits 2/3 with two
// followers in the minority and checks multi-key transactions (in the
// checked history), a minority watcher resumed by revision (against a
// majority watch and a scan), a minority session's key and lock going, a
// fencing token refused, a member removed during the split and one added
// after it; a third pauses a cut-off leader inside its lease. Needs root;
// skipped with a message outside CI. STRATA_LONG=1 repeats the first
// test's faults and adds partial loss.
import assert from "node:assert/strict";
import { HostNetwork, skipWithoutHosts } from "@strata/hosts";
import { checkKvHistory, type KvOperation } from "@strata/sim";
import {
  KvClient,
  KvClientError,
  type KvSession,
  type KvWatchEvent,
} from "./client.ts";
import {
  type HostNode,
  HTTP_PORT,
  PEER_PORT,
  startHostCluster,
  startKvNode,
} from "./host_cluster.ts";

const LONG = Deno.env.get("STRATA_LONG") === "1";
const TICK_MS = 50; // election timeout 10-20 ticks: 0.5-1 s
const ELECTION_MS = 20 * TICK_MS;
const RESULTS_DIR = new URL("../../test-results/", import.meta.url).pathname;
// How long, at least, the clients pinned to cut-off nodes keep asking them.
const CUT_WINDOW_MS = 3000;
const skip = await skipWithoutHosts("kv_partition_test");

const sleepUntil = (t: number) =>
  new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

/**
 * The admin token of the running test cluster (nodes off loopback require
 * auth; the cluster generates one auth directory that its nodes share).
 */
let adminToken = "";

/** A client of the test cluster, with its token. */
function kvClient(
  urls: string[],
  options: ConstructorParameters<typeof KvClient>[1] = {},
): KvClient {
  return new KvClient(urls, { ...options, token: adminToken });
}

/** fetch with the test cluster's token. */
function authFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${adminToken}` },
  });
}

/** A cluster of `size` nodes, node i on host h<i>; closed with its network. */
async function withHostCluster(
  size: number,
  fn: (
    net: HostNetwork,
    nodes: Map<number, HostNode>,
    cluster: { peers: string; authDir: string; dataRoot: string },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-kv-partition-" });
  const net = await HostNetwork.create({ hosts: size });
  try {
    const { nodes, peers, secrets } = await startHostCluster(net, {
      dataRoot: dir,
      tickMs: TICK_MS,
    });
    adminToken = secrets.tokens.admin;
    for (const n of nodes.values()) {
      assert.equal(n.http, `${n.host.address}:${HTTP_PORT}`);
    }
    await fn(net, nodes, { peers, authDir: secrets.dir, dataRoot: dir });
  } catch (e) {
    // Read a failing history against the faults.
    console.error(`faults:\n${net.describeFaults()}`);
    throw e;
  } finally {
    await net.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

interface Status {
  id: number;
  role: string;
  term: number;
  leader: number;
  commitIndex: number;
  appliedIndex: number;
}

async function status(n: HostNode): Promise<Status | undefined> {
  try {
    const res = await authFetch(`http://${n.http}/v1/status`, {
      signal: AbortSignal.timeout(1000),
    });
    return await res.json();
  } catch {
    return undefined;
  }
}

/** Polls `check` every 50 ms until it returns a value; fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) {
      assert.fail(`${what}: not within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A node of `among` that says it leads, in a term a majority of `among` shares. */
function leaderAmong(
  nodes: HostNode[],
  timeoutMs = 6 * ELECTION_MS + 10_000,
): Promise<number> {
  return eventually(
    `a leader among ${nodes.map((n) => n.id)}`,
    timeoutMs,
    async () => {
      const all = await Promise.all(nodes.map(status));
      const s = all.find((x) => x?.role === "leader");
      return s !== undefined &&
          all.filter((x) => x?.term === s.term).length * 2 > nodes.length
        ? s.id
        : undefined;
    },
  );
}

/** Waits until node `n` no longer says it leads. */
function stepsDown(n: HostNode, timeoutMs = 4 * ELECTION_MS + 10_000) {
  return eventually(`node ${n.id} steps down`, timeoutMs, async () => {
    const s = await status(n);
    return s && s.role !== "leader" ? true : undefined;
  });
}

/** Waits until every node has applied what the leader had committed. */
async function converged(nodes: HostNode[]): Promise<void> {
  const leader = await leaderAmong(nodes);
  const commit = (await status(nodes.find((n) => n.id === leader)!))!
    .commitIndex;
  await eventually(`every node applies ${commit}`, 20_000, async () => {
    const all = await Promise.all(nodes.map(status));
    return all.every((s) => s && s.appliedIndex >= commit) ? true : undefined;
  });
}

const KEYS = 6;
const decode = (v: Uint8Array) => new TextDecoder().decode(v);

/**
 * Clients in the machine's namespace: `spread` of them use every node,
 * and one is pinned to each node. Each records puts, linearizable and
 * lease reads and CAS (after a read) on a few keys, with unique values.
 */
function startLoad(nodes: HostNode[], spread: number) {
  const history: KvOperation[] = [];
  // Reads that got no answer (left out of the history: they had no effect).
  const failedReads: Array<{ clientId: number; call: number }> = [];
  let acked = 0;
  let running = true;
  const endpoints = nodes.map((n) => n.http);
  // KvClient re-sends a write only when it surely was not applied (refused
  // connection, no_leader), so one call is one operation of the history. A
  // call that fails (unknown_outcome after a timeout, or no attempt left)
  // stays in as an unknown outcome: it may or may not have taken effect.
  // (When the client re-sent a put after a timeout, the first attempt could
  // still commit and the value resurfaced after a later acknowledged write.)
  const clients = [
    ...Array.from({ length: spread }, (_, c) =>
      kvClient(
        [...endpoints.slice(c % 5), ...endpoints.slice(0, c % 5)],
        { timeoutMs: 2500, attempts: 3 },
      )),
    ...nodes.map((n) => kvClient([n.http], { timeoutMs: 2500, attempts: 3 })),
  ];
  const workers = clients.map(async (kv, c) => {
    let seq = 0;
    while (running) {
      seq++;
      const key = `p/${(c * 5 + seq) % KEYS}`;
      const dice = (c * 31 + seq * 17) % 20;
      const call = performance.now();
      if (dice < 8) {
        const value = `c${c}-${seq}`;
        const op: KvOperation = {
          clientId: c,
          input: { op: "put", key, value },
          call,
        };
        history.push(op); // an unknown outcome stays in, without a return
        try {
          await kv.put(key, value);
          op.return = performance.now();
          op.output = { ok: true };
          acked++;
        } catch (e) {
          if (!(e instanceof KvClientError)) throw e;
        }
      } else if (dice < 16) {
        const consistency = dice < 13 ? "linearizable" : "lease";
        try {
          const e = await kv.get(key, consistency);
          history.push({
            clientId: c,
            input: { op: "get", key },
            call,
            return: performance.now(),
            output: { value: e ? decode(e.value) : null },
          });
        } catch (e) {
          if (!(e instanceof KvClientError)) throw e;
          failedReads.push({ clientId: c, call });
        }
      } else {
        // Read, then swap in a new value if nobody wrote in between.
        let expected: string | null;
        try {
          const e = await kv.get(key);
          expected = e ? decode(e.value) : null;
          history.push({
            clientId: c,
            input: { op: "get", key },
            call,
            return: performance.now(),
            output: { value: expected },
          });
        } catch (e) {
          if (!(e instanceof KvClientError)) throw e;
          failedReads.push({ clientId: c, call });
          continue;
        }
        const value = `c${c}-${seq}-cas`;
        const op: KvOperation = {
          clientId: c,
          input: { op: "cas", key, expected, value },
          call: performance.now(),
        };
        history.push(op);
        try {
          const r = await kv.cas(key, { value: expected }, value);
          op.return = performance.now();
          op.output = { ok: r.succeeded };
          if (r.succeeded) acked++;
        } catch (e) {
          if (!(e instanceof KvClientError)) throw e;
        }
      }
    }
  });
  return {
    history,
    failedReads,
    /** The client id of the client pinned to node `id`. */
    pinnedClient: (id: number) => spread + nodes.findIndex((n) => n.id === id),
    /** Waits until `n` more writes are acknowledged; fails after `timeoutMs`. */
    async moreAcks(n: number, timeoutMs = 30_000) {
      const target = acked + n;
      await eventually(
        `${n} more acknowledged writes`,
        timeoutMs,
        () => Promise.resolve(acked >= target ? true : undefined),
      );
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/**
 * After healing: final linearizable reads of every key join the history
 * (so a lost acknowledged write makes it illegal), every node holds the
 * same values (stale reads once converged), and the history is checked.
 */
async function checkHistory(
  net: HostNetwork,
  nodes: HostNode[],
  history: KvOperation[],
  keys: string[] = Array.from({ length: KEYS }, (_, k) => `p/${k}`),
): Promise<void> {
  await converged(nodes);
  const kv = kvClient(nodes.map((n) => n.http), {
    timeoutMs: 5000,
    attempts: 10,
  });
  const finals = new Map<string, string | null>();
  for (const key of keys) {
    const call = performance.now();
    const e = await kv.get(key);
    const value = e ? decode(e.value) : null;
    finals.set(key, value);
    history.push({
      clientId: -1,
      input: { op: "get", key },
      call,
      return: performance.now(),
      output: { value },
    });
  }
  await converged(nodes);
  for (const n of nodes) {
    const one = kvClient([n.http], { timeoutMs: 5000 });
    for (const [key, value] of finals) {
      const e = await one.get(key, "stale");
      assert.equal(e ? decode(e.value) : null, value, `${key} on node ${n.id}`);
    }
  }
  const acked = history.filter((o) => o.output !== undefined).length;
  const unknown = history.filter((o) => o.output === undefined).length;
  const started = performance.now();
  const result = checkKvHistory(history, { timeoutMs: 60_000 });
  console.log(
    `  history: ${history.length} operations (${acked} answered, ${unknown} unknown outcomes), check ${result.result} in ${
      (performance.now() - started).toFixed(0)
    } ms`,
  );
  if (result.result !== "ok") {
    // Keep the evidence: the whole history and the faults, same clock.
    const file = `${RESULTS_DIR}kv_partition_history.json`;
    await Deno.mkdir(RESULTS_DIR, { recursive: true });
    await Deno.writeTextFile(
      file,
      JSON.stringify({ faults: net.faults, history }, null, 1),
    );
    console.error(`history and faults written to ${file}`);
  }
  assert.equal(
    result.result,
    "ok",
    `history not linearizable: ${result.info ?? ""}`,
  );
}

Deno.test({
  name:
    "kv on 5 hosts: the leader isolated, a 2/3 split with the leader in the minority, a one-way loss from the leader; the majority keeps serving, every history is linearizable and no acknowledged write is lost",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withHostCluster(5, async (net, byId) => {
      const nodes = [...byId.values()].sort((a, b) => a.id - b.id);
      const node = (id: number) => byId.get(id)!;
      const load = startLoad(nodes, 5);
      // Nodes cut off from the majority, and when: a client pinned to one
      // must get no answer at all in that window (no write can commit and
      // no read can be confirmed there), from two election timeouts after
      // the cut (what was in flight may still land) until the heal.
      const cutOff: Array<{ nodes: number[]; from: number; to: number }> = [];
      try {
        await leaderAmong(nodes);
        await load.moreAcks(20);
        for (let round = 0; round < (LONG ? 3 : 1); round++) {
          // 1. The leader cut off from every other node (clients still reach it).
          const l1 = await leaderAmong(nodes);
          await net.isolate(node(l1).host);
          const cutAt = performance.now();
          const l2 = await leaderAmong(nodes.filter((n) => n.id !== l1));
          const failoverMs = performance.now() - cutAt;
          await stepsDown(node(l1));
          console.log(
            `  isolated leader ${l1}: node ${l2} leads after ${
              failoverMs.toFixed(0)
            } ms; ${l1} stepped down after ${
              (performance.now() - cutAt).toFixed(0)
            } ms`,
          );
          await load.moreAcks(20);
          await sleepUntil(cutAt + 2 * ELECTION_MS + CUT_WINDOW_MS);
          cutOff.push({
            nodes: [l1],
            from: cutAt + 2 * ELECTION_MS,
            to: performance.now(),
          });
          await net.heal();
          await converged(nodes);

          // 2. Split 2/3, the leader and one follower on the minority side.
          const l3 = await leaderAmong(nodes);
          const minority = [l3, nodes.find((n) => n.id !== l3)!.id];
          const majority = nodes.filter((n) => !minority.includes(n.id));
          await net.split(
            minority.map((id) => node(id).host),
            majority.map((n) => n.host),
          );
          const splitAt = performance.now();
          const l4 = await leaderAmong(majority);
          await stepsDown(node(l3));
          console.log(
            `  split ${minority} | ${
              majority.map((n) => n.id)
            }: node ${l4} leads the majority`,
          );
          await load.moreAcks(20);
          await sleepUntil(splitAt + 2 * ELECTION_MS + CUT_WINDOW_MS);
          cutOff.push({
            nodes: minority,
            from: splitAt + 2 * ELECTION_MS,
            to: performance.now(),
          });
          await net.heal();
          await converged(nodes);

          // 3. Packets from the leader to one follower dropped.
          const l5 = await leaderAmong(nodes);
          const follower = nodes.find((n) => n.id !== l5)!;
          await net.loss(node(l5).host, follower.host);
          await load.moreAcks(20);
          await net.heal();
          await converged(nodes);

          if (LONG) {
            // 4. Partial loss on every link of one node.
            const victim = nodes[round % nodes.length]!;
            for (const other of nodes.filter((n) => n !== victim)) {
              await net.loss(victim.host, other.host, 0.3);
              await net.loss(other.host, victim.host, 0.3);
            }
            await load.moreAcks(30, 60_000);
            await net.heal();
            await converged(nodes);
          }
        }
        await load.moreAcks(10);
      } finally {
        await load.stop();
      }
      for (const w of cutOff) {
        for (const id of w.nodes) {
          const c = load.pinnedClient(id);
          const answered = load.history.filter((o) =>
            o.clientId === c && o.return !== undefined && o.call >= w.from &&
            o.return <= w.to
          );
          assert.deepEqual(
            answered,
            [],
            `node ${id} answered while cut off from the majority`,
          );
          const asked = [...load.history, ...load.failedReads].filter((o) =>
            o.clientId === c && o.call >= w.from && o.call <= w.to
          ).length;
          console.log(
            `  node ${id} cut off for ${
              ((w.to - w.from) / 1000).toFixed(1)
            } s (after the first ${
              2 * ELECTION_MS
            } ms): ${asked} requests through it, none answered`,
          );
        }
      }
      await checkHistory(net, nodes, load.history);
    });
  },
});

/** A write guarded by a lock's fencing token (a transaction on the lock key's create revision). */
function fencedPut(kv: KvClient, token: number, value: string) {
  return kv.txn({
    compare: [{
      key: "_locks/job",
      target: "createRevision",
      op: "==",
      value: token,
    }],
    success: [{ op: "put", key: "job/output", value }],
  });
}

/** `fn`'s answer, or `undefined` when it failed with a KvClientError. */
async function orUndefined<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof KvClientError)) throw e;
    return undefined;
  }
}

/** The keys of the transaction load: single keys and a pair written together. */
const TXN_KEYS = ["t/0", "t/1", "t/2", "t/3", "t/a", "t/b"];

/** A txn answer's value of its `i`-th result (a `get`), null when absent. */
function txnValue(r: Record<string, unknown>, i: number): string | null {
  const results = r.results as Array<{ kv?: { value: string } }>;
  return results[i]?.kv?.value ?? null;
}

/**
 * Clients writing and reading `t/…` through the given endpoint lists (one
 * client per list): puts, linearizable gets and CAS on `t/0`-`t/3`, and
 * transactions on the pair `t/a`, `t/b`: a write of both guarded by a
 * compare of `t/a`'s value (its failure branch reads `t/a`), and a read of
 * both in one transaction, which must see them equal. For the checker a
 * pair write is a CAS on `t/a` and, when it succeeded (or its outcome is
 * unknown), a put on `t/b`; a pair read is a get of each.
 */
function startTxnLoad(endpointLists: string[][]) {
  const history: KvOperation[] = [];
  const torn: string[] = [];
  // Every call's start, answered or not (failed reads leave no operation).
  const calls: Array<{ clientId: number; call: number }> = [];
  const pairWrites = { succeeded: 0, failed: 0, unknown: 0 };
  let acked = 0;
  let running = true;
  const workers = endpointLists.map(async (endpoints, c) => {
    const kv = kvClient(endpoints, { timeoutMs: 2500, attempts: 3 });
    let a = "init"; // t/a as this client last saw it
    for (let seq = 1; running; seq++) {
      const dice = (c * 7 + seq * 13) % 10;
      const call = performance.now();
      calls.push({ clientId: c, call });
      const key = `t/${(c + seq) % 4}`;
      const value = `c${c}-${seq}`;
      if (dice < 3) {
        const op: KvOperation = {
          clientId: c,
          input: { op: "put", key, value },
          call,
        };
        history.push(op);
        if (await orUndefined(() => kv.put(key, value)) !== undefined) {
          op.return = performance.now();
          op.output = { ok: true };
          acked++;
        }
      } else if (dice < 5) {
        const got = await orUndefined(async () => ({ e: await kv.get(key) }));
        if (got) {
          history.push({
            clientId: c,
            input: { op: "get", key },
            call,
            return: performance.now(),
            output: { value: got.e ? decode(got.e.value) : null },
          });
        }
      } else if (dice < 6) {
        const got = await orUndefined(async () => ({ e: await kv.get(key) }));
        if (!got) continue;
        const expected = got.e ? decode(got.e.value) : null;
        history.push({
          clientId: c,
          input: { op: "get", key },
          call,
          return: performance.now(),
          output: { value: expected },
        });
        const op: KvOperation = {
          clientId: c,
          input: { op: "cas", key, expected, value },
          call: performance.now(),
        };
        history.push(op);
        const r = await orUndefined(() =>
          kv.cas(key, { value: expected }, value)
        );
        if (r) {
          op.return = performance.now();
          op.output = { ok: r.succeeded };
          if (r.succeeded) acked++;
        }
      } else if (dice < 8) {
        const opA: KvOperation = {
          clientId: c,
          input: { op: "cas", key: "t/a", expected: a, value },
          call,
        };
        const opB: KvOperation = {
          clientId: c,
          input: { op: "put", key: "t/b", value },
          call,
        };
        history.push(opA, opB);
        const r = await orUndefined(() =>
          kv.txn({
            compare: [{ key: "t/a", target: "value", op: "==", value: a }],
            success: [
              { op: "put", key: "t/a", value },
              { op: "put", key: "t/b", value },
            ],
            failure: [{ op: "get", key: "t/a" }],
          })
        );
        if (!r) { // unknown outcome: both stay in, unanswered
          pairWrites.unknown++;
          continue;
        }
        const at = performance.now();
        opA.return = at;
        opA.output = { ok: r.succeeded === true };
        if (r.succeeded === true) {
          opB.return = at;
          opB.output = { ok: true };
          a = value;
          acked++;
          pairWrites.succeeded++;
        } else {
          pairWrites.failed++;
          // It did not write t/b; what it read of t/a is a get at its point.
          history.splice(history.indexOf(opB), 1);
          a = txnValue(r, 0) ?? "init";
          history.push({
            clientId: c,
            input: { op: "get", key: "t/a" },
            call,
            return: at,
            output: { value: txnValue(r, 0) },
          });
        }
      } else {
        const r = await orUndefined(() =>
          kv.txn({
            success: [{ op: "get", key: "t/a" }, { op: "get", key: "t/b" }],
          })
        );
        if (!r) continue;
        const at = performance.now();
        const [va, vb] = [txnValue(r, 0), txnValue(r, 1)];
        if (va !== vb) torn.push(`t/a=${va} t/b=${vb}`);
        if (va !== null) a = va;
        for (const [key, v] of [["t/a", va], ["t/b", vb]] as const) {
          history.push({
            clientId: c,
            input: { op: "get", key },
            call,
            return: at,
            output: { value: v },
          });
        }
      }
    }
  });
  return {
    history,
    torn,
    calls,
    pairWrites,
    /** Waits until `n` more writes are acknowledged; fails after `timeoutMs`. */
    async moreAcks(n: number, timeoutMs = 30_000) {
      const target = acked + n;
      await eventually(
        `${n} more acknowledged writes`,
        timeoutMs,
        () => Promise.resolve(acked >= target ? true : undefined),
      );
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** A watch's events as comparable lines. */
function eventLines(events: KvWatchEvent[]): string[] {
  return events.map((e) =>
    `${e.revision} ${e.type} ${e.key}${e.value ? ` ${decode(e.value)}` : ""}`
  );
}

/**
 * Collects `prefix`'s events from `from` into `into` until `signal`
 * aborts; errors other than the abort are kept in `errors`.
 */
async function collectWatch(
  kv: KvClient,
  prefix: string,
  from: number,
  into: KvWatchEvent[],
  signal: AbortSignal,
  errors: string[],
): Promise<void> {
  try {
    for await (const e of kv.watch(prefix, from, signal)) into.push(e);
  } catch (e) {
    if (!signal.aborted) errors.push(String(e));
  }
}

Deno.test({
  name:
    "kv on 5 hosts, a 2/3 split: sessions, locks, watches, transactions and a member removed and another added; nothing acknowledged is lost, the minority answers nothing, its watcher sees every event once and no other, the holder's session ends with its keys and lock, and its fencing token is refused after healing",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await withHostCluster(5, async (net, byId, cluster) => {
      const nodes = [...byId.values()].sort((a, b) => a.id - b.id);
      const leader = await leaderAmong(nodes);
      await eventually("every node knows the leader", 20_000, async () => {
        const all = await Promise.all(nodes.map(status));
        return all.every((x) => x?.leader === leader) ? true : undefined;
      });
      // m1 and m2, two followers, end up on the minority side; m2 is
      // removed from the cluster during the split.
      const [m1, m2] = nodes.filter((n) => n.id !== leader) as [
        HostNode,
        HostNode,
      ];
      const majority = nodes.filter((n) => n !== m1 && n !== m2);
      const admin = kvClient(majority.map((n) => n.http), {
        timeoutMs: 3000,
        attempts: 6,
      });
      const init = await admin.txn({
        success: [
          { op: "put", key: "t/a", value: "init" },
          { op: "put", key: "t/b", value: "init" },
        ],
      });
      const from = init.revision as number;
      const all = nodes.map((n) => n.http);
      // Three clients over every node, one pinned to each minority node.
      const load = startTxnLoad([
        all,
        [...all.slice(2), ...all.slice(0, 2)],
        [...all.slice(4), ...all.slice(0, 4)],
        [m1.http],
        [m2.http],
      ]);
      const pinned = [3, 4];
      load.history.push(
        ...(["t/a", "t/b"] as const).map((key) => ({
          clientId: -2,
          input: { op: "put" as const, key, value: "init" },
          call: 0,
          return: 0,
          output: { ok: true },
        })),
      );
      // A watcher on m1, resumed by revision during the split.
      const watched: KvWatchEvent[] = [];
      const watchErrors: string[] = [];
      const watcher = kvClient([m1.http], { timeoutMs: 3000, attempts: 100 });
      const w1 = new AbortController();
      const watching = [
        collectWatch(watcher, "t/", from, watched, w1.signal, watchErrors),
      ];
      const w2 = new AbortController();
      // Holder A talks to m1 only.
      const a = kvClient([m1.http], { timeoutMs: 2000, attempts: 6 });
      const sessionA = await a.openSession(2000);
      const tokenA = await a.lock("job", sessionA.id);
      assert.ok(tokenA !== undefined, "A takes the free lock");
      await a.put("eph/a", "held by A", { session: sessionA.id });
      assert.equal((await fencedPut(a, tokenA, "a1")).succeeded, true);
      let sessionB: KvSession | undefined;
      /** The voters, as they change. */
      let voting: HostNode[] = [];
      let splitAt = 0;
      let healAt = 0;
      try {
        await load.moreAcks(15);
        await eventually(
          "m1's watcher sees events",
          20_000,
          () => Promise.resolve(watched.length > 0 ? true : undefined),
        );

        await net.split([m1.host, m2.host], majority.map((n) => n.host));
        splitAt = performance.now();
        const b = kvClient(majority.map((n) => n.http), {
          timeoutMs: 3000,
          attempts: 4,
        });
        const sb = sessionB = await b.openSession(10_000);
        await b.put("eph/b", "held by B", { session: sb.id });

        await t.step(
          "the minority's session ends with its key and lock",
          async () => {
            // A's keep-alives no longer reach the leader: its session
            // expires, its key goes, the lock is free for B (higher token).
            const tokenB = await eventually(
              "B takes the lock",
              30_000,
              () => orUndefined(() => b.lock("job", sb.id)),
            );
            console.log(
              `  lock moved from A (token ${tokenA}) to B (token ${tokenB}) ${
                (performance.now() - splitAt).toFixed(0)
              } ms after the split`,
            );
            assert.ok(tokenB > tokenA);
            assert.equal(await b.get("eph/a"), undefined, "A's key is gone");
            assert.ok(await b.get("eph/b"), "B's key stays");
            assert.equal((await fencedPut(b, tokenB, "b1")).succeeded, true);
            // A, cut off, cannot write with its old token.
            const during = await orUndefined(() => fencedPut(a, tokenA, "a2"));
            assert.notEqual(during?.succeeded, true);
            await eventually(
              "A sees its session lost",
              10_000,
              () => Promise.resolve(sessionA.lost ? true : undefined),
            );
          },
        );

        await t.step("m2 is removed by the majority", async () => {
          // The watcher on m1 is stopped and resumed from the revision
          // after the last it saw, still cut off.
          w1.abort();
          await watching[0];
          const next = watched.at(-1)!.revision + 1;
          watching.push(
            collectWatch(watcher, "t/", next, watched, w2.signal, watchErrors),
          );
          await load.moreAcks(15);
          const r = await orUndefined(() =>
            admin.changeMembers([{ action: "remove", id: m2.id }])
          );
          const voters = await eventually(
            "m2 out of the voters",
            20_000,
            async () => {
              const c = await orUndefined(() => admin.cluster());
              const v = c?.voters as number[] | undefined;
              return v && !v.includes(m2.id) && c?.joint === false
                ? v
                : undefined;
            },
          );
          console.log(
            `  removed ${m2.id} during the split (${
              r ? "answered" : "unknown outcome, then seen"
            }): voters ${voters}`,
          );
          await load.moreAcks(15);
        });
        // At least 3 s of cut-off, then heal.
        await sleepUntil(splitAt + 2 * ELECTION_MS + CUT_WINDOW_MS);
        await net.heal();
        healAt = performance.now();
        voting = [...majority, m1];
        await converged(voting);

        await t.step("A's old token is refused after healing", async () => {
          // Re-sent after an unknown outcome (a slow machine): it can only
          // fail its compare, so a second copy changes nothing.
          const after = await eventually(
            "an answer to A's fenced write",
            30_000,
            () => orUndefined(() => fencedPut(a, tokenA, "a3")),
          );
          assert.equal(after.succeeded, false);
          const lock = await authFetch(`http://${m1.http}/v1/locks/job`, {
            signal: AbortSignal.timeout(5000),
          });
          const json = await lock.json();
          assert.equal(json.holder, sb.id);
          assert.equal(
            decode((await a.get("job/output"))!.value),
            "b1",
          );
          assert.equal(await a.get("eph/a"), undefined);
        });

        await t.step("a new member is added right after the heal", async () => {
          // m2's process goes; node 6 joins on its host, on other ports.
          m2.proc.child.kill("SIGKILL");
          await m2.proc.child.status;
          const id = 6;
          const proc = await startKvNode(
            net,
            m2.host,
            id,
            cluster.peers,
            `${cluster.dataRoot}/node-${id}`,
            {
              tickMs: TICK_MS,
              authDir: cluster.authDir,
              join: true,
              peerPort: PEER_PORT + 1,
              httpPort: HTTP_PORT + 1,
            },
          );
          const n6: HostNode = {
            id,
            host: m2.host,
            http: proc.ready.http,
            proc,
          };
          byId.set(id, n6);
          await eventually(
            "node 6 is added",
            30_000,
            () =>
              orUndefined(() =>
                admin.changeMembers([{
                  action: "add",
                  id,
                  peerAddress: `${m2.host.address}:${PEER_PORT + 1}`,
                  httpAddress: n6.http,
                }])
              ),
          );
          voting.push(n6);
          await load.moreAcks(15);
          await converged(voting);
          const c = await admin.cluster();
          assert.deepEqual(
            (c.voters as number[]).toSorted((x, y) => x - y),
            voting.map((n) => n.id).toSorted((x, y) => x - y),
          );
        });

        // A removal sent to the leader just before it is isolated (it may
        // commit or not), then one sent once it is isolated (the majority
        // never sees it: it must not apply). Either way every voter ends
        // up with the same configuration, and an acknowledged change holds.
        for (const cutFirst of LONG ? [false, true] : []) {
          await t.step(
            `a removal sent to the leader ${
              cutFirst ? "once it is cut off" : "as it is cut off"
            } leaves one configuration`,
            async () => {
              const l = byId.get(await leaderAmong(voting))!;
              const f = voting.find((n) =>
                n !== l && n !== m1 && n !== majority[0]
              )!;
              if (cutFirst) await net.isolate(l.host);
              const change = orUndefined(() =>
                kvClient([l.http], { timeoutMs: 5000, attempts: 1 })
                  .changeMembers([{ action: "remove", id: f.id }])
              );
              if (!cutFirst) {
                await new Promise((r) => setTimeout(r, 20));
                await net.isolate(l.host);
              }
              await leaderAmong(voting.filter((n) => n !== l));
              const answer = await change;
              await load.moreAcks(15);
              await net.heal();
              const voters = await eventually(
                "the voters agree on one configuration",
                30_000,
                async () => {
                  const views = await Promise.all(
                    voting.map((n) =>
                      orUndefined(() =>
                        kvClient([n.http], { timeoutMs: 2000 }).cluster()
                      )
                    ),
                  );
                  const key = (v: Record<string, unknown> | undefined) =>
                    v && v.joint === false
                      ? JSON.stringify(
                        (v.voters as number[]).toSorted((x, y) => x - y),
                      )
                      : undefined;
                  const leaderView = views.find((v) =>
                    v?.leader !== undefined &&
                    voting.find((n) => n.id === v.leader) !== undefined
                  );
                  const want = key(leaderView);
                  if (want === undefined) return undefined;
                  const ids = JSON.parse(want) as number[];
                  // Every voter of that configuration sees it (a removed
                  // node need not learn it was removed).
                  return voting.every((n, i) =>
                      !ids.includes(n.id) || key(views[i]) === want
                    )
                    ? ids
                    : undefined;
                },
              );
              const removed = !voters.includes(f.id);
              console.log(
                `  removal of ${f.id} sent to leader ${l.id} ${
                  cutFirst ? "once" : "as"
                } it was isolated: ${answer ? "acknowledged" : "no answer"}, ${
                  removed ? "applied" : "not applied"
                }; voters ${voters}`,
              );
              if (answer) assert.ok(removed, "an acknowledged removal is lost");
              if (cutFirst) {
                assert.ok(!removed, "a removal the majority never saw applied");
              }
              if (removed) voting = voting.filter((n) => n !== f);
              await load.moreAcks(15);
              await converged(voting);
            },
          );
        }
      } finally {
        await load.stop();
        await sessionB?.close().catch(() => {});
      }
      const members = voting;
      // The minority answered nothing from two election timeouts after the
      // split until the heal.
      for (const c of pinned) {
        const answered = load.history.filter((o) =>
          o.clientId === c && o.return !== undefined &&
          o.call >= splitAt + 2 * ELECTION_MS && o.return <= healAt
        );
        assert.deepEqual(answered, [], `client ${c} answered while cut off`);
        const asked = load.calls.filter((o) =>
          o.clientId === c && o.call >= splitAt + 2 * ELECTION_MS &&
          o.call <= healAt
        ).length;
        console.log(
          `  client pinned to node ${
            c === 3 ? m1.id : m2.id
          }: ${asked} requests while cut off, none answered`,
        );
        assert.ok(asked > 0, `client ${c} asked nothing while cut off`);
      }
      console.log(
        `  pair transactions: ${load.pairWrites.succeeded} succeeded, ${load.pairWrites.failed} failed their compare, ${load.pairWrites.unknown} unknown`,
      );
      assert.deepEqual(load.torn, [], "a transaction read t/a and t/b apart");

      await t.step(
        "m1's watcher saw every event once and no other",
        async () => {
          // The last event, written once the load stopped.
          const end = await admin.put("t/end", "end");
          const reference: KvWatchEvent[] = [];
          const ref = new AbortController();
          const refDone = collectWatch(
            kvClient([majority[0]!.http], { timeoutMs: 3000 }),
            "t/",
            from,
            reference,
            ref.signal,
            watchErrors,
          );
          const reached = (list: KvWatchEvent[]) => () =>
            Promise.resolve(
              list.at(-1) !== undefined && list.at(-1)!.revision >= end
                ? true
                : undefined,
            );
          await eventually(
            "the reference watch reaches t/end",
            20_000,
            reached(reference),
          );
          await eventually(
            "m1's watcher reaches t/end",
            20_000,
            reached(watched),
          );
          ref.abort();
          w2.abort();
          await Promise.all([refDone, ...watching]);
          assert.deepEqual(watchErrors, []);
          assert.deepEqual(eventLines(watched), eventLines(reference));
          // Replaying the events gives what a linearizable scan reads.
          const replayed = new Map<string, string>();
          for (const e of reference) {
            if (e.type === "put") replayed.set(e.key, decode(e.value!));
            else replayed.delete(e.key);
          }
          const scanned = new Map<string, string>();
          for await (const e of admin.scan("t/")) {
            scanned.set(e.key, decode(e.value));
          }
          assert.deepEqual(replayed, scanned);
          console.log(
            `  m1's watcher: ${watched.length} events from revision ${from} to ${end}, as a majority node's watch and the scan`,
          );
        },
      );
      await checkHistory(net, members, load.history, TXN_KEYS);
      await sessionA.close().catch(() => {});
    });
  },
});

Deno.test({
  name:
    "kv on 3 hosts: a leader paused (SIGSTOP) and cut off, resumed after the majority wrote, never answers a lease read with the old value",
  // lease_pause_test.ts pauses a leader on loopback in the default suite;
  // this one adds the cut (about 12 s idle): with the long tests.
  ignore: skip || !LONG,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withHostCluster(3, async (net, byId) => {
      const nodes = [...byId.values()].sort((a, b) => a.id - b.id);
      const all = kvClient(nodes.map((n) => n.http), {
        timeoutMs: 3000,
        attempts: 10,
      });
      for (let round = 0; round < 2; round++) {
        await all.put("lease/k", `old${round}`);
        const old = byId.get(await leaderAmong(nodes))!;
        // Paused within its lease, then cut off: its ticks stop while the
        // others time out, elect and commit a newer value.
        old.proc.child.kill("SIGSTOP");
        try {
          await net.isolate(old.host);
          const majority = kvClient(
            nodes.filter((n) => n !== old).map((n) => n.http),
            { timeoutMs: 3000, attempts: 20 },
          );
          // A put forwarded to the paused leader times out with an unknown
          // outcome (the client does not re-send it). This test is the only
          // writer of the key and writes the same value, so it may re-send.
          for (let tries = 1;; tries++) {
            try {
              await majority.put("lease/k", `new${round}`);
              break;
            } catch (e) {
              if (
                !(e instanceof KvClientError &&
                  e.code === "unknown_outcome") || tries >= 10
              ) throw e;
            }
          }
        } finally {
          old.proc.child.kill("SIGCONT");
        }
        const res = await authFetch(
          `http://${old.http}/v1/kv/lease/k?consistency=lease`,
          { signal: AbortSignal.timeout(5000) },
        ).catch(() => undefined);
        const body = res ? await res.text() : "no answer";
        console.log(
          `  round ${round}: resumed old leader ${old.id} answers ${
            res?.status ?? "-"
          } ${body.slice(0, 80)}`,
        );
        assert.ok(
          res?.status !== 200 || JSON.parse(body).value !== `old${round}`,
          `stale lease read from the resumed old leader: ${body}`,
        );
        await net.heal();
        await converged(nodes);
      }
    });
  },
});
