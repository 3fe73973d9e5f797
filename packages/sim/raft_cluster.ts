import {
  type Entry,
  isRaftError,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftEvent,
  RawNode,
  type ReadState,
  type Ready,
  type ReplicatedStateMachine,
} from "@strata/raft";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimDisk } from "./sim_disk.ts";
import { SimError } from "./sim_error.ts";
import { type NetworkFaults, RELIABLE, SimNetwork } from "./sim_network.ts";
import { messageBytes } from "./message_bytes.ts";

const RAFT_TYPES = new Set([
  "prop",
  "app",
  "appResp",
  "vote",
  "preVote",
  "voteResp",
  "preVoteResp",
  "heartbeat",
  "heartbeatResp",
  "snap",
  "snapResp",
  "timeoutNow",
  "transferLeader",
  "readIndex",
  "readIndexResp",
]);

/** A non-raft packet on the simulated network (client traffic). */
export interface AppPacket {
  type: string;
}

/** Options of a simulated raft cluster. Times in virtual ms. */
export interface ClusterOptions {
  /** Seed of every random choice. */
  seed: number;
  /** Number of initial voters (ids 1..nodes). */
  nodes: number;
  /** Virtual ms per tick (default 10). */
  tickMs?: number;
  /** Default 15 ticks (150–300 ms). */
  electionTick?: number;
  /** Default 5 ticks (50 ms). */
  heartbeatTick?: number;
  /** Network behaviour (default reliable). */
  faults?: NetworkFaults;
  /** Snapshot every this many applied entries (0 = never, default). */
  snapshotInterval?: number;
  /** Entries kept behind a snapshot for slow followers (default 0). */
  compactKeep?: number;
  /** Fsync latency range [min, max] ms (default [0, 0]: synchronous). */
  diskLatencyMs?: [number, number];
  /** Max clock-rate difference between nodes, fraction (default 0). */
  clockDrift?: number;
  /**
   * BUGGIFY: chance that a tick counts double (early election timeouts and
   * heartbeats; odd but legal unless leases rely on bounded drift).
   */
  earlyTickChance?: number;
  /** Extra raft settings for every node. */
  raft?: Partial<
    Omit<RaftConfig, "id" | "storage" | "peers" | "random" | "applied">
  >;
  /** Builds a node's empty state machine. */
  stateMachine?: (id: NodeId) => ReplicatedStateMachine;
  /** Keep an event trace (printed on failure). */
  trace?: boolean;
  /**
   * Deliberate bug: send a Ready's messages before its writes are synced
   * (breaks the persistence contract; for tests that the simulator notices).
   */
  unsafeSendBeforeSync?: boolean;
  /** Called for each packet that is not a raft message. */
  onPacket?: (node: SimNode, packet: AppPacket, from: number) => void;
  /** Called after a node applied an entry. */
  onApply?: (node: SimNode, entry: Entry) => void;
  /** Called for each read state a node receives. */
  onReadState?: (node: SimNode, rs: ReadState) => void;
}

/** The state machine used when none is given: records applied payloads. */
export class RecordingStateMachine implements ReplicatedStateMachine {
  applied = 0;
  /** Payloads by index (those received through snapshots are summarized). */
  readonly log = new Map<number, string>();
  #decoder = new TextDecoder();

