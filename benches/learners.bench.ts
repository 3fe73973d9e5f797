/**
 * bench:learners — what client learners cost a kv cluster (3 node
 * processes on loopback), beside the same number of HTTP watchers (SSE,
 * the stream `KvClient.watch` reads), under the same fixed-rate write load:
 *
 * - the leader's CPU time and raft bytes sent (by message type) with no
 *   subscribers, with N learners attached to the two followers, and with N
 *   SSE watchers on the same followers (goal: learners leave the leader's
 *   work where it was);
 * - the serving followers' CPU time, and the bytes they send per committed
 *   change: N learners each on its own connection (one frame each, no
 *   packing) against N learners multiplexed over a few connections
 *   (`KvClient.followMany`: one multi-packet blob per pump and connection),
 *   and against SSE events.
 *
 * Multiplexed learners live in STRATA_LEARNERS_PROCS client processes
 * (default 2: the machine has 2 cores), each holding 4 connections (2 per
 * follower); single-connection learners and SSE watchers live in this
 * process, and only up to STRATA_LEARNERS_SINGLE_MAX (default 1000) of the
 * former. Every process's CPU time is recorded. The counts are
 * STRATA_LEARNERS_COUNTS (default "1000,10000"); a count the machine
 * cannot hold is recorded as failed, with the reason, and the next is tried.
 */
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { type Follower, KvClient } from "@strata/kv";
import { QUICK, Suite } from "./harness.ts";
import { cpuMs } from "./proc_cpu.ts";

/** Subscriber counts measured, each against the same no-subscriber phase. */
const COUNTS = (Deno.env.get("STRATA_LEARNERS_COUNTS") ??
  (QUICK ? "40" : "1000,10000")).split(",").map(Number);
/** Client processes holding the multiplexed learners. */
const PROCS = Number(Deno.env.get("STRATA_LEARNERS_PROCS") ?? 2);
/** Connections each client process holds (half to each follower). */
const CONNECTIONS_PER_PROC = 4;
/** Most learners on connections of their own (each costs this process a socket). */
const SINGLE_MAX = Number(
  Deno.env.get("STRATA_LEARNERS_SINGLE_MAX") ?? 1000,
);
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
  // Elections 1–2 s: scheduling stalls on the shared machine (load average
  // 20–30) depose a leader with 0.5–1 s, and a phase would measure them.
  extraArgs: ["--tick-ms", Deno.env.get("STRATA_LEARNERS_TICK_MS") ?? "100"],
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

/** The leader's raft traffic so far: bytes and messages, by message type. */
async function raftSent(
  url: string,
): Promise<{ bytes: number; byType: Record<string, number> }> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${tokens.read}` },
  });
  let bytes = 0;
  const byType: Record<string, number> = {};
  for (const line of (await res.text()).split("\n")) {
    const m = line.match(
      /^strata_raft_(bytes|messages)_sent_total\{type="([^"]+)"\} (\S+)$/,
    );
    if (!m) continue;
    const v = Number(m[3]);
    byType[`${m[2]} ${m[1]}`] = v;
    if (m[1] === "bytes") bytes += v;
  }
  return { bytes, byType };
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
  }; counts ${COUNTS.join(", ")}`,
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
  /** This process and the client processes. */
  clientCpuMs: number;
  leaderRaftBytes: number;
  changes: number;
  /** Terms that went by (0: the leader held its term throughout). */
  elections: number;
}

/** Moves the leadership back to the measured leader (bounded). */
async function restoreLeader(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const s = await status(leader.url).catch(() => ({}));
    if ((s as { role?: string }).role === "leader") return;
    const current = (s as { leader?: number }).leader;
    const at = current ? cluster.nodes.get(current) : undefined;
    if (at) {
      await fetch(`${at.url}/v1/cluster/transfer-leadership`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tokens.admin}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ to: leaderId }),
      }).then((r) => r.body?.cancel()).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`node ${leaderId} did not get the leadership back`);
}

