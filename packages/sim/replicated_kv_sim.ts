/**
 * A seeded simulation of the production replication loop: N
 * `ReplicatedNode`s (packages/replication, the code that serves raft-kv and
 * the GFS masters) running the real raft-kv state machine (apps/kv's
 * `KvStateMachine`), wired to simulated ports: {@link SimReplicaDisk}
 * (fsync latency, crashes lose unsynced writes), {@link SimPeerNetwork}
 * (the real codec and differential encoding; delays, loss, duplication,
 * reordering, connection resets, partitions) and each {@link SimProcess}'s
 * clocks and timers (virtual time, skewed rates, wall-clock steps, pauses).
 * Clients issue put / cas / get (linearizable and lease) through random
 * nodes while a nemesis injects faults; the history is checked for
 * linearizability, leaders for uniqueness per term, and the replicas for
 * convergence. One seed decides everything, so a failure replays exactly.
 */
import { setImmediate } from "node:timers";
import {
  isReplicationError,
  type PlantedBug,
  ReplicatedNode,
  ReplicationMetrics,
} from "@strata/replication";
import {
  gfsMasterStoreWorkload,
  gfsMasterWorkload,
  UnexpectedRejection,
} from "./gfs_master_workload.ts";
import { kvWorkload } from "./kv_workload.ts";
import { checkKvHistory, type KvOperation } from "./linearizability.ts";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import type { SimErrorCode } from "./sim_error.ts";
import { type SimLinkFaults, SimPeerNetwork } from "./sim_peer_network.ts";
import { SimProcess } from "./sim_process.ts";
import { SimReplicaDisk } from "./sim_replica_disk.ts";
import {
  NoEffect,
  type SimOp,
  type SimStarted,
  type SimWorkload,
} from "./sim_workload.ts";

/** The applications the simulator runs, by `--machine` name. */
export const simWorkloads = {
  kv: kvWorkload,
  gfs: gfsMasterWorkload,
  "gfs-store": gfsMasterStoreWorkload,
};
/** One of {@link simWorkloads}. */
export type SimMachineName = keyof typeof simWorkloads;

/** Options of {@link runReplicatedKvSimulation}. */
export interface ReplicatedSimOptions {
  /** Decides everything; the same seed gives the same run. */
  seed: number;
  /** Virtual ms of client load and faults (default 12,000). */
  workloadMs?: number;
  /** A deliberate bug in the replication loop (tests of the simulator). */
  plantedBug?: PlantedBug;
  /** The application's state machine: raft-kv (default) or the GFS master. */
  machine?: SimMachineName;
}

/** What a run found. */
export interface ReplicatedSimResult {
  seed: number;
  /** True when every check passed. */
  ok: boolean;
  /** The first failed check, in words. */
  failure?: string;
  /** Its kind. */
  code?: SimErrorCode;
  /** True when the linearizability checker ran out of time (not a failure). */
  inconclusive: boolean;
  /** The client history that was checked. */
  history: KvOperation[];
  /** Faults, leader changes and checks, with virtual times. */
  trace: string[];
  /** One command that replays this run. */
  replay: string;
  /** Counters of the run. */
  stats: {
    nodes: number;
    network: SimLinkFaults["mode"];
    events: number;
    virtualMs: number;
    ops: number;
    leaseReadsServed: number;
    crashes: number;
    pauses: number;
    framesSent: number;
    differentialFrames: number;
    lostWrites: number;
    /** Crashes that left a partial last log record. */
    tornWrites: number;
    /** Partial records recovery dropped by their CRC or length. */
    tornRecordsDropped: number;
    /** Fsyncs that failed (each node then had to stop). */
    fsyncFailures: number;
  };
}

type Running = SimStarted;

const hex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Lets every promise continuation run before the next simulated event. */
const drain = () => new Promise<void>((r) => setImmediate(r));

const TICK_MS = 100;
const ELECTION_TICKS = 10;
const CLIENT_TIMEOUT_MS = 1500;

/** The command line that replays a seed. */
export function replayCommand(
  seed: number,
  bug?: PlantedBug,
  machine: SimMachineName = "kv",
): string {
  return `deno task sim:replicated --seed ${seed}${
    machine === "kv" ? "" : ` --machine ${machine}`
  }${bug ? ` --bug ${bug}` : ""}`;
}

/**
 * Runs one seeded simulation of `ReplicatedNode` clusters (see the module
 * doc). Never throws for a failed check: the result says what failed.
 */
