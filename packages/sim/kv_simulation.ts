import {
  type ConfChange,
  type Entry,
  isRaftError,
  type NodeId,
  type RaftConfig,
  type ReplicatedStateMachine,
} from "@strata/raft";
import {
  checkKvHistory,
  type CheckResult,
  type KvInput,
  type KvOperation,
  type KvOutput,
} from "./linearizability.ts";
import { Prng } from "./prng.ts";
import { type AppPacket, RaftCluster, type SimNode } from "./raft_cluster.ts";
import { SimError } from "./sim_error.ts";
import type { NetworkFaults } from "./sim_network.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface KvCommand {
  c: number;
  s: number;
  op: KvInput;
}

/**
 * A plain in-memory key-value map made into a replicated state machine:
 * commands are applied in log order, idempotently by index, with
 * per-client sessions so a retried or duplicated command takes effect once.
 */
export class KvStateMachine implements ReplicatedStateMachine {
  applied = 0;
  readonly data = new Map<string, string>();
  /** Per client: last applied sequence number and its output. */
  readonly sessions = new Map<number, { seq: number; output: KvOutput }>();
  /** Every applied command id "client:seq" (for the lost-write check). */
  readonly appliedOps = new Set<string>();

  apply(index: number, bytes: Uint8Array): void {
    if (index <= this.applied) return;
    if (index !== this.applied + 1) {
      throw new SimError("invariant", `applied ${index} after ${this.applied}`);
    }
    this.applied = index;
    if (bytes.length === 0) return;
    const cmd = JSON.parse(dec.decode(bytes)) as KvCommand;
    const session = this.sessions.get(cmd.c);
    if (session && cmd.s <= session.seq) return;
    this.sessions.set(cmd.c, { seq: cmd.s, output: this.#exec(cmd.op) });
    this.appliedOps.add(`${cmd.c}:${cmd.s}`);
  }

  #exec(op: KvInput): KvOutput {
    switch (op.op) {
      case "get":
        return { value: this.data.get(op.key) ?? null };
      case "put":
        this.data.set(op.key, op.value);
        return { ok: true };
      case "delete":
        this.data.delete(op.key);
        return { ok: true };
      case "cas": {
        const cur = this.data.get(op.key) ?? null;
        if (cur !== op.expected) return { ok: false };
        this.data.set(op.key, op.value);
        return { ok: true };
      }
    }
  }

  /** Reads a key (for ReadIndex / lease reads). */
  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({
      applied: this.applied,
      data: [...this.data],
      sessions: [...this.sessions],
      ops: [...this.appliedOps],
    }));
  }

  restore(index: number, bytes: Uint8Array): void {
    const s = JSON.parse(dec.decode(bytes));
    if (s.applied !== index) {
      throw new SimError("invariant", `snapshot ${s.applied} != ${index}`);
    }
    this.applied = index;
    this.data.clear();
    for (const [k, v] of s.data) this.data.set(k, v);
    this.sessions.clear();
    for (const [k, v] of s.sessions) this.sessions.set(k, v);
    this.appliedOps.clear();
    for (const o of s.ops) this.appliedOps.add(o);
  }

  /** The state compared across replicas. */
  fingerprint(): string {
    return JSON.stringify([...this.data].sort());
  }
}

interface KvRequest extends AppPacket {
  type: "kvReq";
  client: number;
  seq: number;
  op: KvInput;
}

interface KvResponse extends AppPacket {
  type: "kvResp";
  client: number;
  seq: number;
  output?: KvOutput;
  error?: "not_leader" | "dropped";
  leader?: NodeId;
}

/** Options of one KV simulation run. */
export interface KvSimOptions {
  seed: number;
  /** Keep an event trace and print it on failure. */
  trace?: boolean;
  /** Deliberate raft bugs (tests that the simulation catches them). */
  unsafe?: RaftConfig["unsafe"];
  /** Deliberate harness bug: acknowledge before fsync (see ClusterOptions). */
  unsafeSendBeforeSync?: boolean;
  /** Receives the client history as it is recorded (for replays and debugging). */
  history?: KvOperation[];
  /** Virtual ms of client traffic under faults (default 3000). */
  durationMs?: number;
  /** Called with the cluster once it is built, before it runs (replays watch it). */
  onCluster?: (cluster: RaftCluster) => void;
}