async function measurePhase(
  name: string,
  clientPids: readonly number[] = [],
): Promise<Phase> {
  const pids = (ns: typeof all) => ns.map((n) => n.process.pid);
  const clients = [Deno.pid, ...clientPids];
  const cpu0 = await cpuMs(pids([leader]));
  const fcpu0 = await cpuMs(pids(followers));
  const self0 = await cpuMs(clients);
  const raft0 = await raftSent(leader.url);
  const term0 = (await status(leader.url)).term as number;
  const t0 = performance.now();
  const changes = await writeLoad(PHASE_MS);
  const seconds = (performance.now() - t0) / 1000;
  const raft1 = await raftSent(leader.url);
  const end = await status(leader.url);
  // A phase whose leader lost its term measured an election, not the
  // steady state: said in the results, and the leadership is given back.
  const elections = (end.term as number) - term0;
  const phase: Phase = {
    seconds,
    leaderCpuMs: await cpuMs(pids([leader])) - cpu0,
    followersCpuMs: await cpuMs(pids(followers)) - fcpu0,
    clientCpuMs: await cpuMs(clients) - self0,
    leaderRaftBytes: raft1.bytes - raft0.bytes,
    changes,
    elections,
  };
  const byType = Object.keys(raft1.byType).sort().map((k) =>
    [k, raft1.byType[k]! - (raft0.byType[k] ?? 0)] as const
  ).filter(([, v]) => v > 0);
  console.log(
    `${name}: ${changes} puts in ${seconds.toFixed(1)} s; leader CPU ${
      phase.leaderCpuMs.toFixed(0)
    } ms, followers ${phase.followersCpuMs.toFixed(0)} ms, client processes ${
      phase.clientCpuMs.toFixed(0)
    } ms; leader raft bytes ${phase.leaderRaftBytes} (${
      byType.map(([k, v]) => `${k} ${v}`).join(", ")
    })`,
  );
  suite.metric(`${name}: puts`, changes);
  suite.metric(`${name}: seconds`, Number(seconds.toFixed(2)));
  suite.metric(`${name}: leader CPU ms`, Math.round(phase.leaderCpuMs));
  suite.metric(`${name}: followers CPU ms`, Math.round(phase.followersCpuMs));
  suite.metric(
    `${name}: subscriber processes CPU ms`,
    Math.round(phase.clientCpuMs),
  );
  suite.metric(`${name}: leader raft bytes sent`, phase.leaderRaftBytes);
  suite.metric(
    `${name}: leader raft bytes per put`,
    Math.round(phase.leaderRaftBytes / changes),
  );
  for (const [k, v] of byType) suite.metric(`${name}: leader raft ${k}`, v);
  suite.metric(`${name}: terms the leader went through`, elections);
  if (elections > 0 || end.role !== "leader") {
    console.log(`${name}: ${elections} election(s) during the phase`);
    await restoreLeader();
  }
  return phase;
}

/** Learners' phase: its figures and the serving followers' learner bytes. */
interface LearnerPhase {
  phase: Phase;
  /** Bytes the followers' learner ports sent while measured. */
  bytes: number;
  /** Changes the learners applied while measured. */
  changes: number;
  /** Packed blobs' bytes, and their packets' bytes before packing. */
  packed?: { blobs: number; bytes: number; unpacked: number };
}

/** What one level of N subscribers measured. */
interface Level {
  n: number;
  /** N learners each on its own connection (skipped above SINGLE_MAX). */
  singles?: LearnerPhase;
  /** N learners multiplexed over the client processes' connections. */
  mux: LearnerPhase;
  sse: Phase;
  sseBytes: number;
  sseEvents: number;
}

async function learnerStats(
  urls: string[],
): Promise<
  {
    bytesSent: number;
    packedBlobs: number;
    packedBytes: number;
    unpackedBytes: number;
  }
> {
  const sum = {
    bytesSent: 0,
    packedBlobs: 0,
    packedBytes: 0,
    unpackedBytes: 0,
  };
  for (const u of urls) {
    const s = await status(u) as {
      clientLearners?: Partial<typeof sum>;
    };
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) {
      sum[k] += s.clientLearners?.[k] ?? 0;
    }
  }
  return sum;
}

/** Every replica reaches the leader's revision after the load, else the level failed: say how. */
function failBehind(
  n: number,
  revision: number,
  behind: number,
  lowest: number,
  disconnected: string,
): void {
  if (behind === 0) return;
  throw new Error(
    `${behind} of ${n} replicas did not reach revision ${revision} within 120 s after the load (lowest ${lowest}; ${disconnected})`,
  );
}

