/**
 * bench:learners — what client learners cost a kv cluster (3 node
 * processes on loopback), beside the same number of HTTP watchers (SSE,
 * the stream `KvClient.watch` reads), under the same fixed-rate write load:
 *
 * - the leader's CPU time and raft bytes sent with no subscribers, with N
 *   learners attached to the two followers, and with N SSE watchers on the
 *   same followers (goal: learners leave the leader's work where it was);
 * - the serving followers' CPU time, and the bytes each subscriber is sent
 *   per committed change (learner frames vs SSE events);
 * - what multi-packet compression would make of one pump's frames for N
 *   learners (one blob for all) against one frame per learner.
 *
 * The subscribers live in this process (the machine has 2 cores); its
 * CPU time is recorded too. The counts are STRATA_LEARNERS_COUNTS
 * (default "1000,10000"); a count the machine cannot hold is recorded as
 * failed, with the reason, and the next is tried.
 */
import { Buffer } from "node:buffer";
import { zstdCompressSync } from "node:zlib";
import { encodeFrame } from "@strata/codec";
import { pack } from "@strata/transport";
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { Changes, type Follower, KvClient, learnerMessages } from "@strata/kv";
import { QUICK, Suite } from "./harness.ts";
import { cpuMs } from "./proc_cpu.ts";

/** Subscriber counts measured, each against the same no-subscriber phase. */
const COUNTS = (Deno.env.get("STRATA_LEARNERS_COUNTS") ??
  (QUICK ? "40" : "1000,10000")).split(",").map(Number);
/** The count the one-change packing figure is computed for. */
const N = Math.max(...COUNTS);
const PHASE_MS = QUICK ? 1500 : 8000;
// Low enough that the shared 2-core machine keeps the rate with every
// subscriber in this process, so per-second figures compare.
const WRITES_PER_SEC = Number(Deno.env.get("STRATA_LEARNERS_RATE") ?? 20);
const VALUE = "v".repeat(100);
const KEYS = 100;

const suite = new Suite(
  "learners",
  `kv client learners vs SSE watchers: leader and follower CPU, bytes per change, 0 / ${
    COUNTS.join(" / ")
  } subscribers on the followers, ${WRITES_PER_SEC} puts/s`,
);

const dir = await Deno.makeTempDir({ prefix: "strata-bench-learners-" });
const cluster = await startLocalCluster({
  dataRoot: dir,
  extraArgs: ["--tick-ms", "50"],
});
const tokens = cluster.secrets!.tokens;
const all = [...cluster.nodes.values()];
const writer = new KvClient(all.map((n) => n.url), {
  token: tokens.write,
  timeoutMs: 5000,
});

async function status(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v1/status`, {
    headers: { authorization: `Bearer ${tokens.read}` },
  });
  return await res.json();
}

async function raftBytesSent(url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${tokens.read}` },
  });
  let sum = 0;
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("strata_raft_bytes_sent_total")) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

async function learnerBytesSent(urls: string[]): Promise<number> {
  let sum = 0;
  for (const u of urls) {
    const s = await status(u) as { clientLearners?: { bytesSent: number } };
    sum += s.clientLearners?.bytesSent ?? 0;
  }
  return sum;
}

