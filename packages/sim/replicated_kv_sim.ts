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
import type { ConfChange, Entry } from "@strata/raft";
import {
  isCorruptReplicaData,
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
import { runEvents } from "./sim_driver.ts";
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
  /**
   * Sees every raft message a node sends and every tick timer that fires
   * (the playground's step-by-step replay). It only watches: the run is
   * the same with or without it.
   */
  observe?: (e: SimObservation) => void;
  /** Chance that a seed of 3+ voters changes its membership (default 0; `--membership` sets 1). */
  membership?: number;
  /** Chance that a seed of 3+ voters hands leadership over now and then (default 0; `--transfers` sets 1). */
  transfers?: number;
}

/** A message sent or a tick, as {@link ReplicatedSimOptions.observe} sees it. */
export type SimObservation =
  | {
    kind: "send";
    /** Virtual time, ms. */
    atMs: number;
    from: number;
    to: number;
    /** The raft message type (`app`, `heartbeat`, `vote`, …). */
    type: string;
    term: number;
    /** Log entries it carries (appends). */
    entries?: number;
    /** Set on responses: whether it refuses. */
    reject?: boolean;
  }
  | { kind: "tick"; atMs: number; node: number };

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
    /** Writes refused for a full disk (each node then had to stop). */
    enospcFailures: number;
    /** Bits flipped in durable log records. */
    bitFlips: number;
    /** Hard-state files torn by a crash. */
    tornHardStates: number;
    /** Starts that refused a damaged disk (then repaired, or lost for good). */
    refusedRecoveries: number;
    /** Newest snapshots damaged at a crash. */
    snapshotDamages: number;
    /** Restarts that skipped a damaged snapshot for the older one. */
    snapshotFallbacks: number;
    /** Nodes that refused a damaged snapshot the log no longer covered (then stayed down). */
    lostNodes: number;
    /** Membership changes applied (joint ones among them). */
    memberChanges: number;
    jointChanges: number;
    /** Leadership transfers that completed (`--transfers` seeds). */
    transfers: number;
  };
}

type Running = SimStarted;

const hex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const TICK_MS = 100;
const ELECTION_TICKS = 10;
/**
 * A heartbeat every tick, as ReplicatedNode did until 2026-12-06 (its
 * default is now a fifth of the election timeout): the planted bugs'
 * pinned seeds were found with it, and with a heartbeat every 2 ticks
 * joint_commit_old_quorum was not found in seeds 1-300 (vote_without_log_check
 * was, by seed 24, and serving_without_lease by seed 14).
 */
const HEARTBEAT_TICKS = 1;
const CLIENT_TIMEOUT_MS = 1500;

