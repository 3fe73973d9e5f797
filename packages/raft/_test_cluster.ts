// Private test helper: N raw nodes on a synchronous in-memory network.
import type { Entry, Message, NodeId } from "./messages.ts";
import type { RaftConfig } from "./raft.ts";
import { RawNode } from "./raw_node.ts";
import { MemoryStorage } from "./storage.ts";

/** A deterministic PRNG for tests (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class TestCluster {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly applied = new Map<NodeId, Entry[]>();
  /** Messages sent, in order (after the drop filter). */
  readonly sent: Message[] = [];
  /** Return true to drop a message. */
  drop: (m: Message) => boolean = () => false;
  readonly #queue: Message[] = [];

  constructor(
    ids: NodeId[],
    extra: Partial<RaftConfig> | ((id: NodeId) => Partial<RaftConfig>) = {},
    seed = 1,
  ) {
    const rnd = seeded(seed);
    for (const id of ids) {
      this.add(id, ids, typeof extra === "function" ? extra(id) : extra, rnd);
    }
  }

  add(
    id: NodeId,
    peers: NodeId[] | undefined,
    extra: Partial<RaftConfig> = {},
    random = seeded(id * 7919),
  ): RawNode {
    const storage = new MemoryStorage();
    const node = new RawNode({
      electionTick: 10,
      heartbeatTick: 1,
      ...extra,
      id,
      peers,
      storage,
      random,
    });
    this.nodes.set(id, node);
    this.storages.set(id, storage);
    this.applied.set(id, []);
    return node;
  }

  node(id: NodeId): RawNode {
    return this.nodes.get(id)!;
  }

  /** Drains every node's Ready, persisting and queueing messages. */
  drainReadys(): void {
    for (const [id, node] of this.nodes) {
      while (node.hasReady()) {
        const rd = node.ready();
        const s = this.storages.get(id)!;
        if (rd.snapshot) s.applySnapshot(rd.snapshot);
        s.append(rd.entries);
        if (rd.hardState) s.setHardState(rd.hardState);
        for (const m of rd.messages) {
          if (this.drop(m)) continue;
          this.sent.push(m);
          this.#queue.push(m);
        }
        this.applied.get(id)!.push(...rd.committedEntries);
        this.onReady?.(id, rd);
        node.advance();
      }
    }
  }

  onReady?: (id: NodeId, rd: ReturnType<RawNode["ready"]>) => void;

  /** Delivers messages until the network is quiet (bounded). */
  settle(limit = 100_000): void {
    for (let i = 0; i < limit; i++) {
      this.drainReadys();
      const m = this.#queue.shift();
      if (!m) return;
      this.nodes.get(m.to)?.step(m);
    }
    throw new Error("network did not settle");
  }

  /** Ticks every node `n` times, settling after each tick. */
  tick(n: number, only?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const [id, node] of this.nodes) {
        if (!only || only.includes(id)) node.tick();
      }
      this.settle();
    }
  }

  /** Elects `id` by forcing its campaign. */
  elect(id: NodeId): void {
    // Bootstrap membership entries must be applied before campaigning.
    this.settle();
    this.node(id).campaign();
    this.settle();
  }

  /** Payloads applied by `id`, as strings (non-empty entries only). */
  values(id: NodeId): string[] {
    const d = new TextDecoder();
    return this.applied.get(id)!
      .filter((e) => e.type === "normal" && e.data.length > 0)
      .map((e) => d.decode(e.data));
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