/** N learners on connections of their own, in this process. */
async function singlesPhase(n: number): Promise<LearnerPhase> {
  const reader = new KvClient(all.map((m) => m.url), { token: tokens.read });
  const learners: Follower[] = [];
  let counting = false;
  let applied = 0;
  const t0 = performance.now();
  try {
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
                  if (counting) applied += u.changes.length;
                },
              }),
          ),
        ),
      );
    }
    console.log(
      `${n} learners (own connections) subscribed in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const urls = followers.map((f) => f.url);
    const b0 = await learnerStats(urls);
    counting = true;
    const phase = await measurePhase(`${n} learners, own connections`);
    const b1 = await learnerStats(urls);
    counting = false;
    const revision = (await status(leader.url)).appliedIndex as number;
    const caughtUp = await Promise.allSettled(
      learners.map((f) => f.waitFor(revision, { timeoutMs: 120_000 })),
    );
    const behind = learners.filter((_, i) =>
      caughtUp[i]!.status === "rejected"
    );
    failBehind(
      n,
      revision,
      behind.length,
      Math.min(...behind.map((f) => f.revision)),
      `${
        behind.filter((f) => f.member === undefined).length
      } of them disconnected`,
    );
    return { phase, bytes: b1.bytesSent - b0.bytesSent, changes: applied };
  } finally {
    await Promise.all(learners.map((f) => f.close()));
  }
}

/** A client process of learner_client_process.ts, spoken to by JSON lines. */
class ClientProcess {
  readonly child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  constructor(options: Record<string, unknown>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./learner_client_process.ts", import.meta.url).pathname,
        JSON.stringify(options),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.child.stdin.getWriter();
    let buffered = "";
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream())
      .pipeThrough(
        new TransformStream<string, string>({
          transform(chunk, out) {
            buffered += chunk;
            let nl;
            while ((nl = buffered.indexOf("\n")) >= 0) {
              out.enqueue(buffered.slice(0, nl));
              buffered = buffered.slice(nl + 1);
            }
          },
        }),
      )[Symbol.asyncIterator]();
  }
  /** The next JSON line it prints. @throws when it exits first. */
  async next(): Promise<Record<string, number | boolean | string>> {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error("a client process exited");
    const reply = JSON.parse(value);
    if (reply.error) throw new Error(`client process: ${reply.error}`);
    return reply;
  }
  async ask(line: string): Promise<Record<string, number | boolean | string>> {
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
    return await this.next();
  }
  async stop(): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode("exit\n")).catch(() => {});
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 10_000);
    await this.child.status;
    clearTimeout(timer);
    for (;;) {
      const { done } = await this.#lines.next().catch(() => ({ done: true }));
      if (done) break;
    }
  }
}

/** N learners multiplexed over PROCS client processes' connections. */
async function muxPhase(n: number): Promise<LearnerPhase> {
  const procs = Math.max(
    1,
    Math.min(PROCS, Math.ceil(n / CONNECTIONS_PER_PROC)),
  );
  const perGroup = Math.ceil(n / (procs * CONNECTIONS_PER_PROC));
  const t0 = performance.now();
  const clients = Array.from(
    { length: procs },
    () =>
      new ClientProcess({
        urls: all.map((m) => m.url),
        members: followers.map((f) => f.learner!),
        token: tokens.read,
        prefix: "p/",
        groups: CONNECTIONS_PER_PROC,
        perGroup,
      }),
  );
  try {
    await Promise.all(clients.map((c) => c.next()));
    const total = procs * CONNECTIONS_PER_PROC * perGroup;
    console.log(
      `${total} learners multiplexed over ${procs} processes × ${CONNECTIONS_PER_PROC} connections subscribed in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const urls = followers.map((f) => f.url);
    const count = async () =>
      (await Promise.all(clients.map((c) => c.ask("count")))).reduce(
        (a, r) => a + (r.changes as number),
        0,
      );
    const b0 = await learnerStats(urls);
    const c0 = await count();
    const phase = await measurePhase(
      `${n} learners, multiplexed`,
      clients.map((c) => c.child.pid),
    );
    const b1 = await learnerStats(urls);
    const applied = await count() - c0;
    const revision = (await status(leader.url)).appliedIndex as number;
    const waits = await Promise.all(
      clients.map((c) => c.ask(`wait ${revision} 120000`)),
    );
    failBehind(
      total,
      revision,
      waits.reduce((a, w) => a + (w.behind as number), 0),
      Math.min(...waits.map((w) => w.lowest as number)),
      `${
        waits.reduce((a, w) => a + (w.disconnected as number), 0)
      } connections disconnected`,
    );
    return {
      phase,
      bytes: b1.bytesSent - b0.bytesSent,
      changes: applied,
      packed: {
        blobs: b1.packedBlobs - b0.packedBlobs,
        bytes: b1.packedBytes - b0.packedBytes,
        unpacked: b1.unpackedBytes - b0.unpackedBytes,
      },
    };
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
  }
}

/** N SSE watchers on the followers, counting the bytes they read. */
async function ssePhase(
  n: number,
): Promise<{ sse: Phase; sseBytes: number; sseEvents: number }> {
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
  try {
    const openBy = performance.now() + 60_000;
    while (opened < n && performance.now() < openBy) {
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`${opened} of ${n} SSE watchers open`);
    await new Promise((r) => setTimeout(r, 1000));
    const sse0 = sseBytes;
    const sseEvents0 = sseEvents;
    const sse = await measurePhase(`${n} SSE watchers`);
    await new Promise((r) => setTimeout(r, 1000));
    return {
      sse,
      sseBytes: sseBytes - sse0,
      sseEvents: sseEvents - sseEvents0,
    };
  } finally {
    ac.abort();
    await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
    await Promise.all(watchers);
  }
}