export async function runReplicatedKvSimulation(
  o: ReplicatedSimOptions,
): Promise<ReplicatedSimResult> {
  const seed = o.seed;
  const machineName = o.machine ?? "kv";
  const workload: SimWorkload = simWorkloads[machineName];
  const prng = new Prng(seed);
  const sched = new Scheduler();
  const trace: string[] = [];
  const log = (s: string) => trace.push(`${sched.now.toFixed(1)} ${s}`);
  let failure: { code: SimErrorCode; message: string } | undefined;
  const fail = (code: SimErrorCode, message: string) => {
    failure ??= { code, message };
    log(`FAIL ${message}`);
  };

  // ---- the cluster's shape, decided by the seed ----
  const voters = prng.chance(0.7) ? 3 : 5;
  // Disk faults (and the later additions below) come from their own
  // stream, so adding them left every other decision of a seed as it was.
  const diskFaults = new Prng(seed ^ 0x0d15c0de);
  // One seed in ten runs a single-voter group (as etcd allows): its
  // leader commits on its own fsync alone.
  const n = diskFaults.chance(0.1) ? 1 : voters;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const mode = prng.chance(0.5) ? "stream" : "datagram";
  const faults: SimLinkFaults = {
    mode,
    minDelayMs: 0.2 + prng.float(),
    maxDelayMs: prng.pick([3, 10, 30]),
    loss: prng.pick([0, 0.01, 0.03, 0.06]),
    duplicate: mode === "datagram" ? prng.pick([0, 0.02, 0.05]) : 0,
  };
  const latency = {
    minMs: 0.1,
    maxMs: prng.pick([1, 5, 20, 50]),
    fsyncFailure: diskFaults.pick([0, 0, 0.0005, 0.002]),
    tornWrite: diskFaults.pick([0, 0.5, 1]),
  };
  // How often (while the nemesis runs) a node is killed right after it
  // grants a vote, and restarted at once: a vote that left before its fsync is then forgotten, and the
  // node may grant another candidate the same term.
  const voteCrash = diskFaults.pick([0, 0.1, 0.3]);
  const snapshotEntries = prng.pick([20, 60, 100_000]);
  const snapshotCatchUpEntries = prng.pick([0, 10, 1000]);
  const workloadMs = o.workloadMs ?? 12_000;
  const keys = ["a", "b", "c"].slice(0, prng.range(1, 3));
  const clientCount = prng.range(2, 5);

  const procs = new Map(
    ids.map((id) => [
      id,
      new SimProcess(
        sched,
        prng.range(0, 1e9),
        1.8e12 + prng.range(-200, 200),
      ),
    ]),
  );
  for (const p of procs.values()) {
    p.setClockRate(1 + prng.range(-10, 10) / 1000);
  }
  const net = new SimPeerNetwork(sched, prng.fork(), procs, faults);
  const disks = new Map(
    ids.map((id) => [id, new SimReplicaDisk(sched, prng.fork(), latency)]),
  );
  const randoms = new Map(ids.map((id) => [id, prng.fork()]));
  const members = new Map(
    ids.map((id) => [id, { peer: SimPeerNetwork.address(id) }]),
  );
  const metrics = new ReplicationMetrics();
  const running = new Map<number, Running>();
  const leaderOfTerm = new Map<number, number>();
  const stats = {
    ops: 0,
    leaseReadsServed: 0,
    crashes: 0,
    pauses: 0,
  };
  /** The process life (generation) of each node whose fsync failed. */
  const failedLife = new Map<number, number>();
  for (const [id, disk] of disks) {
    disk.onFsyncFailure = () => {
      const p = procs.get(id)!;
      const gen = p.generation;
      failedLife.set(id, gen);
      log(`node ${id}: an fsync fails`);
      // The node must stop by itself; its supervisor restarts the process.
      sched.after(diskFaults.range(100, 1000), () => {
        if (p.generation !== gen) return;
        crash(id);
        sched.after(diskFaults.range(50, 500), () => restart(id));
      });
    };
  }
  /** The transport of one life of a node, checking it is silent after a failed fsync. */
  const transportOf = (id: number) => {
    const proc = procs.get(id)!;
    const ep = net.endpoint(id);
    return {
      ...ep,
      send: (m: Parameters<typeof ep.send>[0], address: string) => {
        if (failedLife.get(id) === proc.generation) {
          fail(
            "invariant",
            `node ${id} sent ${m.type} to ${m.to} after its fsync failed`,
          );
        }
        if (
          m.type === "voteResp" && !m.reject && voteCrash > 0 &&
          sched.now < workloadMs - 1500 && diskFaults.chance(voteCrash)
        ) {
          const gen = proc.generation;
          sched.after(0, () => {
            if (proc.generation !== gen || !proc.up) return;
            log(`node ${id} is killed right after voting in term ${m.term}`);
            crash(id);
            sched.after(diskFaults.range(1, 60), () => restart(id));
            // The candidate hears its votes but is not heard for a while
            // (its requests still in flight are lost): another node may
            // then campaign in the same term and ask the restarted voter.
            const cand = m.to;
            const others = ids.filter((b) => b !== cand);
            for (const b of others) net.cut(cand, b);
            sched.after(diskFaults.range(1000, 3000), () => {
              for (const b of others) net.uncut(cand, b);
            });
          });
        }
        return ep.send(m, address);
      },
    };
  };

  const startMachine = async (
    config: Parameters<typeof ReplicatedNode.start>[0],
    ports: Parameters<typeof ReplicatedNode.start>[2],
  ): Promise<SimStarted> => {
    const machine = workload.newMachine();
    return {
      node: await ReplicatedNode.start(config, machine, ports),
      machine,
    };
  };
  const boot = async (id: number) => {
    const proc = procs.get(id)!;
    const gen = proc.generation;
    const rnd = randoms.get(id)!;
    let started: SimStarted;
    try {
      started = await (workload.start ?? startMachine)(
        {
          id,
          members,
          dataDir: `sim://node-${id}`,
          listen: { hostname: "sim", port: 0 },
          tickMs: TICK_MS,
          electionTicks: ELECTION_TICKS,
          snapshotEntries,
          snapshotCatchUpEntries,
          metrics,
          name: `sim node ${id}`,
          clock: proc.clock,
        },
        {
          storage: disks.get(id)!.open(proc),
          transport: transportOf(id),
          timers: proc.timers(),
          random: () => rnd.float(),
          ...(o.plantedBug ? { unsafePlantedBug: o.plantedBug } : {}),
        },
      );
    } catch (e) {
      fail("invariant", `node ${id} failed to start: ${e}`);
      return;
    }
    if (gen !== proc.generation) return; // crashed while starting
    const node = started.node;
    running.set(id, started);
    // The raft events say in which term a node became leader (the node's
    // current term may already be a later one when the listener runs).
    node.onLeaderChange(() => {
      for (const ev of node.events()) {
        if (ev.kind !== "role" || ev.role !== "leader") continue;
        const other = leaderOfTerm.get(ev.term);
        if (other === undefined) {
          log(`node ${id} leads term ${ev.term}`);
          leaderOfTerm.set(ev.term, id);
        } else if (other !== id) {
          fail(
            "invariant",
            `two leaders in term ${ev.term}: ${other} and ${id}`,
          );
        }
      }
    });
  };

  const crash = (id: number, powerLoss = false) => {
    const p = procs.get(id)!;
    if (!p.up) return;
    p.crash();
    disks.get(id)!.crash(powerLoss);
    net.resetNode(id);
    running.delete(id);
    stats.crashes++;
    log(`node ${id} crashes`);
  };
  const restart = (id: number) => {
    const p = procs.get(id)!;
    if (p.up) return;
    p.restart();
    net.resetNode(id);
    log(`node ${id} restarts`);
    void boot(id);
  };
  const sleep = (ms: number) =>
    new Promise<void>((r) => sched.after(ms, () => r()));
  const leader = (): number | undefined => {
    for (const [id, r] of running) {
      if (r.node.isLeader && !procs.get(id)!.paused) return id;
    }
    return undefined;
  };

  // ---- clients ----
  const history: KvOperation[] = [];
  type Outcome =
    | {
      kind: "ok";
      output: KvOperation["output"];
      input?: KvOperation["input"];
    }
    | { kind: "unknown" }
    | { kind: "none" };

  const runOp = (
    clientId: number,
    id: number,
    op: SimOp,
    consistency: "linearizable" | "lease",
  ): Promise<void> => {
    const input = op.input;
    const call = sched.now;
    const proc = procs.get(id)!;
    const target = running.get(id);
    // A dead process refuses the connection: the request had no effect.
    if (!proc.up || !target) return Promise.resolve();
    stats.ops++;
    const ctl = new AbortController();
    return new Promise<void>((done) => {
      let settled = false;
      const settle = (out: Outcome) => {
        if (settled) return;
        settled = true;
        if (out.kind === "ok") {
          history.push({
            clientId,
            input: out.input ?? input,
            call,
            return: sched.now,
            output: out.output,
          });
        } else if (out.kind === "unknown" && input.op !== "get") {
          history.push({ clientId, input, call });
        }
        done();
      };
      sched.after(CLIENT_TIMEOUT_MS, () => {
        ctl.abort();
        settle({ kind: "unknown" });
      });
      const hop = faults.minDelayMs + prng.float() * faults.maxDelayMs;
      sched.after(
        hop,
        proc.bind(() => {
          const r = running.get(id);
          if (!r || r.node !== target.node) return settle({ kind: "none" });
          op.run({
            ...r,
            leaseServed: () => stats.leaseReadsServed++,
            readBarrier: (signal) => {
              if (consistency === "lease" && r.node.leaseValid()) {
                stats.leaseReadsServed++;
              }
              return r.node.readBarrier(consistency, signal);
            },
          }, ctl.signal).then(
            (a) => settle({ kind: "ok", ...a }),
            (e) => {
              if (e instanceof UnexpectedRejection) {
                fail("invariant", e.message);
              }
              settle(
                (isReplicationError(e) && e.code === "no_leader") ||
                  e instanceof NoEffect
                  ? { kind: "none" }
                  : { kind: "unknown" },
              );
            },
          );
        }),
      );
    });
  };

  const workloadEnd = workloadMs;
  const client = async (c: number) => {
    const cp = prng.fork();
    const next = workload.client(c, cp, keys);
    while (sched.now < workloadEnd && !failure) {
      await sleep(cp.range(0, 80));
      const id = cp.pick(ids);
      const op = next();
      await runOp(c, id, op, cp.chance(0.6) ? "lease" : "linearizable");
    }
  };

  // ---- the nemesis ----
  const paused = new Set<number>();
  /** Crashes hurt most with writes in flight: wait (a little) for some. */
  const untilWriting = async (id: number) => {
    for (let i = 0; i < 200 && disks.get(id)!.inFlight === 0; i++) {
      await sleep(1);
    }
  };
  const nemesis = async () => {
    const np = prng.fork();
    // Let a leader settle in and its clock guard measure its peers (2 s).
    await sleep(3500);
    while (sched.now < workloadEnd - 1500 && !failure) {
      await sleep(np.range(300, 2500));
      const r = np.float();
      const lead = leader();
      const victim = lead !== undefined && np.chance(0.6) ? lead : np.pick(ids);
      if (r < 0.15) {
        const shuffled = np.shuffle(ids);
        const k = np.range(1, Math.floor(n / 2));
        const side = new Set(shuffled.slice(0, k));
        const oneWay = np.chance(0.25);
        for (const a of ids) {
          for (const b of ids) {
            if (side.has(a) && !side.has(b)) {
              net.cut(a, b);
              if (!oneWay) net.cut(b, a);
            }
          }
        }
        log(`partition {${[...side]}} ${oneWay ? "->" : "<->"} rest`);
      } else if (r < 0.25) {
        net.heal();
        log("network heals");
      } else if (r < 0.4) {
        await untilWriting(victim);
        crash(victim);
        sched.after(np.range(100, 3000), () => restart(victim));
      } else if (r < 0.5) {
        await untilWriting(victim);
        log("power loss: every node crashes");
        for (const id of ids) crash(id, true);
        sched.after(np.range(50, 1500), () => {
          for (const id of ids) restart(id);
        });
      } else if (r < 0.55) {
        // A flapping server: down and up again around election time.
        crash(victim);
        let t = 0;
        for (let i = 0; i < 3; i++) {
          t += np.range(50, 400);
          sched.after(t, () => restart(victim));
          t += np.range(100, 900);
          sched.after(t, () => crash(victim));
        }
        sched.after(t + np.range(50, 400), () => restart(victim));
      } else if (r < 0.77) {
        const p = procs.get(victim)!;
        if (!p.up || paused.has(victim)) continue;
        const d = np.range(300, 4000);
        const isolate = np.chance(0.5);
        p.pause();
        paused.add(victim);
        stats.pauses++;
        if (isolate) {
          for (const b of ids) {
            if (b !== victim) {
              net.cut(victim, b);
              net.cut(b, victim);
            }
          }
        }
        log(
          `node ${victim} is stopped for ${d} ms${
            isolate ? " and cut off from its peers" : ""
          }`,
        );
        sched.after(d, () => {
          paused.delete(victim);
          p.resume();
          log(`node ${victim} resumes`);
        });
      } else if (r < 0.9) {
        const rate = 1 + np.range(-20, 20) / 1000;
        procs.get(victim)!.setClockRate(rate);
        log(`node ${victim}'s clocks run at ${rate}`);
      } else if (r < 0.95) {
        const step = np.pick([-1, 1]) * np.range(600, 3000);
        procs.get(victim)!.stepWallClock(step);
        log(`node ${victim}'s wall clock steps ${step} ms`);
      }
    }
  };

  // ---- the run ----
  const converged = () => {
    if (running.size !== n) return false;
    const rs = [...running.values()];
    const commit = Math.max(...rs.map((r) => r.node.status().commitIndex));
    return leader() !== undefined &&
      rs.every((r) => r.machine.appliedIndex === commit);
  };
  const until = async (cond: () => boolean, limitMs: number) => {
    const end = sched.now + limitMs;
    while (!cond()) {
      if (sched.now >= end || failure) return false;
      await sleep(50);
    }
    return true;
  };
  let finished = false;
  const scenario = async () => {
    for (const id of ids) await boot(id);
    await Promise.all([
      nemesis(),
      ...Array.from({ length: clientCount }, (_, c) => client(c + 1)),
    ]);
    if (failure) return;
    net.heal();
    for (const [id, p] of procs) {
      paused.delete(id);
      p.resume();
      restart(id);
    }
    log("everything heals");
    if (!await until(converged, 20_000)) {
      return fail("no_progress", "the replicas did not converge after healing");
    }
    // Final linearizable reads of every key: a lost acknowledged write shows here.
    for (const key of keys) {
      await runOp(0, leader() ?? ids[0]!, workload.read(key), "linearizable");
    }
    if (!await until(converged, 10_000)) {
      return fail("no_progress", "the replicas did not converge after healing");
    }
    const states = [...running.entries()].map(([id, r]) => [
      id,
      hex(r.machine.snapshot()),
    ]);
    const first = states[0]![1];
    for (const [id, s] of states) {
      if (s !== first) {
        return fail(
          "divergence",
          `replica ${id} holds a different state from replica ${
            states[0]![0]
          } at the same index`,
        );
      }
    }
  };
  scenario().then(
    () => finished = true,
    (e) => {
      fail(
        "invariant",
        `the scenario threw: ${e instanceof Error ? e.stack : e}`,
      );
      finished = true;
    },
  );
  const hardEnd = workloadEnd + 60_000;
  await drain();
  while (!finished && sched.now < hardEnd) {
    try {
      if (!sched.step()) {
        await drain();
        if (sched.pending === 0) break;
        continue;
      }
    } catch (e) {
      fail("invariant", e instanceof Error ? e.message : String(e));
      break;
    }
    await drain();
    if (failure) break;
  }
  if (!finished && !failure) fail("no_progress", "the run did not finish");
  // Stop every node's timers: nothing of this run may run after it returns.
  for (const p of procs.values()) p.crash();

  const sum = (f: (d: SimReplicaDisk) => number) =>
    [...disks.values()].reduce((n, d) => n + f(d), 0);
  let inconclusive = false;
  if (!failure) {
    const verdict = checkKvHistory(history, { timeoutMs: 20_000 });
    if (verdict.result === "illegal") {
      fail("not_linearizable", `not linearizable: ${verdict.info}`);
    } else if (verdict.result === "unknown") inconclusive = true;
  }
  return {
    seed,
    ok: failure === undefined,
    ...(failure ? { failure: failure.message, code: failure.code } : {}),
    inconclusive,
    history,
    trace,
    replay: replayCommand(seed, o.plantedBug, machineName),
    stats: {
      nodes: n,
      network: mode,
      events: sched.executed,
      virtualMs: Math.round(sched.now),
      ops: stats.ops,
      leaseReadsServed: stats.leaseReadsServed,
      crashes: stats.crashes,
      pauses: stats.pauses,
      framesSent: net.stats.sent,
      differentialFrames: net.stats.differential,
      lostWrites: sum((d) => d.lostWrites),
      tornWrites: sum((d) => d.tornWrites),
      tornRecordsDropped: sum((d) => d.tornRecordsDropped),
      fsyncFailures: sum((d) => d.fsyncFailures),
    },
  };
}
