/**
 * "Follow a key": folds what the playground observes about one key —
 * writes it proposed, the answers it got, and the watch events each raft
 * node streamed back — into the story of every write: proposed where,
 * committed at which index and term, applied on which nodes and when.
 * Pure: the caller stamps every observation with its own clock.
 */

/** One thing seen about the followed key. */
export type KeyObservation =
  | {
    type: "proposed";
    /** The playground's id of the write. */
    writeId: number;
    /** Raft node the write was sent to. */
    node: number;
    value: string;
    atMs: number;
  }
  | {
    type: "committed";
    writeId: number;
    /** Log index (= KV revision) the write got. */
    index: number;
    /** Term the proposing node reported once the write was applied there. */
    term: number;
    atMs: number;
  }
  | { type: "failed"; writeId: number; message: string; atMs: number }
  | {
    type: "applied";
    /** Raft node whose state machine applied it (seen on its watch stream). */
    node: number;
    index: number;
    /** "put" or "delete". */
    op: string;
    value?: string;
    atMs: number;
  };

/** When a write reached one node's state machine. */
export interface AppliedOn {
  /** Raft node that applied it. */
  node: number;
  /** ms after the proposal (or after the first apply seen, for writes made elsewhere). */
  afterMs: number;
}

/** The story of one write to the key. */
export interface KeyWrite {
  /** The playground's write id, or null for a write made by another client. */
  writeId: number | null;
  /** Node the write was proposed at, or null when made elsewhere. */
  proposedAt: number | null;
  /** The value written (null for a delete). */
  value: string | null;
  /** "put" or "delete" (as applied; "put" until an apply is seen). */
  op: string;
  /** Wall-clock-ish time of the proposal (or first apply), ms. */
  startedAtMs: number;
  /** Awaiting the proposing node's answer, committed, or failed. */
  status: "pending" | "committed" | "failed";
  /** Log index (= KV revision) it got (null: not committed yet). */
  index: number | null;
  /** Term the proposing node reported (null: not committed, or made elsewhere). */
  term: number | null;
  /** ms from proposal to the proposing node's answer. */
  committedAfterMs: number | null;
  /** Nodes that applied it, earliest first. */
  applied: AppliedOn[];
  /** Why it failed (null unless `status` is "failed"). */
  error: string | null;
}

/** The followed key and its writes, newest first. */
export interface KeyFlowView {
  /** The key followed. */
  key: string;
  /** Its writes, newest first. */
  writes: KeyWrite[];
}

interface Applies {
  op: string;
  value?: string;
  byNode: Map<number, number>;
}

/** Accumulates {@link KeyObservation}s of one key; at most `maxWrites` are kept. */
export class KeyFlow {
  #proposals = new Map<number, KeyWrite>();
  #applies = new Map<number, Applies>();
  #writeOfIndex = new Map<number, number>();
  #order: Array<
    { kind: "proposal"; id: number } | {
      kind: "index";
      index: number;
    }
  > = [];

  /**
   * Starts an empty flow for `key`.
   * @param key the key followed; @param maxWrites writes remembered.
   */
  constructor(readonly key: string, readonly maxWrites = 20) {}

  /** Records one observation; ones about unknown writes are ignored. */
  record(o: KeyObservation): void {
    switch (o.type) {
      case "proposed":
        if (this.#proposals.has(o.writeId)) return;
        this.#proposals.set(o.writeId, {
          writeId: o.writeId,
          proposedAt: o.node,
          value: o.value,
          op: "put",
          startedAtMs: o.atMs,
          status: "pending",
          index: null,
          term: null,
          committedAfterMs: null,
          applied: [],
          error: null,
        });
        this.#order.push({ kind: "proposal", id: o.writeId });
        break;
      case "committed": {
        const w = this.#proposals.get(o.writeId);
        if (!w) return;
        w.status = "committed";
        w.index = o.index;
        w.term = o.term;
        w.committedAfterMs = Math.max(0, o.atMs - w.startedAtMs);
        w.error = null;
        this.#writeOfIndex.set(o.index, o.writeId);
        break;
      }
      case "failed": {
        const w = this.#proposals.get(o.writeId);
        if (!w || w.status === "committed") return;
        w.status = "failed";
        w.error = o.message;
        break;
      }
      case "applied": {
        let a = this.#applies.get(o.index);
        if (!a) {
          a = { op: o.op, value: o.value, byNode: new Map() };
          this.#applies.set(o.index, a);
          this.#order.push({ kind: "index", index: o.index });
        }
        // The first sighting on a node is when it applied; a replay of the
        // watch after a reconnect is not a second apply.
        if (!a.byNode.has(o.node)) a.byNode.set(o.node, o.atMs);
        break;
      }
    }
    this.#trim();
  }

  #trim(): void {
    while (this.#order.length > this.maxWrites * 3) {
      const first = this.#order.shift()!;
      if (first.kind === "proposal") this.#proposals.delete(first.id);
      else this.#applies.delete(first.index);
    }
  }

  /** The key's writes, newest first, at most `maxWrites`. */
  view(): KeyFlowView {
    const writes: KeyWrite[] = [];
    const claimed = new Set<number>();
    for (const w of this.#proposals.values()) {
      const out: KeyWrite = { ...w, applied: [] };
      if (w.index !== null) {
        claimed.add(w.index);
        const a = this.#applies.get(w.index);
        if (a) {
          out.op = a.op;
          out.applied = appliedList(a, w.startedAtMs);
        }
      }
      writes.push(out);
    }
    for (const [index, a] of this.#applies) {
      if (claimed.has(index)) continue;
      // Applied before the proposer's answer arrived? Then it is ours but
      // not yet committed from our point of view: wait for the answer.
      if (this.#writeOfIndex.has(index)) continue;
      const started = Math.min(...a.byNode.values());
      const pendingOwn = [...this.#proposals.values()].some((w) =>
        w.status === "pending" && w.value === (a.value ?? null) &&
        w.startedAtMs <= started
      );
      if (pendingOwn) continue;
      writes.push({
        writeId: null,
        proposedAt: null,
        value: a.value ?? null,
        op: a.op,
        startedAtMs: started,
        status: "committed",
        index,
        term: null,
        committedAfterMs: null,
        applied: appliedList(a, started),
        error: null,
      });
    }
    writes.sort((x, y) =>
      (y.index ?? Infinity) - (x.index ?? Infinity) ||
      y.startedAtMs - x.startedAtMs
    );
    return { key: this.key, writes: writes.slice(0, this.maxWrites) };
  }
}

function appliedList(a: Applies, fromMs: number): AppliedOn[] {
  return [...a.byNode].map(([node, at]) => ({
    node,
    afterMs: Math.max(0, at - fromMs),
  })).sort((x, y) => x.afterMs - y.afterMs || x.node - y.node);
}