  apply(index: number, data: Uint8Array): void {
    if (index <= this.applied) return;
    if (index !== this.applied + 1) {
      throw new SimError(
        "invariant",
        `applied ${index} after ${this.applied} (gap)`,
      );
    }
    this.applied = index;
    if (data.length > 0) this.log.set(index, this.#decoder.decode(data));
  }

  snapshot(): Uint8Array {
    // The last few payloads stand in for the state.
    const last: [number, string][] = [];
    for (let i = Math.max(1, this.applied - 3); i <= this.applied; i++) {
      const v = this.log.get(i);
      if (v !== undefined) last.push([i, v]);
    }
    return new TextEncoder().encode(
      JSON.stringify({ applied: this.applied, last }),
    );
  }

  restore(index: number, data: Uint8Array): void {
    const s = JSON.parse(new TextDecoder().decode(data)) as {
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
    this.applied = index;
  }
}

/** One simulated server: raft node, live storage, disk and state machine. */
export class SimNode {
  alive = true;
  incarnation = 0;
  raw!: RawNode;
  storage!: MemoryStorage;
  sm!: ReplicatedStateMachine;
  readonly disk = new SimDisk();
  /** A Ready is being persisted (waiting for the fsync). */
  busy = false;
  snapshotting = false;
  /** A pump is scheduled for the next turn (see RaftCluster.pumpSoon). */
  pumpScheduled = false;
  /** Snapshot index last taken by this node's state machine. */
  lastSnapshot = 0;
  /** Virtual ms per tick (drifts per node). */
  tickMs: number;
  /** Initial peers (bootstrap), or undefined for nodes added later. */
  peers: NodeId[] | undefined;

  constructor(readonly id: NodeId, tickMs: number) {
    this.tickMs = tickMs;
  }
}

/**
 * N raft nodes in one deterministic simulation: virtual clock, simulated
 * network and disks, crashes and restarts, with safety checks on every
 * step (one leader per term, identical applied entries, commit and term
 * never going backwards on disk). Also carries the MIT 6.5840 tester
 * helpers (`checkOneLeader`, `one`, `nCommitted`, ...).
 */
export class RaftCluster {
  readonly scheduler = new Scheduler();
  readonly prng: Prng;
  readonly net: SimNetwork<Message | AppPacket>;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly options: ClusterOptions;
  readonly trace: string[] = [];
  /** Entry applied at each index by any node (state machine safety). */
  readonly #appliedAt = new Map<number, { term: number; data: Uint8Array }>();
  readonly #leaders = new Map<number, NodeId>();
  #violation: SimError | undefined;
  readonly tickMs: number;
  readonly #electionTick: number;
  readonly #heartbeatTick: number;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    this.net = new SimNetwork(
      this.scheduler,
      this.prng.fork(),
      options.faults ?? RELIABLE,
    );
    this.tickMs = options.tickMs ?? 10;
    this.#electionTick = options.electionTick ?? 15;
    this.#heartbeatTick = options.heartbeatTick ?? 5;
    const peers = Array.from({ length: options.nodes }, (_, i) => i + 1);
    for (const id of peers) this.#addNode(id, peers);
  }