async function measureLevel(n: number): Promise<Level> {
  const singles = n <= SINGLE_MAX ? await singlesPhase(n) : undefined;
  const mux = await muxPhase(n);
  return { n, singles, mux, ...await ssePhase(n) };
}

/** Per-second figures, so phases of slightly different lengths compare. */
const perSecond = (p: Phase, v: number) => v / p.seconds;

function reportLearners(
  none: Phase,
  n: number,
  how: string,
  l: LearnerPhase,
  sse: { phase: Phase; perWatcher: number },
): void {
  const p = l.phase;
  const perChange = l.bytes / p.changes;
  const perLearner = l.bytes / l.changes;
  suite.metric(
    `${n} ${how}: changes the learners applied while counted`,
    l.changes,
  );
  suite.metric(
    `${n} ${how}: serving members' learner bytes per committed change (all learners)`,
    Math.round(perChange),
  );
  suite.metric(
    `${n} ${how}: learner bytes per change per learner`,
    Number(perLearner.toFixed(2)),
  );
  if (l.packed) {
    suite.metric(`${n} ${how}: packed blobs`, l.packed.blobs);
    suite.metric(`${n} ${how}: packed blob bytes`, l.packed.bytes);
    suite.metric(
      `${n} ${how}: their packets' bytes before packing`,
      l.packed.unpacked,
    );
  }
  suite.compare(
    `puts per second achieved, ${n} learners (${how}) vs none`,
    "throughput",
    perSecond(p, p.changes),
    perSecond(none, none.changes),
  );
  suite.compare(
    `leader CPU per second, ${n} learners (${how}) on followers vs none`,
    "time",
    perSecond(p, p.leaderCpuMs),
    perSecond(none, none.leaderCpuMs),
    { op: "<=", value: 1.25 },
  );
  suite.compare(
    `leader raft bytes per second, ${n} learners (${how}) on followers vs none`,
    "bytes",
    perSecond(p, p.leaderRaftBytes),
    perSecond(none, none.leaderRaftBytes),
    { op: "<=", value: 1.1 },
  );
  suite.compare(
    `leader raft bytes per put, ${n} learners (${how}) on followers vs none`,
    "bytes",
    p.leaderRaftBytes / p.changes,
    none.leaderRaftBytes / none.changes,
  );
  suite.compare(
    `serving followers' CPU per put, ${n} learners (${how}) vs ${n} SSE watchers`,
    "time",
    p.followersCpuMs / p.changes,
    sse.phase.followersCpuMs / sse.phase.changes,
  );
  suite.compare(
    `bytes per change per subscriber, learner (${how}) vs SSE, ${n} each`,
    "bytes",
    perLearner,
    sse.perWatcher,
    { op: "<=", value: 1 },
  );
  console.log(
    `${n} ${how}: member bytes per change ${
      perChange.toFixed(0)
    }, per learner ${perLearner.toFixed(2)}, SSE per watcher ${
      sse.perWatcher.toFixed(1)
    }`,
  );
}

function report(none: Phase, l: Level): void {
  const n = l.n;
  const perWatcher = l.sseBytes / l.sseEvents;
  suite.metric(`${n}: events the SSE watchers read while counted`, l.sseEvents);
  suite.metric(
    `${n}: SSE bytes per change per watcher (HTTP body)`,
    Number(perWatcher.toFixed(1)),
  );
  const sse = { phase: l.sse, perWatcher };
  if (l.singles) reportLearners(none, n, "own connections", l.singles, sse);
  reportLearners(none, n, "multiplexed", l.mux, sse);
  if (l.singles) {
    suite.compare(
      `serving members' bytes per committed change, ${n} learners: multiplexed and packed vs own connections`,
      "bytes",
      l.mux.bytes / l.mux.phase.changes,
      l.singles.bytes / l.singles.phase.changes,
    );
  }
  suite.compare(
    `leader CPU per second, ${n} SSE watchers on followers vs none`,
    "time",
    perSecond(l.sse, l.sse.leaderCpuMs),
    perSecond(none, none.leaderCpuMs),
  );
  suite.compare(
    `puts per second achieved, ${n} SSE watchers vs none`,
    "throughput",
    perSecond(l.sse, l.sse.changes),
    perSecond(none, none.changes),
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
  // The baseline again, after every level: how much it drifts on this machine.
  const after = await measurePhase("0 subscribers, again");
  suite.compare(
    "leader raft bytes per second, no subscribers: after the levels vs before",
    "bytes",
    perSecond(after, after.leaderRaftBytes),
    perSecond(none, none.leaderRaftBytes),
  );
  const leaderLearnerBytes = (await learnerStats([leader.url])).bytesSent;
  suite.metric("bytes the leader sent to learners", leaderLearnerBytes);
  await suite.finish();
} finally {
  await cluster.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
