// Session expiry against steps of the wall clock, in process: a one-node
// cell whose process's wall clock (Date.now, which the node's default
// clock port reads) is stepped as NTP or a VM resume would. The leader
// measures sessions on its monotonic clock, so a forward step of an hour
// ends nothing, and a backward step keeps nothing alive past its TTL.
import assert from "node:assert/strict";
import type { KvNode } from "./kv_node.ts";
import { KvClient } from "./client.ts";
import { startLocalCluster } from "./cluster_launcher.ts";
import { wallStepper } from "./wall_step_flag.ts";
import { startOneNode } from "./_one_node.ts";

const TTL_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `body` against a fresh one-node cell holding session `id` (TTL
 * TTL_MS) with key "held" bound to it, the wall clock steppable.
 */
async function withSession(
  body: (
    node: KvNode,
    id: number,
    wall: ReturnType<typeof wallStepper>,
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "strata-session-clock-" });
  const wall = wallStepper();
  const node = await startOneNode(dir);
  try {
    const open = await node.propose(
      { op: "session_open", ttlMs: TTL_MS, now: Date.now() },
      AbortSignal.timeout(5000),
    );
    assert.equal(open.op, "session_open");
    const id = open.op === "session_open" ? open.id : 0;
    await node.propose(
      { op: "put", key: "held", value: new Uint8Array([1]), session: id },
      AbortSignal.timeout(5000),
    );
    await body(node, id, wall);
  } finally {
    await node.stop();
    wall.restore();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Waits until the session's key is gone, checking it went no earlier than
 * TTL_MS after `sentAt` (the last keep-alive was sent then) and no later
 * than 2 s past that.
 */
async function endsOneTtlAfter(node: KvNode, id: number, sentAt: number) {
  while (node.store.get("held")) {
    const silent = performance.now() - sentAt;
    assert.ok(
      silent < TTL_MS + 2000,
      `the session lived ${
        silent.toFixed(0)
      } ms past its last keep-alive (TTL ${TTL_MS})`,
    );
    await sleep(10);
  }
  const endedAfter = performance.now() - sentAt;
  assert.ok(
    endedAfter >= TTL_MS,
    `ended ${endedAfter.toFixed(0)} ms after its last keep-alive`,
  );
  assert.equal(node.store.session(id), undefined);
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

test("the leader's wall clock stepped an hour forward ends no kept-alive session, which still ends one TTL after its last keep-alive", async () => {
  await withSession(async (node, id, wall) => {
    // Kept alive every TTL/4 over 2.5 TTLs; the wall clock jumps an hour
    // ahead after the first keep-alive.
    let sentAt = 0;
    for (let i = 0; i < 10; i++) {
      sentAt = performance.now();
      await node.keepAlive(id, AbortSignal.timeout(5000));
      if (i === 0) wall.step(3_600_000);
      await sleep(TTL_MS / 4);
      assert.ok(
        node.store.get("held"),
        `the session ended ${
          i + 1
        } keep-alives after the wall clock jumped forward`,
      );
    }
    await endsOneTtlAfter(node, id, sentAt);
  });
});

test("the leader's wall clock stepped an hour back keeps a silent session no longer than its TTL", async () => {
  await withSession(async (node, id, wall) => {
    const sentAt = performance.now();
    await node.keepAlive(id, AbortSignal.timeout(5000));
    wall.step(-3_600_000);
    await endsOneTtlAfter(node, id, sentAt);
  });
});

// The same with real node processes (`--test-wall-step-ms`: SIGUSR1 steps
// a node's wall clock forward, SIGUSR2 back), and a leader paused with
// SIGSTOP and resumed with its wall clock stepped forward, as a VM resume.
test("real nodes: the leader's wall clock stepped forward, the leader paused and resumed an hour ahead, a new leader's clock stepped back; the session lives while kept alive and ends one TTL after its last keep-alive", async () => {
  const PROCESS_TTL_MS = 1000;
  const dir = await Deno.makeTempDir({ prefix: "strata-session-clock-p-" });
  const cluster = await startLocalCluster({
    size: 3,
    dataRoot: dir,
    extraArgs: ["--tick-ms", "20", "--test-wall-step-ms", "3600000"],
  });
  let keeping = true;
  let loop: Promise<void> | undefined;
  try {
    const token = cluster.secrets!.tokens.admin;
    const leader = async () => {
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) {
        for (const n of cluster.nodes.values()) {
          const s = await fetch(`${n.url}/v1/status`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(300),
          }).then((r) => r.json()).catch(() => undefined);
          if (s?.role === "leader") return s.id as number;
        }
        await sleep(25);
      }
      throw new Error("no leader");
    };
    const first = await leader();
    const kv = new KvClient([...cluster.nodes.values()].map((n) => n.url), {
      token,
      timeoutMs: 400,
      attempts: 10,
    });
    const session = await kv.openSession(PROCESS_TTL_MS, { keepAlive: false });
    await kv.put("held", "yes", { session: session.id });
    // Keep-alives every TTL/4 (errors while a leader is paused: retried).
    let lastSent = 0;
    loop = (async () => {
      while (keeping) {
        const sent = performance.now();
        try {
          await kv.keepAlive(session.id);
          lastSent = sent;
        } catch { /* a paused leader; the next one tries again */ }
        await sleep(PROCESS_TTL_MS / 4);
      }
    })();
    /** Reads the key for `ms`: it must never be gone. */
    const staysFor = async (ms: number, what: string) => {
      const until = performance.now() + ms;
      let reads = 0;
      while (performance.now() < until) {
        const v = await kv.get("held").catch(() => null);
        assert.notEqual(v, undefined, `the session ended ${what}`);
        if (v !== null) reads++;
        await sleep(50);
      }
      assert.ok(reads > 0, `no read answered ${what}`);
    };

    cluster.signal(first, "SIGUSR1"); // an hour ahead
    await staysFor(2 * PROCESS_TTL_MS, "after the leader's wall clock jumped");

    // A VM pause: stopped past the TTL (a new leader takes over), resumed
    // with its wall clock a further hour ahead.
    cluster.signal(first, "SIGSTOP");
    await staysFor(1.5 * PROCESS_TTL_MS, "while the leader was paused");
    cluster.signal(first, "SIGCONT");
    cluster.signal(first, "SIGUSR1");
    await staysFor(1.5 * PROCESS_TTL_MS, "after the old leader resumed");

    // Whoever leads now: its wall clock an hour back, and silence.
    const now = await leader();
    cluster.signal(now, "SIGUSR2");
    keeping = false;
    await loop;
    const sentAt = lastSent;
    const deadline = performance.now() + 10_000;
    while ((await kv.get("held").catch(() => null)) !== undefined) {
      assert.ok(performance.now() < deadline, "the session never ended");
      await sleep(25);
    }
    const endedAfter = performance.now() - sentAt;
    assert.ok(
      endedAfter >= PROCESS_TTL_MS && endedAfter < PROCESS_TTL_MS + 3000,
      `ended ${
        endedAfter.toFixed(0)
      } ms after its last keep-alive (TTL ${PROCESS_TTL_MS})`,
    );
  } finally {
    keeping = false;
    await loop?.catch(() => {});
    await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
