/**
 * N production `ReplicatedNode`s (packages/replication, the loop that
 * serves raft-kv and the GFS masters) on the simulator's ports — the
 * {@link SimReplicaDisk} disk, the {@link SimPeerNetwork} network (the real
 * codec on every message) and each {@link SimProcess}'s clocks and timers —
 * with the MIT 6.5840 tester's helpers (`checkOneLeader`, `one`,
 * `nCommitted`, `wait`, ...). Each node runs a {@link RecordingCommandMachine}
 * that records the commands it applies; the cluster checks on every event
 * that no two nodes apply different entries at one index and that no term
 * has two leaders. There is no Ready loop here: the nodes run their own.
 *
 * ReplicatedNode's loop is async (it awaits its disk), so virtual time
 * advances only inside the async helpers (`run`, `runUntil`, `one`,
 * `checkOneLeader`, `wait`); the rest (`start`, `crash`, `restart`,
 * `disconnect`, ...) act at the current instant.
 */
import type { ClockGuardOptions } from "@strata/raft";
import type { PlantedBug } from "@strata/replication";
import {
  type CommandStateMachine,
  ReplicatedNode,
  ReplicationMetrics,
} from "@strata/replication";
import { messageBytes } from "./message_bytes.ts";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { runEvents } from "./sim_driver.ts";
import { SimError } from "./sim_error.ts";
import { type SimLinkFaults, SimPeerNetwork } from "./sim_peer_network.ts";
import { SimProcess } from "./sim_process.ts";
import { SimReplicaDisk } from "./sim_replica_disk.ts";

/** Options of a {@link ReplicaCluster}. Times in virtual ms. */
export interface ReplicaClusterOptions {
  /** Seed of every random choice. */
  seed: number;
  /** Number of initial voters (ids 1..nodes). */
  nodes: number;
  /** Virtual ms per tick (default 50: a heartbeat every 50 ms). */
  tickMs?: number;
  /** Ticks of the election timeout (default 6: 300–600 ms). */
  electionTicks?: number;
  /** Take a snapshot every this many applied entries (default: never). */
  snapshotInterval?: number;
  /** Entries kept behind a snapshot for slow followers (default 0). */
  compactKeep?: number;
  /** Snapshot bytes per InstallSnapshot message (default: raft's 64 KiB). */
  snapshotChunkBytes?: number;
  /** Fsync latency range [min, max] ms (default [0.05, 0.5]). */
  diskLatencyMs?: [number, number];
  /** Max clock-rate difference between nodes, fraction (default 0). */
  clockDrift?: number;
  /** A deliberate bug in the replication loop (tests of the harness). */
  plantedBug?: PlantedBug;
  /** The nodes' clock guard (default: ReplicatedNode's; false: none). */
  clockGuard?: ClockGuardOptions | false;
  /**
   * Check on every event that no leader holds a valid read lease while
   * another node leads a later term (default off: it costs a status per
   * node per event).
   */
  checkLeases?: boolean;
}

const decoder = new TextDecoder();
/** What the safety check records for an applied entry without a command. */
const NO_COMMAND = "(no command)";

/**
 * The nodes' state machine: records each applied command (as text) by
 * index. Its snapshot holds the last few commands only, so a node that
 * installed a snapshot knows the commands at and after it.
 */
export class RecordingCommandMachine implements CommandStateMachine<number> {
  appliedIndex = 0;
  /** Commands by index (those received through snapshots are summarized). */
  readonly log = new Map<number, string>();

  /**
   * @param onApply sees each command applied, and `undefined` for each
   * entry without one (a leader's empty entry, a configuration change):
   * the cluster's safety check compares both.
   */
  constructor(
    readonly onApply: (index: number, cmd: string | undefined) => void,
  ) {}

  apply(index: number, command: Uint8Array): number {
    this.#advance(index);
    const cmd = decoder.decode(command);
    this.log.set(index, cmd);
    this.onApply(index, cmd);
    return index;
  }

  skip(index: number): void {
    this.#advance(index);
    this.onApply(index, undefined);
  }