  #addNode(id: NodeId, peers: NodeId[] | undefined): SimNode {
    const drift = this.options.clockDrift ?? 0;
    const tickMs = this.tickMs * (1 + (this.prng.float() * 2 - 1) * drift);
    const node = new SimNode(id, tickMs);
    node.peers = peers;
    this.nodes.set(id, node);
    this.#boot(node, new MemoryStorage());
    return node;
  }

  /**
   * Adds a node with an empty disk (join it with a conf change).
   * @throws SimError `bad_argument` when the id exists.
   */
  addNode(id: NodeId): SimNode {
    if (this.nodes.has(id)) {
      throw new SimError("bad_argument", `node ${id} exists`);
    }
    return this.#addNode(id, undefined);
  }

  #boot(node: SimNode, storage: MemoryStorage): void {
    node.storage = storage;
    node.sm = this.options.stateMachine?.(node.id) ??
      new RecordingStateMachine();
    const snap = storage.snapshot();
    if (snap.meta.index > 0) node.sm.restore(snap.meta.index, snap.data);
    node.lastSnapshot = snap.meta.index;
    const random = this.prng.fork();
    // The node's monotonic clock runs at its own (drifting) rate: it
    // believes each of its ticks lasts the nominal tickMs.
    const rate = this.tickMs / node.tickMs;
    node.raw = new RawNode({
      electionTick: this.#electionTick,
      heartbeatTick: this.#heartbeatTick,
      clock: () => this.scheduler.now * rate,
      tickMs: this.tickMs,
      ...this.options.raft,
      id: node.id,
      storage,
      peers: node.peers,
      applied: snap.meta.index,
      random: () => random.float(),
    });
    node.alive = true;
    node.busy = false;
    node.snapshotting = false;
    const inc = node.incarnation;
    this.net.register(node.id, (m, from) => {
      if (!node.alive || node.incarnation !== inc) return;
      this.#receive(node, m, from);
    });
    const tick = () => {
      if (!node.alive || node.incarnation !== inc) return;
      this.#guard(() => {
        node.raw.tick();
        if (this.prng.chance(this.options.earlyTickChance ?? 0)) {
          node.raw.tick();
        }
        if (
          this.options.raft?.readOnly === "lease" &&
          node.raw.raft.role === "leader"
        ) this.#checkLeases();
        this.pump(node);
      });
      this.scheduler.after(node.tickMs, tick);
    };
    // Start ticking at a random phase so nodes are not in lock step.
    this.scheduler.after(this.prng.float() * node.tickMs, tick);
    this.pump(node);
  }

  #receive(node: SimNode, m: Message | AppPacket, from: number): void {
    this.#guard(() => {
      if (RAFT_TYPES.has(m.type)) {
        node.raw.step(m as Message);
      } else {
        this.options.onPacket?.(node, m as AppPacket, from);
      }
      this.pump(node);
    });
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!this.#violation) {
        this.#violation = e instanceof SimError
          ? e
          : new SimError("invariant", String(e instanceof Error ? e.stack : e));
      }
      throw this.#violation;
    }
  }

  /**
   * Processes the node's Ready in the next turn of the event loop, so
   * requests made in the same instant are batched into one Ready.
   */
  pumpSoon(node: SimNode): void {
    if (node.pumpScheduled) return;
    node.pumpScheduled = true;
    const inc = node.incarnation;
    this.scheduler.after(0, () => {
      node.pumpScheduled = false;
      if (!node.alive || node.incarnation !== inc) return;
      this.#guard(() => this.pump(node));
    });
  }

  /** Processes the node's Readys until it has none (or waits on an fsync). */
  pump(node: SimNode): void {
    while (node.alive && !node.busy && node.raw.hasReady()) {
      const rd = node.raw.ready();
      this.#persist(node, rd);
      const [lo, hi] = this.options.diskLatencyMs ?? [0, 0];
      if (rd.mustSync && hi > 0) {
        node.busy = true;
        if (this.options.unsafeSendBeforeSync) {
          this.#send(node, rd.messages);
          rd.messages = [];
        }
        const inc = node.incarnation;
        this.scheduler.after(lo + this.prng.float() * (hi - lo), () => {
          if (!node.alive || node.incarnation !== inc) return;
          this.#guard(() => {
            node.disk.sync();
            node.busy = false;
            this.#finish(node, rd);
            this.pump(node);
          });
        });
        return;
      }
      node.disk.sync();
      this.#finish(node, rd);
    }
  }

  #persist(node: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      node.storage.applySnapshot(rd.snapshot);
      node.disk.writeSnapshot(rd.snapshot);
    }
    if (rd.entries.length > 0) {
      node.storage.append(rd.entries);
      node.disk.writeEntries(rd.entries);
    }
    if (rd.hardState) {
      node.storage.setHardState(rd.hardState);
      node.disk.writeHardState(rd.hardState);
    }
  }

  #send(node: SimNode, messages: readonly Message[]): void {
    for (const m of messages) {
      this.net.send(node.id, m.to, m, messageBytes(m));
    }
  }

  #finish(node: SimNode, rd: Ready): void {
    this.#send(node, rd.messages);
    if (rd.softState?.role === "leader") {
      const term = node.raw.raft.term;
      const other = this.#leaders.get(term);
      if (other !== undefined && other !== node.id) {
        throw new SimError(
          "invariant",
          `two leaders in term ${term}: ${other} and ${node.id}`,
        );
      }
      this.#leaders.set(term, node.id);
      if (this.options.raft?.readOnly === "lease") this.#checkLeases();
    }
    if (this.options.trace) {
      for (const e of rd.events) this.#traceEvent(e);
    }
    if (rd.snapshot) {
      node.sm.restore(rd.snapshot.meta.index, rd.snapshot.data);
      node.lastSnapshot = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      this.#checkApplied(node, e);
      const before = node.sm.applied;
      node.sm.apply(e.index, e.type === "normal" ? e.data : EMPTY);
      if (node.sm.applied > before) this.options.onApply?.(node, e);
    }
    node.raw.advance();
    for (const rs of rd.readStates) this.options.onReadState?.(node, rs);
    this.#maybeSnapshot(node);
  }

  /**
   * Lease safety: while a leader's read lease holds, no node may lead a
   * later term (otherwise a lease read could miss that leader's writes).
   */
  #checkLeases(): void {
    let newest: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.alive || n.raw.raft.role !== "leader") continue;
      if (!newest || n.raw.raft.term > newest.raw.raft.term) newest = n;
    }
    if (!newest) return;
    for (const n of this.nodes.values()) {
      if (n === newest || !n.alive) continue;
      const r = n.raw.raft;
      if (
        r.role === "leader" && r.term < newest.raw.raft.term &&
        n.raw.leaseValid()
      ) {
        throw new SimError(
          "invariant",
          `node ${n.id} holds a read lease in term ${r.term} while node ${newest.id} leads term ${newest.raw.raft.term}`,
        );
      }
    }
  }

  #checkApplied(node: SimNode, e: Entry): void {
    const seen = this.#appliedAt.get(e.index);
    if (!seen) {
      this.#appliedAt.set(e.index, { term: e.term, data: e.data });
      return;
    }
    if (seen.term !== e.term || !sameBytes(seen.data, e.data)) {
      throw new SimError(
        "divergence",
        `node ${node.id} applied a different entry at index ${e.index} (term ${e.term} vs ${seen.term})`,
      );
    }
  }

  #maybeSnapshot(node: SimNode): void {
    const every = this.options.snapshotInterval ?? 0;
    if (every <= 0 || node.snapshotting) return;
    const index = node.sm.applied;
    if (index - node.lastSnapshot < every) return;
    // BeginSnapshot: capture the state now; the log keeps going while the
    // snapshot is written, and EndSnapshot compacts the prefix.
    const confState = node.raw.confState();
    const data = node.sm.snapshot();
    node.snapshotting = true;
    const inc = node.incarnation;
    this.scheduler.after(1 + this.prng.float() * 10, () => {
      if (!node.alive || node.incarnation !== inc) return;
      node.snapshotting = false;
      const keep = this.options.compactKeep ?? 0;
      const s = node.storage;
      if (index <= s.snapshot().meta.index || index > s.lastIndex()) return;
      node.disk.saveSnapshot(index, confState, data, keep);
      s.createSnapshot(index, confState, data);
      s.compact(Math.max(s.firstIndex() - 1, index - keep));
      node.lastSnapshot = index;
    });
  }

  #traceEvent(e: RaftEvent): void {
    const t = this.scheduler.now.toFixed(1);
    let line = `${t} n${e.node} t${e.term} ${e.kind}`;
    switch (e.kind) {
      case "role":
        line += ` ${e.role} lead=${e.lead}`;
        break;
      case "vote":
        line += ` ${e.pre ? "pre " : ""}${
          e.granted ? "granted" : "refused"
        } n${e.candidate}: ${e.reason}`;
        break;
      default:
        line += " " + JSON.stringify(e);
    }
    this.trace.push(line);
    if (this.trace.length > 5000) this.trace.splice(0, 1000);
  }

  /** Throws the first safety violation seen, if any. */
  checkViolation(): void {
    if (this.#violation) throw this.#violation;
  }

  // ---- faults ----

  /** Kills node `id` (power loss: unsynced writes may be lost). */
  crash(id: NodeId): void {
    const node = this.#node(id);
    if (!node.alive) return;
    node.alive = false;
    node.incarnation++;
    node.busy = false;
    this.net.unregister(id);
    node.disk.crash(this.prng);
  }

  /** Restarts node `id` from what its disk holds. */
  restart(id: NodeId): void {
    const node = this.#node(id);
    if (node.alive) this.crash(id);
    node.incarnation++;
    this.#guard(() => this.#boot(node, node.disk.load()));
  }

  /** Isolates node `id` from everyone (MIT `disconnect`). */
  disconnect(id: NodeId): void {
    this.net.disconnect(id);
  }

  /** Reconnects node `id` (MIT `connect`). */
  connect(id: NodeId): void {
    this.net.connect(id);
  }

  /** MIT `setunreliable`: 0–27 ms delays, 10% loss. */
  setReliable(reliable: boolean): void {
    const f = this.net.faults;
    if (reliable) {
      f.loss = 0;
      f.maxDelayMs = Math.min(f.maxDelayMs, 5);
    } else {
      f.loss = 0.1;
      f.maxDelayMs = 27;
    }
  }

  #node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new SimError("bad_argument", `no node ${id}`);
    return n;
  }

  /** Node `id`. @throws SimError `bad_argument`. */
  node(id: NodeId): SimNode {
    return this.#node(id);
  }

  // ---- time ----

  /** Runs the simulation for `ms` of virtual time. */
  run(ms: number): void {
    this.scheduler.runFor(ms);
    this.checkViolation();
  }

  /** Runs until `done()` or `limitMs` pass. @returns whether done held. */
  runUntil(done: () => boolean, limitMs: number): boolean {
    const ok = this.scheduler.runWhile(done, limitMs);
    this.checkViolation();
    return ok;
  }

  // ---- MIT tester helpers ----

  /** Alive, connected nodes. */
  connectedIds(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => n.alive && this.net.connected(n.id))
      .map((n) => n.id);
  }

  /**
   * Waits for exactly one leader among connected nodes (latest term wins).
   * @throws SimError `no_progress` if none emerges within 5 s (virtual).
   */
  checkOneLeader(): NodeId {
    for (let iter = 0; iter < 10; iter++) {
      this.run(450 + this.prng.int(100));
      const byTerm = new Map<number, NodeId[]>();
      for (const id of this.connectedIds()) {
        const r = this.#node(id).raw.raft;
        if (r.role === "leader") {
          const list = byTerm.get(r.term) ?? [];
          list.push(id);
          byTerm.set(r.term, list);
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
   * How many nodes applied index `index`, and the payload they agree on.
   * @throws SimError `divergence` when they disagree.
   */
  nCommitted(index: number): [number, string | undefined] {
    let count = 0;
    let cmd: string | undefined;
    for (const node of this.nodes.values()) {
      const sm = node.sm;
      if (!(sm instanceof RecordingStateMachine)) continue;
      if (sm.applied < index) continue;
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
   * MIT `Start`: proposes `cmd` on node `id` if it is leader.
   * @returns the index and term it would get, and whether it is leader.
   */
  start(
    id: NodeId,
    cmd: string,
  ): { index: number; term: number; isLeader: boolean } {
    const node = this.#node(id);
    const r = node.raw.raft;
    if (!node.alive || r.role !== "leader") {
      return { index: -1, term: r.term, isLeader: false };
    }
    try {
      node.raw.propose(new TextEncoder().encode(cmd));
    } catch (e) {
      if (!isRaftError(e, "proposal_dropped")) throw e;
      return { index: -1, term: r.term, isLeader: false };
    }
    const index = r.log.lastIndex();
    this.pumpSoon(node);
    return { index, term: r.term, isLeader: true };
  }

  /**
   * MIT `one`: gets `cmd` committed on at least `expected` nodes, retrying
   * on new leaders for up to 10 s of virtual time.
   * @returns the index. @throws SimError `no_progress`.
   */
  one(cmd: string, expected: number, retry: boolean): number {
    const deadline = this.scheduler.now + 10_000;
    let starts = 0;
    while (this.scheduler.now < deadline) {
      let index = -1;
      const ids = [...this.nodes.keys()];
      for (let k = 0; k < ids.length; k++) {
        starts = (starts + 1) % ids.length;
        const id = ids[starts]!;
        const node = this.#node(id);
        if (!node.alive || !this.net.connected(id)) continue;
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
          this.run(20);
        }
        if (!retry) {
          throw new SimError(
            "no_progress",
            `one(${cmd}) failed to reach agreement`,
          );
        }
      } else {
        this.run(50);
      }
    }
    throw new SimError("no_progress", `one(${cmd}) failed to reach agreement`);
  }

  /** The current leader among alive nodes with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.alive || n.raw.raft.role !== "leader") continue;
      if (!best || n.raw.raft.term > best.raw.raft.term) best = n;
    }
    return best;
  }
}

const EMPTY = new Uint8Array(0);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
