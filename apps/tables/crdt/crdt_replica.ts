/**
 * `crdt_replica.ts`: one server's replica of one CRDT range: the key
 * states in memory, their log on disk, and, per other replica, the keys
 * that changed here since that replica last acknowledged them (what the
 * next anti-entropy push sends it). A local write and a merged push both
 * mark the key for every other replica; a push that brought less than this
 * replica knows marks the key for its sender too, so one push each way
 * makes two replicas equal. Only states on disk are pushed: a state a
 * peer had before this replica lost it in a crash could carry a set dot or
 * a counter total this replica would then hand out again for another write.
 */
import { EdgeError } from "@strata/edge";
import type { HybridClock } from "./hlc.ts";
import {
  applyOp,
  canonicalValue,
  type CrdtOp,
  type CrdtValue,
  mergeValue,
  sameValue,
} from "./crdt_value.ts";
import type { CrdtLog } from "./crdt_log.ts";

/** One range held here. */
export class CrdtReplica {
  /** Other replicas' server ids → keys they have not acknowledged. */
  readonly dirty = new Map<string, Set<string>>();
  /** Each key's latest state on disk here: what pushes send. */
  readonly durable: Map<string, CrdtValue>;
  /** Per peer, keys in a push not yet answered. */
  readonly #sending = new Map<string, number>();
  /** Operations applied here, and pushed states that changed a key. */
  applied = 0;
  merged = 0;

  /**
   * @param range its name; @param node this server's id; @param clock
   * this server's clock; @param values the states loaded from `log`.
   */
  constructor(
    readonly range: string,
    /** The declaration this replica belongs to. */
    readonly incarnation: string,
    readonly node: string,
    private readonly clock: HybridClock,
    readonly values: Map<string, CrdtValue>,
    private readonly log: CrdtLog,
    peers: string[],
  ) {
    this.durable = new Map(values);
    this.setPeers(peers);
    // After a start, every key goes to every peer once: a push lost in
    // the crash is made again (merging twice changes nothing).
    for (const p of peers) this.markAll(p);
  }

  /** The other replicas (a declaration may change them). */
  setPeers(peers: string[]): void {
    for (const p of peers) {
      if (p !== this.node && !this.dirty.has(p)) this.dirty.set(p, new Set());
    }
    for (const p of [...this.dirty.keys()]) {
      if (!peers.includes(p)) this.dirty.delete(p);
    }
  }

  /** Every key is to be sent to `peer` (start, reconnect, periodic). */
  markAll(peer: string): void {
    const d = this.dirty.get(peer);
    if (d) { for (const k of this.durable.keys()) d.add(k); }
  }

  #durable(key: string, v: CrdtValue): void {
    const d = this.durable.get(key);
    this.durable.set(key, d ? mergeValue(d, v) : v);
  }

  #mark(key: string, except?: string): void {
    for (const [p, d] of this.dirty) if (p !== except) d.add(key);
  }

  /** Applies a client's operation here; resolves to the key's state once durable. */
  async update(key: string, op: CrdtOp): Promise<CrdtValue> {
    const old = this.values.get(key) ?? {};
    const next = applyOp(old, op, this.node, () => {
      // A register write comes after the write it replaces, when that
      // one's clock is believable; otherwise the older write may win.
      if (old.r) this.clock.observe(old.r.ts);
      return this.clock.now();
    });
    if (op.op === "incr") {
      // Past 2^53 - 1 the sum is no longer exact, and peers refuse it.
      const total = (op.by > 0 ? next.c!.p : next.c!.n)[this.node]!;
      if (total > Number.MAX_SAFE_INTEGER) {
        throw new EdgeError(
          "bad_request",
          `the counter's ${
            op.by > 0 ? "increments" : "decrements"
          } at this replica would pass 2^53 - 1`,
        );
      }
    }
    this.values.set(key, next);
    this.applied++;
    await this.log.append([[key, next]]);
    this.#durable(key, next);
    this.#mark(key);
    return next;
  }

  /**
   * Merges another replica's key states; resolves once the changed ones
   * are durable. @returns how many keys changed here.
   */
  async merge(
    from: string,
    entries: { key: string; value: CrdtValue }[],
  ): Promise<number> {
    const changed: [string, CrdtValue][] = [];
    const back: string[] = [];
    for (const { key, value } of entries) {
      if (value.r) this.clock.observe(value.r.ts);
      const old = this.values.get(key);
      const next = old ? mergeValue(old, value) : canonicalValue(value);
      if (!old || !sameValue(old, next)) {
        this.values.set(key, next);
        changed.push([key, next]);
      }
      // The sender lacks something this replica has: send it back.
      if (!sameValue(next, value)) back.push(key);
    }
    this.merged += changed.length;
    if (changed.length) await this.log.append(changed);
    for (const [key, next] of changed) {
      this.#durable(key, next);
      this.#mark(key, from);
    }
    for (const key of back) this.dirty.get(from)?.add(key);
    return changed.length;
  }

  /** Takes up to `max` keys to send `peer` (put them back with {@link unsent} on failure). */
  takeDirty(peer: string, max: number): string[] {
    const d = this.dirty.get(peer);
    if (!d || d.size === 0) return [];
    const keys: string[] = [];
    for (const k of d) {
      keys.push(k);
      d.delete(k);
      if (keys.length >= max) break;
    }
    this.#sending.set(peer, (this.#sending.get(peer) ?? 0) + keys.length);
    return keys;
  }

  /** `peer` acknowledged a push of `keys` ({@link takeDirty}). */
  sent(peer: string, keys: string[]): void {
    this.#sending.set(peer, (this.#sending.get(peer) ?? 0) - keys.length);
  }

  /** Keys whose push to `peer` failed: to send again. */
  unsent(peer: string, keys: string[]): void {
    this.sent(peer, keys);
    const d = this.dirty.get(peer);
    if (d) { for (const k of keys) d.add(k); }
  }

  /** Keys not yet acknowledged by each peer (waiting or in a push). */
  pending(): Record<string, number> {
    return Object.fromEntries(
      [...this.dirty].map((
        [p, d],
      ) => [p, d.size + (this.#sending.get(p) ?? 0)]),
    );
  }

  /** Closes the log (after queued appends). */
  close(): Promise<void> {
    return this.log.close();
  }
}