  #advance(index: number): void {
    if (index !== this.appliedIndex + 1) {
      throw new SimError(
        "invariant",
        `applied ${index} after ${this.appliedIndex}`,
      );
    }
    this.appliedIndex = index;
  }

  snapshot(): Uint8Array {
    const last: [number, string][] = [];
    for (
      let i = Math.max(1, this.appliedIndex - 3);
      i <= this.appliedIndex;
      i++
    ) {
      const v = this.log.get(i);
      if (v !== undefined) last.push([i, v]);
    }
    return new TextEncoder().encode(
      JSON.stringify({ applied: this.appliedIndex, last }),
    );
  }

  restore(data: Uint8Array, index: number): void {
    const s = JSON.parse(decoder.decode(data)) as {
      applied: number;
      last: [number, string][];
    };
    if (s.applied !== index) {
      throw new SimError(
        "invariant",
        `snapshot says ${s.applied}, metadata ${index}`,
      );
    }
    for (const [i, v] of s.last) this.log.set(i, v);
    this.appliedIndex = index;
  }
}

/** One simulated server: its process, disk, state machine and (while up) its replica. */
export class ReplicaSimNode {
  /** The running replica (undefined while down or starting). */
  replica: ReplicatedNode<number> | undefined;
  sm: RecordingCommandMachine;
  /** Proposals made in the current instant, not yet in the raft log. */
  pending = 0;

  constructor(
    readonly id: number,
    readonly proc: SimProcess,
    readonly disk: SimReplicaDisk,
    readonly random: Prng,
    sm: RecordingCommandMachine,
  ) {
    this.sm = sm;
  }

  /** True while its process runs a started replica. */
  get alive(): boolean {
    return this.proc.up && this.replica !== undefined;
  }

  /** Raft role ("down" while not running). */
  get role(): string {
    return this.alive ? this.replica!.status().role : "down";
  }

  /** Current term (0 while down). */
  get term(): number {
    return this.alive ? this.replica!.status().term : 0;
  }

  /** Entries in its log (those not yet compacted into a snapshot). */
  get logLength(): number {
    if (!this.alive) return 0;
    const s = this.replica!.status();
    return s.lastIndex - s.firstIndex + 1;
  }

  /** Index of its newest snapshot (0 = none). */
  get lastSnapshot(): number {
    return this.alive ? this.replica!.status().snapshotIndex : 0;
  }
}

/**
 * N `ReplicatedNode`s in one deterministic simulation (see the module
 * doc).
 */
export class ReplicaCluster {
  readonly scheduler = new Scheduler();
  readonly prng: Prng;
  readonly net: SimPeerNetwork;
  readonly nodes = new Map<number, ReplicaSimNode>();
  readonly options: ReplicaClusterOptions;
  /** Raft messages sent, by type. */
  readonly messageCounts = new Map<string, number>();
  /** Approximate payload+header bytes of raft messages sent. */
  raftBytes = 0;
  /** Rejected AppendEntries responses (conflict backup round trips). */
  appRejects = 0;
  /**
   * Called after every simulated event (and the continuations it started)
   * inside `run`/`runUntil`: the playground's replay records the cluster
   * there. It must only read (no `status()`: that samples the clocks), so
   * a watched run is the same run.
   */
  afterEvent: (() => void) | undefined;
  readonly #procs = new Map<number, SimProcess>();
  readonly #disconnected = new Set<number>();
  readonly #appliedAt = new Map<number, string>();
  readonly #leaderOfTerm = new Map<number, number>();
  #violation: SimError | undefined;

  constructor(options: ReplicaClusterOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    this.net = new SimPeerNetwork(
      this.scheduler,
      this.prng.fork(),
      this.#procs,
      {
        mode: "datagram",
        minDelayMs: 0.2,
        maxDelayMs: 5,
        loss: 0,
        duplicate: 0,
      },
    );
    const [minMs, maxMs] = options.diskLatencyMs ?? [0.05, 0.5];
    const drift = options.clockDrift ?? 0;
    this.#latency = { minMs, maxMs };
    this.#drift = drift;
    for (let id = 1; id <= options.nodes; id++) this.#addNode(id);
  }

  readonly #latency: { minMs: number; maxMs: number };
  /** One registry for every node and life (a registry per start is costly). */
  readonly #metrics = new ReplicationMetrics();
  readonly #drift: number;

  #addNode(id: number): ReplicaSimNode {
    const proc = new SimProcess(
      this.scheduler,
      this.prng.range(0, 1e9),
      1.8e12 + this.prng.range(-200, 200),
    );
    proc.setClockRate(1 + (this.prng.float() * 2 - 1) * this.#drift);
    this.#procs.set(id, proc);
    const disk = new SimReplicaDisk(
      this.scheduler,
      this.prng.fork(),
      this.#latency,
    );
    const node = new ReplicaSimNode(
      id,
      proc,
      disk,
      this.prng.fork(),
      this.#machine(),
    );
    this.nodes.set(id, node);
    this.#boot(node);
    return node;
  }