/** The command line that replays a seed. */
export function replayCommand(
  seed: number,
  bug?: PlantedBug,
  machine: SimMachineName = "kv",
  membership?: number,
  transfers?: number,
): string {
  return `deno task sim:replicated --seed ${seed}${
    machine === "kv" ? "" : ` --machine ${machine}`
  }${membership === 1 ? " --membership" : ""}${
    transfers === 1 ? " --transfers" : ""
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
  // ENOSPC, bit flips and torn hard states: a third stream, so seeds
  // without them run exactly as before they existed.
  const moreFaults = new Prng(seed ^ 0x5eed0003);
  const enospc = moreFaults.chance(0.5);
  // Damage at a crash (a bit flip in a log record, a hardstate file cut
  // short), only where the other voters keep a quorum while one refuses.
  const damageRate = n >= 3 ? moreFaults.pick([0, 0, 0.15, 0.4]) : 0;
  // Membership changes (a stream of their own too; only when asked for):
  // on seeds of 3+ voters, up to two spare servers join as learners, get
  // promoted, replace voters in one joint change, and voters are removed.
  const memberFaults = new Prng(seed ^ 0x3e3be45);
  const membership = n >= 3 && memberFaults.chance(o.membership ?? 0);
  const initial = new Set(ids);
  const spares = membership ? [n + 1, n + 2] : [];
  /** Members removed from the group: their processes stay down. */
  const removed = new Set<number>();
  /** Members whose data was refused for good (a damaged snapshot the log no longer covers). */
  const lost = new Set<number>();
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
    tornHardState: moreFaults.pick([0, 0.5]),
  };
  // How often (while the nemesis runs) a node is killed right after it
  // grants a vote, and restarted at once: a vote that left before its fsync is then forgotten, and the
  // node may grant another candidate the same term.
  const voteCrash = diskFaults.pick([0, 0.1, 0.3]);
  const snapshotEntries = prng.pick([20, 60, 100_000]);
  const snapshotCatchUpEntries = prng.pick([0, 10, 1000]);
  // Damage to the newest snapshot at a crash (a stream of its own, so the
  // other seeds' runs are unchanged): on seeds of 3+ voters that take
  // snapshots and do not change their membership. The node must fall
  // back to its older snapshot when its log reaches back to it, else
  // refuse to start and stay down for good (an operator would replace it).
  const snapFaults = new Prng(seed ^ 0x5a4b5ad);
  const snapDamageRate = n >= 3 && snapshotEntries < 100_000 && !membership
    ? snapFaults.pick([0, 0.2, 0.5])
    : 0;
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
  for (const id of spares) {
    const p = new SimProcess(
      sched,
      memberFaults.range(0, 1e9),
      1.8e12 + memberFaults.range(-200, 200),
    );
    p.setClockRate(1 + memberFaults.range(-10, 10) / 1000);
    // Not started yet: down until it joins.
    p.crash();
    procs.set(id, p);
  }
  const net = new SimPeerNetwork(sched, prng.fork(), procs, faults);
  const disks = new Map(
    ids.map((id) => [id, new SimReplicaDisk(sched, prng.fork(), latency)]),
  );
  const randoms = new Map(ids.map((id) => [id, prng.fork()]));
  for (const id of spares) {
    disks.set(id, new SimReplicaDisk(sched, memberFaults.fork(), latency));
    randoms.set(id, memberFaults.fork());
  }
  const members = new Map(
    ids.map((id) => [id, { peer: SimPeerNetwork.address(id) }]),
  );
  const metrics = new ReplicationMetrics();
  const running = new Map<number, Running>();
  const leaderOfTerm = new Map<number, number>();
  /** The entry each index was first applied with, by any replica. */
  const appliedEntries = new Map<number, Entry>();
  /** How far each replica life's applied entries were compared. */
  const comparedTo = new WeakMap<Running, number>();
  /**
   * State machine safety, as the lab tester checks it: every replica
   * applies the same entry at each index, so an acknowledged (applied)
   * write is never replaced by another entry later, even when no read
   * could see the difference. Incremental: each applied entry is compared
   * once (from the replica's raft log; entries a snapshot covered are
   * skipped).
   */
  const checkApplied = () => {
    for (const [id, r] of running) {
      const applied = r.machine.appliedIndex;
      const done = comparedTo.get(r) ?? 0;
      if (applied <= done) continue;
      comparedTo.set(r, applied);
      const log = r.node.raftLog();
      const from = Math.max(done + 1, log.firstIndex());
      if (from > applied || applied > log.lastIndex()) continue;
      for (const e of log.entries(from, applied + 1, Infinity)) {
        const first = appliedEntries.get(e.index);
        if (first === undefined) appliedEntries.set(e.index, e);
        else if (!sameEntry(first, e)) {
          fail(
            "divergence",
            `node ${id} applied a different entry at index ${e.index} (term ${e.term}, ${e.type}) than one applied before (term ${first.term}, ${first.type})`,
          );
          return;
        }
      }
    }
  };
  const stats = {
    memberChanges: 0,
    jointChanges: 0,
    transfers: 0,
    ops: 0,
    leaseReadsServed: 0,
    crashes: 0,
    pauses: 0,
  };
  /** The process life (generation) of each node whose fsync failed. */
  const failedLife = new Map<number, number>();
  for (const [id, disk] of disks) {
    disk.onRecoveryViolation = (m) => fail("invariant", `node ${id}: ${m}`);
    disk.onWriteFailure = (e) => {
      const p = procs.get(id)!;
      const gen = p.generation;
      failedLife.set(id, gen);
      log(`node ${id}: a write fails: ${e.message}`);
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
        if (o.observe) {
          const e = m as { entries?: unknown[]; reject?: boolean };
          o.observe({
            kind: "send",
            atMs: sched.now,
            from: id,
            to: m.to,
            type: m.type,
            term: m.term,
            ...(Array.isArray(e.entries) ? { entries: e.entries.length } : {}),
            ...(typeof e.reject === "boolean" ? { reject: e.reject } : {}),
          });
        }
        if (failedLife.get(id) === proc.generation) {
          fail(
            "invariant",
            `node ${id} sent ${m.type} to ${m.to} after a write failed`,
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

  /** The node's timers; with `observe`, a tick timer (`TICK_MS`) that fires is reported. */
  const observedTimers = (
    id: number,
    timers: ReturnType<SimProcess["timers"]>,
  ): ReturnType<SimProcess["timers"]> => {
    const observe = o.observe;
    if (!observe) return timers;
    return {
      ...timers,
      setTimer: (ms, fn) =>
        timers.setTimer(
          ms,
          ms !== TICK_MS ? fn : () => {
            observe({ kind: "tick", atMs: sched.now, node: id });
            fn();
          },
        ),
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
          join: !initial.has(id),
          dataDir: `sim://node-${id}`,
          listen: { hostname: "sim", port: 0 },
          tickMs: TICK_MS,
          electionTicks: ELECTION_TICKS,
          heartbeatTicks: HEARTBEAT_TICKS,
          snapshotEntries,
          snapshotCatchUpEntries,
          metrics,
          name: `sim node ${id}`,
          clock: proc.clock,
        },
        {
          storage: disks.get(id)!.open(proc),
          transport: transportOf(id),
          timers: observedTimers(id, proc.timers()),
          random: () => rnd.float(),
          ...(o.plantedBug ? { unsafePlantedBug: o.plantedBug } : {}),
        },
      );
    } catch (e) {
      const disk = disks.get(id)!;
      if (!disk.damaged || gen !== proc.generation) {
        fail("invariant", `node ${id} failed to start: ${e}`);
        return;
      }
      if (!isCorruptReplicaData(e)) {
        // A process refusing damaged data must say so (exit 65), not fail
        // some other way.
        fail(
          "invariant",
          `node ${id} failed to start on damaged data, not as corrupt data: ${e}`,
        );
        return;
      }
      // Refusing damaged data is right; an operator then repairs the disk.
      log(`node ${id} refuses to start: ${e}`);
      proc.crash();
      if (disk.lost) {
        // Gone for good: production's answer is to replace the member.
        lost.add(id);
        log(`node ${id} stays down (its data is lost)`);
        return;
      }
      sched.after(moreFaults.range(300, 3000), () => {
        if (proc.up) return;
        disk.repair();
        log(`node ${id}'s disk is repaired`);
        restart(id);
      });
      return;
    }
    if (gen !== proc.generation) return; // crashed while starting
    const node = started.node;
    // No node is told the spares' addresses: a member that misses the
    // joint change adding them learns them from their announcements (it
    // could not acknowledge the entries carrying them before answering;
    // seed 120 stalled so before the announcement).
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
    const disk = disks.get(id)!;
    disk.crash(powerLoss);
    if (
      damageRate > 0 && sched.now < workloadMs &&
      ![...disks.values()].some((d) => d.damaged) &&
      moreFaults.chance(damageRate)
    ) {
      if (moreFaults.chance(0.7)) {
        if (disk.flipBit()) log(`a bit flips in a log record of node ${id}`);
      } else if (disk.tearHardState()) {
        log(`node ${id}'s hardstate file is cut short`);
      }
    } else if (
      snapDamageRate > 0 && sched.now < workloadMs && lost.size === 0 &&
      ![...disks.values()].some((d) => d.damaged) &&
      snapFaults.chance(snapDamageRate) && disk.damageSnapshot(snapFaults)
    ) {
      log(`node ${id}'s newest snapshot is damaged`);
    }
    net.resetNode(id);
    running.delete(id);
    stats.crashes++;
    log(`node ${id} crashes`);
  };
  const restart = (id: number) => {
    const p = procs.get(id)!;
    if (p.up || removed.has(id) || lost.has(id) || !ids.includes(id)) {
      return;
    }
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
        const k = np.range(1, Math.max(1, Math.floor(ids.length / 2)));
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
      } else if (enospc) {
        const disk = disks.get(victim)!;
        const d = moreFaults.range(200, 3000);
        disk.full = true;
        log(`node ${victim}'s disk is full for ${d} ms`);
        sched.after(d, () => disk.full = false);
      }
    }
  };

  // ---- membership changes ----
  /** Asks the leader (as an operator's request would) to change the members; true once applied there. */
  const change = (
    cc: ConfChange[],
    what: string,
  ): Promise<boolean> => {
    const lead = leader();
    const r = lead === undefined ? undefined : running.get(lead);
    if (!r) return Promise.resolve(false);
    const ctl = new AbortController();
    const addresses = Object.fromEntries(
      cc.filter((c) => c.type !== "removeNode").map((c) => [
        c.nodeId,
        { peer: SimPeerNetwork.address(c.nodeId) },
      ]),
    );
    return new Promise((settle) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (!settled) settle(ok);
        settled = true;
      };
      // The operator gives up after 3 s (the leader may be stopped or dead).
      sched.after(3000, () => {
        ctl.abort();
        done(false);
      });
      procs.get(lead!)!.run(() => {
        r.node.changeMembers(cc, addresses, ctl.signal).then(
          () => {
            stats.memberChanges++;
            if (cc.length > 1) stats.jointChanges++;
            log(`${what}: applied on node ${lead}`);
            done(true);
          },
          (e) => {
            log(`${what}: ${e instanceof Error ? e.message : e}`);
            done(false);
          },
        );
      });
    });
  };
  /**
   * Stops a member the group no longer has, for good, once a majority of
   * the new voters have applied the new configuration (an operator checks
   * their status first); until then it keeps running.
   */
  const retire = async (id: number) => {
    const settled = () => {
      const lead = leader();
      const cs = lead === undefined
        ? undefined
        : running.get(lead)!.node.confState();
      if (!cs || (cs.votersOutgoing ?? []).length > 0) return false;
      const have = cs.voters.filter((v) => {
        const c = running.get(v)?.node.confState();
        return c !== undefined && (c.votersOutgoing ?? []).length === 0 &&
          !c.voters.includes(id) && !c.learners.includes(id);
      });
      return have.length > cs.voters.length / 2;
    };
    if (!await until(settled, 3000)) {
      log(`node ${id} is removed but kept running (the new voters lag)`);
      return;
    }
    crash(id);
    removed.add(id);
    ids.splice(ids.indexOf(id), 1);
    log(`node ${id} is retired`);
  };
  const memberChanges = async () => {
    if (!membership) return;
    await sleep(3000);
    while (sched.now < workloadEnd - 2500 && !failure) {
      await sleep(memberFaults.range(800, 2500));
      const lead = leader();
      if (lead === undefined) continue;
      const cs = running.get(lead)!.node.confState();
      if ((cs.votersOutgoing ?? []).length > 0) continue;
      const voters = cs.voters;
      const learners = cs.learners;
      const fresh = spares.find((id) => !ids.includes(id) && !removed.has(id));
      const r = memberFaults.float();
      const unstarted = spares.filter((id) =>
        !ids.includes(id) && !removed.has(id)
      );
      if (unstarted.length === 2 && voters.length === 3 && r < 0.25) {
        // One joint change: two empty servers replace two voters (a
        // majority) at once; both majorities must hold every entry.
        const outs = memberFaults.shuffle(voters).slice(0, 2);
        for (const id of unstarted) {
          ids.push(id);
          procs.get(id)!.restart();
          void boot(id);
        }
        if (
          await change([
            ...unstarted.map((nodeId) => ({
              type: "addNode" as const,
              nodeId,
            })),
            ...outs.map((nodeId) => ({ type: "removeNode" as const, nodeId })),
          ], `joint: ${unstarted} replace ${outs}`)
        ) { for (const out of outs) await retire(out); }
      } else if (fresh !== undefined && r < 0.4) {
        // A new server starts empty and joins as a learner.
        ids.push(fresh);
        procs.get(fresh)!.restart();
        log(`node ${fresh} starts to join`);
        void boot(fresh);
        await change(
          [{ type: "addLearner", nodeId: fresh }],
          `add learner ${fresh}`,
        );
      } else if (learners.length > 0 && r < 0.7) {
        const l = memberFaults.pick(learners);
        if (memberFaults.chance(0.5) || voters.length < 3) {
          await change([{ type: "addNode", nodeId: l }], `promote ${l}`);
        } else {
          // One joint change: the learner replaces a voter (maybe the leader).
          const out = memberFaults.pick(voters);
          if (
            await change([
              { type: "addNode", nodeId: l },
              { type: "removeNode", nodeId: out },
            ], `joint: ${l} replaces ${out}`)
          ) await retire(out);
        }
      } else if (voters.length > 3) {
        const out = memberFaults.pick(voters);
        if (
          await change(
            [{ type: "removeNode", nodeId: out }],
            `remove voter ${out}`,
          )
        ) await retire(out);
      }
    }
  };

  // ---- leadership transfers ----
  // Only when asked for: on seeds of 3+ voters an operator hands
  // leadership to a random other voter now and then
  // (ReplicatedNode.transferLeadership: raft's TimeoutNow), from a stream
  // of its own, giving up after 2 s.
  const transferOps = new Prng(seed ^ 0x7ea5f3);
  const transfers = n >= 3 && transferOps.chance(o.transfers ?? 0);
  const handOvers = async () => {
    if (!transfers) return;
    await sleep(2000);
    while (sched.now < workloadEnd - 2500 && !failure) {
      await sleep(transferOps.range(700, 2500));
      const lead = leader();
      if (lead === undefined) continue;
      const r = running.get(lead)!;
      const others = r.node.confState().voters.filter((v) => v !== lead);
      if (others.length === 0) continue;
      const to = transferOps.pick(others);
      const ctl = new AbortController();
      sched.after(2000, () => ctl.abort());
      procs.get(lead)!.run(() => {
        r.node.transferLeadership(to, ctl.signal).then(
          () => {
            stats.transfers++;
            log(`leadership moved from ${lead} to ${to}`);
          },
          (e) =>
            log(
              `transfer ${lead} -> ${to}: ${
                e instanceof Error ? e.message : e
              }`,
            ),
        );
      });
    }
  };

  // ---- the run ----
  /** The members of the leader's configuration, or undefined while there is none or it is joint. */
  const finalMembers = (): number[] | undefined => {
    const lead = leader();
    if (lead === undefined) return undefined;
    const cs = running.get(lead)!.node.confState();
    if ((cs.votersOutgoing ?? []).length > 0) return undefined;
    return [...cs.voters, ...cs.learners].filter((id) => !lost.has(id));
  };
  /** Each started node's view, for a failure message. */
  const describe = () =>
    ids.map((id) => {
      const r = running.get(id);
      if (!r) return `${id}: down`;
      const st = r.node.status();
      const cs = r.node.confState();
      return `${id}: ${st.role} t${st.term} commit ${st.commitIndex} applied ${r.machine.appliedIndex} voters ${cs.voters}${
        cs.learners.length ? ` learners ${cs.learners}` : ""
      }`;
    }).join("; ");
  const converged = () => {
    const want = finalMembers();
    if (want === undefined || !want.every((id) => running.has(id))) {
      return false;
    }
    const rs = want.map((id) => running.get(id)!);
    const commit = Math.max(...rs.map((r) => r.node.status().commitIndex));
    return rs.every((r) => r.machine.appliedIndex === commit);
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
      memberChanges(),
      handOvers(),
      ...Array.from({ length: clientCount }, (_, c) => client(c + 1)),
    ]);
    if (failure) return;
    net.heal();
    for (const [id, p] of procs) {
      disks.get(id)!.full = false;
      paused.delete(id);
      p.resume();
      restart(id);
    }
    log("everything heals");
    if (!await until(converged, 20_000)) {
      return fail(
        "no_progress",
        `the replicas did not converge after healing: ${describe()}`,
      );
    }
    // Final linearizable reads of every key: a lost acknowledged write shows here.
    for (const key of keys) {
      await runOp(0, leader() ?? ids[0]!, workload.read(key), "linearizable");
    }
    if (!await until(converged, 10_000)) {
      return fail("no_progress", "the replicas did not converge after healing");
    }
    const states = finalMembers()!.map((id) => [
      id,
      hex(running.get(id)!.machine.snapshot()),
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
  try {
    await runEvents(sched, hardEnd, () => {
      checkApplied();
      return finished || failure !== undefined;
    });
  } catch (e) {
    fail("invariant", e instanceof Error ? e.message : String(e));
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
    replay: replayCommand(
      seed,
      o.plantedBug,
      machineName,
      o.membership,
      o.transfers,
    ),
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
      enospcFailures: sum((d) => d.enospcFailures),
      bitFlips: sum((d) => d.bitFlips),
      tornHardStates: sum((d) => d.tornHardStates),
      refusedRecoveries: sum((d) => d.refusedRecoveries),
      snapshotDamages: sum((d) => d.snapshotDamages),
      snapshotFallbacks: sum((d) => d.snapshotFallbacks),
      lostNodes: lost.size,
      memberChanges: stats.memberChanges,
      jointChanges: stats.jointChanges,
      transfers: stats.transfers,
    },
  };
}

/** Same term, type and bytes. */
function sameEntry(a: Entry, b: Entry): boolean {
  if (a.term !== b.term || a.type !== b.type) return false;
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) {
    if (a.data[i] !== b.data[i]) return false;
  }
  return true;
}