// A leader, and writes going.
for (let i = 0;; i++) {
  try {
    await writer.put("p/0", VALUE);
    break;
  } catch (e) {
    if (i > 200) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const leaderId = (await status(all[0]!.url)).leader as number;
const leader = cluster.nodes.get(leaderId)!;
const followers = all.filter((n) => n.id !== leaderId);
// The load goes to the leader itself: a put through a follower would wait on
// the subscribers that follower serves, and would share this process's
// connections to it with the subscribers.
const loadWriter = new KvClient([leader.url], {
  token: tokens.write,
  timeoutMs: 5000,
});
console.log(
  `leader ${leaderId}; subscribers go to followers ${
    followers.map((f) => f.id).join(", ")
  }; N = ${N}`,
);

/** Puts at a fixed rate for `ms`; @returns the writes acknowledged. */
async function writeLoad(ms: number): Promise<number> {
  let acked = 0;
  let inFlight = 0;
  let seq = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  while (performance.now() - start < ms) {
    const due = Math.floor((performance.now() - start) * WRITES_PER_SEC / 1000);
    while (seq < due && inFlight < 64) {
      inFlight++;
      const p = loadWriter.put(`p/${seq++ % KEYS}`, VALUE).then(
        () => void acked++,
        () => {},
      ).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  return acked;
}

interface Phase {
  seconds: number;
  leaderCpuMs: number;
  followersCpuMs: number;
  clientCpuMs: number;
  leaderRaftBytes: number;
  changes: number;
}

async function measurePhase(name: string): Promise<Phase> {
  const pids = (ns: typeof all) => ns.map((n) => n.process.pid);
  const cpu0 = await cpuMs(pids([leader]));
  const fcpu0 = await cpuMs(pids(followers));
  const self0 = await cpuMs([Deno.pid]);
  const raft0 = await raftBytesSent(leader.url);
  const t0 = performance.now();
  const changes = await writeLoad(PHASE_MS);
  const seconds = (performance.now() - t0) / 1000;
  const phase: Phase = {
    seconds,
    leaderCpuMs: await cpuMs(pids([leader])) - cpu0,
    followersCpuMs: await cpuMs(pids(followers)) - fcpu0,
    clientCpuMs: await cpuMs([Deno.pid]) - self0,
    leaderRaftBytes: await raftBytesSent(leader.url) - raft0,
    changes,
  };
  console.log(
    `${name}: ${changes} puts in ${seconds.toFixed(1)} s; leader CPU ${
      phase.leaderCpuMs.toFixed(0)
    } ms, followers ${phase.followersCpuMs.toFixed(0)} ms, this process ${
      phase.clientCpuMs.toFixed(0)
    } ms; leader raft bytes ${phase.leaderRaftBytes}`,
  );
  console.log(
    `${name}: leader ${(phase.leaderCpuMs / seconds).toFixed(0)} CPU ms/s`,
  );
  suite.metric(`${name}: puts`, changes);
  suite.metric(`${name}: seconds`, Number(seconds.toFixed(2)));
  suite.metric(`${name}: leader CPU ms`, Math.round(phase.leaderCpuMs));
  suite.metric(`${name}: followers CPU ms`, Math.round(phase.followersCpuMs));
  suite.metric(
    `${name}: subscriber process CPU ms`,
    Math.round(phase.clientCpuMs),
  );
  suite.metric(`${name}: leader raft bytes sent`, phase.leaderRaftBytes);
  return phase;
}

/** What one phase of N learners, and one of N SSE watchers, measured. */
interface Level {
  n: number;
  learners: Phase;
  learnerBytes: number;
  learnerChanges: number;
  sse: Phase;
  sseBytes: number;
  sseEvents: number;
}

/** N learners on the followers, then N SSE watchers on the same followers. */
async function measureLevel(n: number): Promise<Level> {
  const reader = new KvClient(all.map((m) => m.url), { token: tokens.read });
  const learners: Follower[] = [];
  // Changes the learners applied while their bytes were counted.
  let counting = false;
  let learnerChanges = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i += 50) {
    learners.push(
      ...await Promise.all(
        Array.from(
          { length: Math.min(50, n - i) },
          (_, j) =>
            reader.follow("p/", {
              members: [followers[(i + j) % 2]!.learner!],
              idleTimeoutMs: 30_000,
              startTimeoutMs: 60_000,
              onUpdate: (u) => {
                if (counting) learnerChanges += u.changes.length;
              },
            }),
        ),
      ),
    );
  }
  console.log(
    `${n} learners subscribed in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  const followerUrls = followers.map((f) => f.url);
  const lb0 = await learnerBytesSent(followerUrls);
  counting = true;
  const withLearners = await measurePhase(`${n} learners`);
  const learnerBytes = await learnerBytesSent(followerUrls) - lb0;
  counting = false;
  const lastRevision = (await status(leader.url)).appliedIndex as number;
  // Every replica catches up after the load (else the level failed: say how).
  const caughtUp = await Promise.allSettled(
    learners.map((f) => f.waitFor(lastRevision, { timeoutMs: 120_000 })),
  );
  const behind = learners.filter((_, i) => caughtUp[i]!.status === "rejected");
  await Promise.all(learners.map((f) => f.close()));
  if (behind.length > 0) {
    throw new Error(
      `${behind.length} of ${n} replicas did not reach revision ${lastRevision} within 120 s after the load (lowest ${
        Math.min(...behind.map((f) => f.revision))
      }; ${
        behind.filter((f) => f.member === undefined).length
      } of them disconnected; reconnects among them ${
        behind.reduce((a, f) => a + f.reconnects, 0)
      })`,
    );
  }

  // N SSE watchers on the same followers, counting the bytes they read.
  const ac = new AbortController();
  let sseBytes = 0;
  let sseEvents = 0; // events read
  const from = (await status(leader.url)).appliedIndex as number + 1;
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  let opened = 0;
  const watchers = Array.from({ length: n }, async (_, i) => {
    const q = new URLSearchParams({
      prefix: "p/",
      encoding: "base64",
      from: String(from),
    });
    try {
      const res = await fetch(`${followers[i % 2]!.url}/v1/watch?${q}`, {
        signal: ac.signal,
        headers: { authorization: `Bearer ${tokens.read}` },
      });
      const reader = res.body!.getReader();
      readers.push(reader);
      opened++;
      let previous = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        sseBytes += value.length;
        // An event ends with a blank line.
        for (const b of value) {
          if (b === 0x0a && previous === 0x0a) sseEvents++;
          previous = b;
        }
      }
    } catch {
      // Cancelled at the end.
    }
  });
  const openBy = performance.now() + 60_000;
  while (opened < n && performance.now() < openBy) {
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`${opened} of ${n} SSE watchers open`);
  await new Promise((r) => setTimeout(r, 1000));
  const sse0 = sseBytes;
  const sseEvents0 = sseEvents;
  const withSse = await measurePhase(`${n} SSE watchers`);
  await new Promise((r) => setTimeout(r, 1000));
  const level: Level = {
    n,
    learners: withLearners,
    learnerBytes,
    learnerChanges,
    sse: withSse,
    sseBytes: sseBytes - sse0,
    sseEvents: sseEvents - sseEvents0,
  };
  ac.abort();
  await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
  await Promise.all(watchers);
  return level;
}

/** Per-second figures, so phases of slightly different lengths compare. */
const perSecond = (p: Phase, v: number) => v / p.seconds;

function report(none: Phase, l: Level): void {
  const n = l.n;
  const { learners: withLearners, sse: withSse } = l;
  // Per change received (a put that timed out may still have committed).
  const perLearner = l.learnerBytes / l.learnerChanges;
  const perWatcher = l.sseBytes / l.sseEvents;
  suite.metric(
    `${n}: changes the learners applied while counted`,
    l.learnerChanges,
  );
  suite.metric(`${n}: events the SSE watchers read while counted`, l.sseEvents);
  suite.metric(
    `${n}: serving members' learner bytes per committed change (all learners)`,
    Math.round(l.learnerBytes / withLearners.changes),
  );
  suite.metric(
    `${n}: learner bytes per change per learner (frames on the wire)`,
    Number(perLearner.toFixed(1)),
  );
  suite.metric(
    `${n}: SSE bytes per change per watcher (HTTP body)`,
    Number(perWatcher.toFixed(1)),
  );
  suite.compare(
    `puts per second achieved, ${n} learners vs none`,
    "throughput",
    perSecond(withLearners, withLearners.changes),
    perSecond(none, none.changes),
  );
  suite.compare(
    `leader CPU per second, ${n} learners on followers vs none`,
    "time",
    perSecond(withLearners, withLearners.leaderCpuMs),
    perSecond(none, none.leaderCpuMs),
    { op: "<=", value: 1.25 },
  );
  suite.compare(
    `leader raft bytes per second, ${n} learners on followers vs none`,
    "bytes",
    perSecond(withLearners, withLearners.leaderRaftBytes),
    perSecond(none, none.leaderRaftBytes),
    { op: "<=", value: 1.1 },
  );
  suite.compare(
    `serving followers' CPU per put, ${n} learners vs ${n} SSE watchers`,
    "time",
    withLearners.followersCpuMs / withLearners.changes,
    withSse.followersCpuMs / withSse.changes,
  );
  suite.compare(
    `leader CPU per second, ${n} SSE watchers on followers vs none`,
    "time",
    perSecond(withSse, withSse.leaderCpuMs),
    perSecond(none, none.leaderCpuMs),
  );
  suite.compare(
    `puts per second achieved, ${n} SSE watchers vs none`,
    "throughput",
    perSecond(withSse, withSse.changes),
    perSecond(none, none.changes),
  );
  suite.compare(
    `bytes per change per subscriber, learner vs SSE, ${n} each`,
    "bytes",
    perLearner,
    perWatcher,
    { op: "<=", value: 1 },
  );
  console.log(
    `${n}: bytes per change per subscriber: learner ${
      perLearner.toFixed(1)
    }, SSE ${perWatcher.toFixed(1)}`,
  );
}

try {
  // Warm up (JIT, connections), then the baseline.
  await writeLoad(1000);
  const none = await measurePhase("0 subscribers");
  for (const n of COUNTS) {
    let level: Level;
    try {
      level = await measureLevel(n);
    } catch (e) {
      // Said in the results rather than hidden: the machine could not hold it.
      const why = e instanceof Error ? e.message : String(e);
      console.log(`${n} subscribers: failed: ${why}`);
      suite.metric(`${n}: failed`, why.slice(0, 200));
      continue;
    }
    report(none, level);
  }
  const leaderLearnerBytes = await learnerBytesSent([leader.url]);
  suite.metric("bytes the leader sent to learners", leaderLearnerBytes);

  // One pump's frames for N learners of one prefix: the same Changes message
  // on N connections. Packed into one blob, vs one frame each.
  const message = {
    from: 1000,
    to: 1000,
    changes: [{
      key: "p/17",
      value: new TextEncoder().encode(VALUE),
      revision: 1000,
    }],
  };
  const frame = encodeFrame({
    type: learnerMessages.typeId(Changes),
    flags: 0,
    payload: Changes.encode(message),
  });
  const frames = Array.from({ length: N }, () => frame);
  const packed = pack(frames);
  const zstd = zstdCompressSync(Buffer.concat(frames));
  suite.metric("one change: frame bytes per learner", frame.length);
  suite.metric(`one change: pack of ${N} frames, bytes`, packed.length);
  suite.metric(`one change: zstd of ${N} frames, bytes`, zstd.length);
  suite.compare(
    `one change to ${N} learners: pack(N frames) vs N frames`,
    "bytes",
    packed.length,
    frame.length * N,
  );
  console.log(
    `one frame ${frame.length} B, pack of ${N} ${packed.length} B, zstd ${zstd.length} B`,
  );
  await suite.finish();
} finally {
  await cluster.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