  /**
   * Starts a new server `id` with an empty disk that joins the group
   * (`join`): add it with a membership change on the leader.
   * @throws SimError `bad_argument` when the id exists.
   */
  addNode(id: number): ReplicaSimNode {
    if (this.nodes.has(id)) {
      throw new SimError("bad_argument", `node ${id} exists`);
    }
    return this.#addNode(id);
  }

  /** The alive leader with the highest term, if any. */
  leader(): ReplicaSimNode | undefined {
    let best: ReplicaSimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.role !== "leader") continue;
      if (!best || n.term > best.term) best = n;
    }
    return best;
  }

  #machine(): RecordingCommandMachine {
    return new RecordingCommandMachine((index, command) => {
      const cmd = command ?? NO_COMMAND;
      const seen = this.#appliedAt.get(index);
      if (seen === undefined) this.#appliedAt.set(index, cmd);
      else if (seen !== cmd) {
        const show = (c: string) => c.length > 40 ? `${c.slice(0, 40)}…` : c;
        this.#violate(
          new SimError(
            "divergence",
            `two nodes applied different entries at index ${index}: ${
              show(seen)
            } and ${show(cmd)}`,
          ),
        );
      }
    });
  }

  #violate(e: SimError): void {
    this.#violation ??= e;
  }

  /**
   * Lease safety: while a leader's read lease holds, no node may lead a
   * later term (a lease read could miss that leader's writes).
   */
  #checkLeases(): void {
    let newest: ReplicaSimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.role !== "leader") continue;
      if (!newest || n.term > newest.term) newest = n;
    }
    if (!newest) return;
    for (const n of this.nodes.values()) {
      if (n === newest || n.role !== "leader" || n.term >= newest.term) {
        continue;
      }
      if (n.replica!.leaseValid()) {
        this.#violate(
          new SimError(
            "invariant",
            `node ${n.id} holds a read lease in term ${n.term} while node ${newest.id} leads term ${newest.term}`,
          ),
        );
      }
    }
  }

  /** Throws the first safety violation seen, if any. */
  checkViolation(): void {
    if (this.#violation) throw this.#violation;
  }

  /** Starts node's replica from what its disk holds (the process must be up). */
  #boot(node: ReplicaSimNode): void {
    const { id, proc } = node;
    const gen = proc.generation;
    node.sm = this.#machine();
    node.pending = 0;
    const o = this.options;
    const ep = this.net.endpoint(id);
    const transport = {
      ...ep,
      send: (m: Parameters<typeof ep.send>[0], address: string) => {
        this.raftBytes += messageBytes(m);
        this.messageCounts.set(
          m.type,
          (this.messageCounts.get(m.type) ?? 0) + 1,
        );
        if (m.type === "appResp" && m.reject) this.appRejects++;
        return ep.send(m, address);
      },
    };
    // Every node's configuration names the initial voters 1..nodes.
    const members = new Map(
      Array.from({ length: o.nodes }, (_, i) => [
        i + 1,
        { peer: SimPeerNetwork.address(i + 1) },
      ]),
    );
    ReplicatedNode.start(
      {
        id,
        members,
        join: id > o.nodes,
        dataDir: `sim://node-${id}`,
        listen: { hostname: "sim", port: 0 },
        tickMs: o.tickMs ?? 50,
        electionTicks: o.electionTicks ?? 6,
        snapshotEntries: o.snapshotInterval ?? 1e12,
        snapshotCatchUpEntries: o.compactKeep ?? 0,
        ...(o.snapshotChunkBytes
          ? { snapshotChunkBytes: o.snapshotChunkBytes }
          : {}),
        name: `sim node ${id}`,
        metrics: this.#metrics,
        clock: proc.clock,
        ...(o.clockGuard !== undefined ? { clockGuard: o.clockGuard } : {}),
      },
      node.sm,
      {
        storage: node.disk.open(proc),
        transport,
        timers: proc.timers(),
        random: () => node.random.float(),
        ...(o.plantedBug ? { unsafePlantedBug: o.plantedBug } : {}),
      },
    ).then((replica) => {
      if (gen !== proc.generation) return; // crashed while starting
      node.replica = replica;
      replica.onLeaderChange(() => {
        for (const ev of replica.events()) {
          if (ev.kind !== "role" || ev.role !== "leader") continue;
          const other = this.#leaderOfTerm.get(ev.term);
          if (other === undefined) this.#leaderOfTerm.set(ev.term, id);
          else if (other !== id) {
            this.#violate(
              new SimError(
                "invariant",
                `two leaders in term ${ev.term}: ${other} and ${id}`,
              ),
            );
          }
        }
      });
      replica.onFailure((e) =>
        this.#violate(
          new SimError("invariant", `node ${id} failed: ${e}`),
        )
      );
    }, (e) => {
      if (gen === proc.generation) {
        this.#violate(
          new SimError("invariant", `node ${id} failed to start: ${e}`),
        );
      }
    });
  }

  // ---- faults ----

  /** Kills node `id` (kill -9: its unsynced writes may be lost). */
  crash(id: number): void {
    const node = this.node(id);
    if (!node.proc.up) return;
    node.proc.crash();
    node.disk.crash();
    node.replica = undefined;
    this.net.resetNode(id);
  }

  /** Restarts node `id` from what its disk holds (crashing it first if up). */
  restart(id: number): void {
    const node = this.node(id);
    this.crash(id);
    node.proc.restart();
    this.#boot(node);
  }

  /** Isolates node `id` from everyone (MIT `disconnect`). */
  disconnect(id: number): void {
    this.#disconnected.add(id);
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.net.cut(id, other);
      this.net.cut(other, id);
    }
  }

  /** Reconnects node `id` to the connected nodes (MIT `connect`). */
  connect(id: number): void {
    this.#disconnected.delete(id);
    for (const other of this.nodes.keys()) {
      if (other === id || this.#disconnected.has(other)) continue;
      this.net.uncut(id, other);
      this.net.uncut(other, id);
    }
  }

  /** True unless node `id` is disconnected. */
  connected(id: number): boolean {
    return !this.#disconnected.has(id);
  }

  /** MIT `setunreliable`: 0–27 ms delays, 10% loss. */
  setReliable(reliable: boolean): void {
    const f: SimLinkFaults = this.net.faults;
    f.loss = reliable ? 0 : 0.1;
    f.maxDelayMs = reliable ? 5 : 27;
  }

  /** MIT `setlongreordering`: some messages are held back up to 2 s. */
  setLongReordering(on: boolean): void {
    this.net.faults.longDelay = on ? 0.1 : 0;
    this.net.faults.longDelayMs = on ? 2000 : 0;
  }

  /** Node `id`. @throws SimError `bad_argument`. */
  node(id: number): ReplicaSimNode {
    const n = this.nodes.get(id);
    if (!n) throw new SimError("bad_argument", `no node ${id}`);
    return n;
  }

  // ---- time ----

  /** Runs the simulation for `ms` of virtual time. */
  async run(ms: number): Promise<void> {
    await this.runUntil(() => false, ms);
  }

  /** Runs until `done()` or `limitMs` pass. @returns whether done held. */
  async runUntil(done: () => boolean, limitMs: number): Promise<boolean> {
    const end = this.scheduler.now + limitMs;
    const leases = this.options.checkLeases === true;
    const ok = await runEvents(
      this.scheduler,
      end,
      () => {
        this.afterEvent?.();
        if (leases) this.#checkLeases();
        return this.#violation !== undefined || done();
      },
    );
    this.checkViolation();
    if (!ok && this.scheduler.now < end) this.scheduler.now = end;
    return ok;
  }

  // ---- MIT tester helpers ----

  /** Alive, connected nodes. */
  connectedIds(): number[] {
    return [...this.nodes.values()]
      .filter((n) => n.alive && this.connected(n.id))
      .map((n) => n.id);
  }

  /**
   * Waits for exactly one leader among connected nodes (latest term wins).
   * @throws SimError `no_progress` if none emerges within about 5 s.
   */
  async checkOneLeader(): Promise<number> {
    for (let iter = 0; iter < 10; iter++) {
      await this.run(450 + this.prng.int(100));
      const byTerm = new Map<number, number[]>();
      for (const id of this.connectedIds()) {
        const s = this.node(id).replica!.status();
        if (s.role === "leader") {
          const list = byTerm.get(s.term) ?? [];
          list.push(id);
          byTerm.set(s.term, list);
        }
      }
      let last = -1;
      for (const [term, ids] of byTerm) {
        if (ids.length > 1) {
          throw new SimError(
            "invariant",
            `term ${term} has ${ids.length} leaders`,
          );
        }
        if (term > last) last = term;
      }
      if (last >= 0) return byTerm.get(last)![0]!;
    }
    throw new SimError("no_progress", "expected one leader, got none");
  }

  /**
   * Checks that connected nodes agree on the term.
   * @throws SimError `invariant` when they do not.
   */
  checkTerms(): number {
    let term = -1;
    for (const id of this.connectedIds()) {
      const t = this.node(id).term;
      if (term === -1) term = t;
      else if (term !== t) {
        throw new SimError("invariant", "servers disagree on term");
      }
    }
    return term;
  }

  /** @throws SimError when a connected node believes it is leader. */
  checkNoLeader(): void {
    for (const id of this.connectedIds()) {
      if (this.node(id).role === "leader") {
        throw new SimError("invariant", `expected no leader, ${id} leads`);
      }
    }
  }

  /**
   * How many nodes applied index `index`, and the command they agree on.
   * @throws SimError `divergence` when they disagree.
   */
  nCommitted(index: number): [number, string | undefined] {
    let count = 0;
    let cmd: string | undefined;
    for (const node of this.nodes.values()) {
      const sm = node.sm;
      if (sm.appliedIndex < index) continue;
      const v = sm.log.get(index);
      if (v === undefined) continue;
      if (count > 0 && v !== cmd) {
        throw new SimError(
          "divergence",
          `committed values at ${index} differ: ${cmd} vs ${v}`,
        );
      }
      count++;
      cmd = v;
    }
    return [count, cmd];
  }

  /**
   * MIT `Start`: proposes `cmd` on node `id` if it is leader (through
   * `ReplicatedNode.propose`; the node batches the proposals of one
   * instant into one append).
   * @returns the index and term it would get, and whether it is leader.
   */
  start(
    id: number,
    cmd: string,
  ): { index: number; term: number; isLeader: boolean } {
    const node = this.node(id);
    const replica = node.replica;
    if (!node.alive || !replica) return { index: -1, term: 0, isLeader: false };
    const s = replica.status();
    if (s.role !== "leader") {
      return { index: -1, term: s.term, isLeader: false };
    }
    node.proc.run(() => {
      replica.propose(
        new TextEncoder().encode(cmd),
        new AbortController().signal,
      ).catch(() => {});
    });
    // The node appends this instant's proposals in one batch, in a
    // microtask queued by the first of them; count them until it has.
    if (node.pending++ === 0) queueMicrotask(() => node.pending = 0);
    return { index: s.lastIndex + node.pending, term: s.term, isLeader: true };
  }

  /**
   * MIT `one`: gets `cmd` committed on at least `expected` nodes, retrying
   * on new leaders for up to 10 s of virtual time.
   * @returns the index. @throws SimError `no_progress`.
   */
  async one(cmd: string, expected: number, retry: boolean): Promise<number> {
    const deadline = this.scheduler.now + 10_000;
    let starts = 0;
    while (this.scheduler.now < deadline) {
      let index = -1;
      const ids = [...this.nodes.keys()];
      for (let k = 0; k < ids.length; k++) {
        starts = (starts + 1) % ids.length;
        const id = ids[starts]!;
        if (!this.node(id).alive || !this.connected(id)) continue;
        const r = this.start(id, cmd);
        if (r.isLeader) {
          index = r.index;
          break;
        }
      }
      if (index !== -1) {
        const t1 = this.scheduler.now + 2000;
        while (this.scheduler.now < t1) {
          const [n, v] = this.nCommitted(index);
          if (n > 0 && n >= expected && v === cmd) return index;
          await this.run(20);
        }
        if (!retry) {
          throw new SimError(
            "no_progress",
            `one(${cmd}) failed to reach agreement`,
          );
        }
      } else {
        await this.run(50);
      }
    }
    throw new SimError("no_progress", `one(${cmd}) failed to reach agreement`);
  }

  /**
   * MIT `wait`: waits until `n` nodes applied `index` (or some node moved
   * past `startTerm`). @returns the command, or undefined when the term
   * moved. @throws SimError `no_progress`.
   */
  async wait(
    index: number,
    n: number,
    startTerm: number,
  ): Promise<string | undefined> {
    let to = 10;
    for (let iters = 0; iters < 30; iters++) {
      const [nd] = this.nCommitted(index);
      if (nd >= n) break;
      await this.run(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (const node of this.nodes.values()) {
          if (node.term > startTerm) return undefined;
        }
      }
    }
    const [nd, cmd] = this.nCommitted(index);
    if (nd < n) {
      throw new SimError(
        "no_progress",
        `only ${nd} decided for index ${index}; wanted ${n}`,
      );
    }
    return cmd;
  }

  /** Raft requests sent (responses excluded), like the MIT RPC count. */
  rpcCount(): number {
    let n = 0;
    for (const [type, c] of this.messageCounts) {
      if (!type.endsWith("Resp")) n += c;
    }
    return n;
  }
}