/** What a run did (all counts are of this run). */
export interface KvSimResult {
  seed: number;
  /** The fault and configuration choices the seed made. */
  config: string;
  operations: number;
  completed: number;
  unknown: number;
  check: CheckResult;
  virtualMs: number;
  events: number;
  crashes: number;
  /** Membership changes proposed. */
  confChanges: number;
  lostWrites: number;
  echoBytesSaved: number;
}

const CLIENT_BASE = 100;
const KEYS = ["a", "b", "c"];

/**
 * Runs one randomized replicated-KV simulation: clients issue
 * get/put/delete/cas through random nodes while a nemesis partitions,
 * crashes and restarts nodes; then the network heals and the run checks
 * linearizability of the history, that no acknowledged write was lost, and
 * that every replica ends with the same state.
 *
 * @throws SimError (with `seed` and `replay` set) on any violation.
 */
export function runKvSimulation(options: KvSimOptions): KvSimResult {
  const seed = options.seed;
  const holder: { cluster?: RaftCluster } = {};
  try {
    return runKv(options, holder);
  } catch (e) {
    if (options.trace && holder.cluster) {
      console.error(holder.cluster.trace.slice(-300).join("\n"));
    }
    const err = e instanceof SimError ? e : new SimError(
      "invariant",
      e instanceof Error ? e.stack ?? e.message : String(e),
    );
    err.seed = seed;
    err.replay =
      `STRATA_SEED=${seed} deno test -A packages/sim/kv_simulation_test.ts`;
    throw err;
  }
}

function runKv(
  options: KvSimOptions,
  holder: { cluster?: RaftCluster },
): KvSimResult {
  const seed = options.seed;
  const choose = new Prng(seed ^ 0x5eed);
  const nodes = choose.chance(0.6) ? 3 : 5;
  const faults: NetworkFaults = {
    minDelayMs: 0.5,
    maxDelayMs: choose.pick([2, 5, 15, 30]),
    loss: choose.pick([0, 0.01, 0.05, 0.1]),
    duplicate: choose.pick([0, 0.01, 0.05]),
    longDelay: choose.pick([0, 0, 0.01, 0.03]),
    longDelayMs: 300,
  };
  const readMode = choose.pick(["log", "readIndex", "lease"] as const);
  const snapshotInterval = choose.pick([0, 5, 20, 50]);
  // BUGGIFY: odd but legal settings.
  const tinyBatches = choose.chance(0.25);
  const slowDisk = choose.chance(0.5) || options.unsafeSendBeforeSync === true;
  const drift = choose.pick([0, 0.01, 0.04]);
  const maxInflightMsgs = choose.pick([1, 4, 256]);
  // Early timeouts break the drift bound a lease relies on: not with leases.
  const earlyTicks = readMode !== "lease" && choose.chance(0.3);
  const membership = choose.chance(0.3);
  const config = [
    `nodes=${nodes}`,
    `delay<=${faults.maxDelayMs}ms`,
    `loss=${faults.loss}`,
    `dup=${faults.duplicate}`,
    `longDelay=${faults.longDelay}`,
    `reads=${readMode}`,
    `snapshotEvery=${snapshotInterval}`,
    `tinyBatches=${tinyBatches}`,
    `slowDisk=${slowDisk}`,
    `drift=${drift}`,
    `inflight=${maxInflightMsgs}`,
    `earlyTicks=${earlyTicks}`,
    `membership=${membership}`,
  ].join(" ");

  const history: KvOperation[] = options.history ?? [];
  const acked = new Set<string>();
  const servers = new Map<
    NodeId,
    {
      inc: number;
      writes: Map<string, { client: number; seq: number }>;
      reads: Map<string, { client: number; seq: number; key: string }>;
      waiting: { index: number; client: number; seq: number; key: string }[];
    }
  >();
  const serverOf = (node: SimNode) => {
    let s = servers.get(node.id);
    if (!s || s.inc !== node.incarnation) {
      s = {
        inc: node.incarnation,
        writes: new Map(),
        reads: new Map(),
        waiting: [],
      };
      servers.set(node.id, s);
    }
    return s;
  };
  const sm = (node: SimNode) => node.sm as KvStateMachine;
  const reply = (node: SimNode, r: Omit<KvResponse, "type">) =>
    cluster.net.send(node.id, CLIENT_BASE + r.client, { type: "kvResp", ...r });

  const answerReads = (node: SimNode) => {
    const s = serverOf(node);
    if (s.waiting.length === 0) return;
    const applied = sm(node).applied;
    s.waiting = s.waiting.filter((w) => {
      if (w.index > applied) return true;
      reply(node, {
        client: w.client,
        seq: w.seq,
        output: { value: sm(node).get(w.key) },
      });
      return false;
    });
  };

  const cluster: RaftCluster = new RaftCluster({
    seed,
    nodes,
    faults,
    trace: options.trace,
    snapshotInterval,
    compactKeep: choose.pick([0, 3]),
    diskLatencyMs: slowDisk ? [0.2, 4] : [0, 0],
    unsafeSendBeforeSync: options.unsafeSendBeforeSync,
    clockDrift: drift,
    earlyTickChance: earlyTicks ? 0.05 : 0,
    raft: {
      maxSizePerMsg: tinyBatches ? 1 : 64 * 1024,
      maxInflightMsgs,
      snapshotChunkBytes: choose.pick([128, 1024, 64 * 1024]),
      readOnly: readMode === "lease" ? "lease" : "safe",
      leaseDriftTicks: 2,
      maxUncommittedEntriesSize: choose.pick([0, 4096]),
      unsafe: options.unsafe,
    },
    stateMachine: () => new KvStateMachine(),
    onPacket(node, packet) {
      if (packet.type !== "kvReq") return;
      const req = packet as KvRequest;
      const s = serverOf(node);
      const raft = node.raw.raft;
      if (req.op.op === "get" && readMode !== "log") {
        if (raft.lead === 0) {
          reply(node, {
            client: req.client,
            seq: req.seq,
            error: "not_leader",
          });
          return;
        }
        const ctx = `${req.client}:${req.seq}`;
        s.reads.set(ctx, { client: req.client, seq: req.seq, key: req.op.key });
        node.raw.readIndex(ctx);
        return;
      }
      if (raft.lead === 0) {
        reply(node, { client: req.client, seq: req.seq, error: "not_leader" });
        return;
      }
      const cmd: KvCommand = { c: req.client, s: req.seq, op: req.op };
      try {
        node.raw.propose(enc.encode(JSON.stringify(cmd)));
      } catch (e) {
        if (!isRaftError(e, "proposal_dropped")) throw e;
        reply(node, { client: req.client, seq: req.seq, error: "dropped" });
        return;
      }
      s.writes.set(`${req.client}:${req.seq}`, {
        client: req.client,
        seq: req.seq,
      });
    },
    onApply(node, entry: Entry) {
      const s = serverOf(node);
      if (entry.type === "normal" && entry.data.length > 0) {
        const cmd = JSON.parse(dec.decode(entry.data)) as KvCommand;
        const key = `${cmd.c}:${cmd.s}`;
        if (s.writes.has(key)) {
          s.writes.delete(key);
          const session = sm(node).sessions.get(cmd.c);
          if (session && session.seq === cmd.s) {
            reply(node, { client: cmd.c, seq: cmd.s, output: session.output });
          }
        }
      }
      answerReads(node);
    },
    onReadState(node, rs) {
      const s = serverOf(node);
      const r = s.reads.get(rs.ctx);
      if (!r) return;
      s.reads.delete(rs.ctx);
      s.waiting.push({ index: rs.index, ...r });
      answerReads(node);
    },
  });
  options.onCluster?.(cluster);

  holder.cluster = cluster;
  // ---- clients ----
  const sched = cluster.scheduler;
  const prng = cluster.prng.fork();
  const nClients = prng.range(2, 5);
  let stopClients = false;
  let leaderHint: NodeId = 0;
  const timeoutMs = 500;
  for (let k = 0; k < nClients; k++) {
    const client = k;
    let seq = 0;
    let outstanding:
      | { seq: number; op: KvOperation; timer: number }
      | undefined;
    let timerGen = 0;
    const issue = () => {
      if (stopClients) return;
      seq++;
      const key = prng.pick(KEYS);
      const r = prng.float();
      const value = `${client}.${seq}`;
      const input: KvInput = r < 0.4
        ? { op: "get", key }
        : r < 0.7
        ? { op: "put", key, value }
        : r < 0.9
        ? {
          op: "cas",
          key,
          expected: prng.chance(0.3)
            ? null
            : `${prng.int(nClients)}.${prng.range(1, seq)}`,
          value,
        }
        : { op: "delete", key };
      const op: KvOperation = { clientId: client, input, call: sched.now };
      const gen = ++timerGen;
      outstanding = { seq, op, timer: gen };
      const target = leaderHint !== 0 && prng.chance(0.7)
        ? leaderHint
        : prng.pick([...cluster.nodes.keys()]);
      const req: KvRequest = { type: "kvReq", client, seq, op: input };
      cluster.net.send(CLIENT_BASE + client, target, req);
      sched.after(timeoutMs, () => {
        if (!outstanding || outstanding.timer !== gen) return;
        // Unknown outcome: it may take effect later, or never.
        if (input.op !== "get") history.push(op);
        outstanding = undefined;
        leaderHint = 0;
        issue();
      });
    };
    cluster.net.register(CLIENT_BASE + client, (m) => {
      const resp = m as KvResponse;
      if (resp.type !== "kvResp" || !outstanding) return;
      if (resp.seq !== outstanding.seq) return;
      const op = outstanding.op;
      outstanding = undefined;
      timerGen++;
      if (resp.error) {
        // The node did not propose it, but a duplicated copy of the request
        // may have been proposed elsewhere: the outcome is unknown.
        if (op.input.op !== "get") history.push(op);
        leaderHint = 0;
        sched.after(prng.range(5, 30), issue);
        return;
      }
      op.return = sched.now;
      op.output = resp.output;
      history.push(op);
      if (op.input.op !== "get") acked.add(`${client}:${resp.seq}`);
      sched.after(prng.float() * 10, issue);
    });
    sched.after(prng.float() * 50, issue);
  }
  // Clients learn the leader from the cluster (as a "who is leader" probe would).
  const hintLoop = () => {
    if (stopClients) return;
    const l = cluster.leader();
    if (l && prng.chance(0.5)) leaderHint = l.id;
    sched.after(100, hintLoop);
  };
  sched.after(100, hintLoop);

  // ---- nemesis ----
  let nemesisOn = true;
  let crashes = 0;
  let ids = [...cluster.nodes.keys()];
  let nextId = nodes + 1;
  let confChanges = 0;
  // Membership churn, one server at a time: add a learner with a fresh id,
  // promote it once it has caught up, then remove a random voter (maybe
  // the leader) to get back to the original size.
  const changeMembership = () => {
    const l = cluster.leader();
    if (!l) return;
    const cs = l.raw.confState();
    let cc: ConfChange;
    if (cs.learners.length > 0) {
      const id = cs.learners[0]!;
      if (sm(cluster.node(id)).applied < l.raw.raft.log.committed - 20) return;
      cc = { type: "addNode", nodeId: id };
    } else if (cs.voters.length > nodes) {
      cc = { type: "removeNode", nodeId: prng.pick(cs.voters) };
    } else {
      if (nextId > nodes + 4) return;
      const id = nextId++;
      cluster.addNode(id);
      ids = [...cluster.nodes.keys()];
      cc = { type: "addLearner", nodeId: id };
    }
    try {
      l.raw.proposeConfChange(cc);
      confChanges++;
    } catch (e) {
      if (!isRaftError(e, "proposal_dropped")) throw e;
    }
    cluster.pump(l);
  };
  const nemesis = () => {
    if (!nemesisOn) return;
    if (membership && prng.chance(0.3)) changeMembership();
    const r = prng.float();
    const net = cluster.net;
    if (r < 0.2) {
      const shuffled = prng.shuffle(ids);
      const cut = prng.range(1, ids.length - 1);
      net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
    } else if (r < 0.3) {
      const a = prng.pick(ids);
      const b = prng.pick(ids);
      if (a !== b) net.cut(a, b); // asymmetric
    } else if (r < 0.38) {
      net.swizzle(ids);
    } else if (r < 0.48) {
      const l = cluster.leader();
      if (l) net.disconnect(l.id);
    } else if (r < 0.62) {
      // BUGGIFY: prefer a node whose fsync is in flight (worst moment).
      const busy = ids.filter((i) => cluster.node(i).busy);
      const victim = busy.length > 0 && prng.chance(0.7)
        ? prng.pick(busy)
        : prng.pick(ids);
      if (cluster.node(victim).alive) {
        cluster.crash(victim);
        crashes++;
        sched.after(prng.range(50, 800), () => {
          if (!cluster.node(victim).alive) cluster.restart(victim);
        });
      }
    } else if (r < 0.7) {
      const l = cluster.leader();
      if (l) {
        const others = ids.filter((i) => i !== l.id);
        l.raw.transferLeadership(prng.pick(others));
        cluster.pump(l);
      }
    } else {
      net.heal();
    }
    sched.after(prng.range(50, 400), nemesis);
  };
  sched.after(200, nemesis);

  const duration = options.durationMs ?? 3000;
  cluster.run(duration);

  // ---- heal and settle ----
  nemesisOn = false;
  stopClients = true;
  cluster.net.heal();
  cluster.net.faults = { ...faults, loss: 0, duplicate: 0, longDelay: 0 };
  for (const id of ids) if (!cluster.node(id).alive) cluster.restart(id);
  cluster.run(timeoutMs + 100);

  // Liveness after healing: a write commits everywhere.
  let leader: SimNode | undefined;
  cluster.runUntil(() => (leader = cluster.leader()) !== undefined, 10_000);
  if (!leader) throw new SimError("no_progress", "no leader after healing");
  const finalIndex = leader.raw.raft.log.lastIndex() + 1;
  try {
    leader.raw.propose(new Uint8Array(0));
  } catch (e) {
    // A transfer in progress: the no-op of the next leader does the job.
    if (!isRaftError(e, "proposal_dropped")) throw e;
  }
  cluster.pump(leader);
  const members = () => {
    const cs = cluster.leader()?.raw.confState() ?? leader!.raw.confState();
    return [...cs.voters, ...cs.learners].map((id) => cluster.node(id));
  };
  const settled = cluster.runUntil(
    () => members().every((n) => n.alive && sm(n).applied >= finalIndex),
    10_000,
  );
  if (!settled) {
    throw new SimError(
      "no_progress",
      `replicas did not converge: applied ${
        members().map((n) => `${n.id}:${sm(n).applied}`).join(",")
      }, wanted ${finalIndex}; leader ${leader.id} sees ${
        JSON.stringify(leader.raw.status().progress)
      }`,
    );
  }
  cluster.run(200);
  const fingerprints = new Set(members().map((n) => sm(n).fingerprint()));
  if (fingerprints.size !== 1) {
    throw new SimError("divergence", "replicas hold different states");
  }
  const final = sm(leader);
  for (const id of acked) {
    if (!final.appliedOps.has(id)) {
      throw new SimError("lost_write", `acknowledged write ${id} was lost`);
    }
  }
  const check = checkKvHistory(history, { timeoutMs: 10_000 });
  if (check.result === "illegal") {
    throw new SimError(
      "not_linearizable",
      `history of ${history.length} operations is not linearizable: ${check.info}`,
    );
  }
  let echo = 0;
  let lost = 0;
  for (const n of cluster.nodes.values()) {
    echo += n.raw.raft.stats.echoBytesSaved;
    lost += n.disk.lostWrites;
  }
  return {
    seed,
    config,
    operations: history.length,
    completed: history.filter((o) => o.return !== undefined).length,
    unknown: history.filter((o) => o.return === undefined).length,
    check,
    virtualMs: sched.now,
    events: sched.executed,
    crashes,
    confChanges,
    lostWrites: lost,
    echoBytesSaved: echo,
  };
}
