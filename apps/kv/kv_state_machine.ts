import { CodecError, defineMessage } from "@strata/codec";
import { z } from "zod";
import {
  bytesSchema,
  type Compare,
  type KvCommand,
  type TxnOp,
} from "./kv_commands.ts";
import { OrderedMap } from "./ordered_map.ts";

/** A stored key with its revisions (etcd's KeyValue). */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  /** Log index of the write that created the key. */
  createRevision: number;
  /** Log index of the last write to the key. */
  modRevision: number;
  /** Number of writes since creation (1 after the first put). */
  version: number;
  /** The session the key is bound to, if any. */
  session?: number;
}

/** A committed change, as watchers see it. */
export interface WatchEvent {
  type: "put" | "delete";
  key: string;
  /** The new value (puts only). */
  value?: Uint8Array;
  /** The log index the change was committed at. */
  revision: number;
}

/** What applying one command produced. */
export type KvResult =
  | { op: "put"; revision: number; prev?: KeyValue }
  | { op: "delete"; revision: number; deleted: boolean }
  | { op: "cas"; revision: number; succeeded: boolean; current?: KeyValue }
  | {
    op: "txn";
    revision: number;
    succeeded: boolean;
    results: Array<
      { op: TxnOp["op"]; key: string; kv?: KeyValue; deleted?: boolean }
    >;
  }
  | {
    op: "session_open";
    revision: number;
    id: number;
    ttlMs: number;
    expiresAt: number;
  }
  | { op: "session_keepalive"; revision: number; id: number; expiresAt: number }
  | { op: "session_close"; revision: number; id: number; closed: boolean }
  | { op: "expire"; revision: number; expired: number[] }
  | {
    op: "lock";
    revision: number;
    acquired: boolean;
    /** Fencing token: the revision at which the lock was taken. */
    token: number;
    holder: number;
  }
  | { op: "unlock"; revision: number; released: boolean }
  | {
    op: "error";
    revision: number;
    code: "session_not_found";
    message: string;
  };

/** A session (Chubby's, etcd's lease): keys bound to it end with it. */
export interface Session {
  id: number;
  ttlMs: number;
  /**
   * The proposer's wall clock (ms) at its last open or keep-alive through
   * the log, plus the TTL: reported to clients, and what an old-style
   * `expire {now}` entry compares with. The leader's expiry decisions do
   * not read it (session_renewals.ts).
   */
  expiresAt: number;
  /**
   * Log index of the last entry that opened or renewed it (a restored
   * snapshot of the older format: that snapshot's index). A
   * `session_expire` decided at an earlier index leaves it alone.
   */
  renewedAt: number;
}

/** Keys under this prefix are the lock files of `/v1/locks/:name`. */
export const LOCK_PREFIX = "_locks/";

const snapshotKey = z.object({
  key: z.string(),
  value: bytesSchema,
  createRevision: z.number().int(),
  modRevision: z.number().int(),
  version: z.number().int(),
  session: z.number().int().optional(),
});

const SnapshotMessage = defineMessage(
  "KvSnapshot",
  z.object({
    appliedIndex: z.number().int().nonnegative(),
    keys: z.array(snapshotKey),
    sessions: z.array(z.object({
      id: z.number().int(),
      ttlMs: z.number().int(),
      expiresAt: z.number().int(),
      renewedAt: z.number().int().nonnegative(),
    })),
  }),
);

/**
 * Snapshots written before sessions carried `renewedAt` (2026-12-07):
 * still restored. Objects travel as positional arrays of fixed length, so
 * a session of this format fails the current schema, which then falls back
 * to this one.
 */
const SnapshotMessageBeforeRenewedAt = defineMessage(
  "KvSnapshot",
  z.object({
    appliedIndex: z.number().int().nonnegative(),
    keys: z.array(snapshotKey),
    sessions: z.array(z.object({
      id: z.number().int(),
      ttlMs: z.number().int(),
      expiresAt: z.number().int(),
    })),
  }),
);

/** Decodes a snapshot of either format (older sessions: renewed at its index). */
function decodeSnapshot(
  bytes: Uint8Array,
): z.output<typeof SnapshotMessage.schema> {
  try {
    return SnapshotMessage.decode(bytes);
  } catch (e) {
    if (!(e instanceof CodecError) || e.code !== "schema_violation") throw e;
    const old = SnapshotMessageBeforeRenewedAt.decode(bytes);
    return {
      ...old,
      sessions: old.sessions.map((s) => ({
        ...s,
        renewedAt: old.appliedIndex,
      })),
    };
  }
}

/**
 * The replicated key-value store's state machine: a plain, non-replicated
 * ordered map with revisions, transactions, sessions and locks. Raft makes
 * it replicated by feeding every replica the same commands in the same
 * order; this class never looks at a clock or the network.
 *
 * `apply` is idempotent by index: an index at or below `appliedIndex` is
 * skipped, so replaying the log after a restart is harmless.
 */
export class KvStateMachine {
  #keys: OrderedMap<string, KeyValue> = new OrderedMap<string, KeyValue>();
  #sessions = new Map<number, Session & { keys: Set<string> }>();
  #applied = 0;

  /** Last log index applied. It is also the store's current revision. */
  get appliedIndex(): number {
    return this.#applied;
  }

  /** Number of keys stored. */
  get size(): number {
    return this.#keys.size;
  }

  /** Number of live sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Marks an index applied that carried no KV command (Raft's own entries). */
  skip(index: number): void {
    if (index > this.#applied) this.#applied = index;
  }

  /**
   * Applies the command committed at `index`.
   * @returns the result and the watch events, or undefined when `index` was
   *   already applied.
   */
  apply(
    index: number,
    command: KvCommand,
  ): { result: KvResult; events: WatchEvent[] } | undefined {
    if (index <= this.#applied) return undefined;
    this.#applied = index;
    const events: WatchEvent[] = [];
    const result = this.#run(index, command, events);
    return { result, events };
  }

  /** The key's current value and revisions. */
  get(key: string): KeyValue | undefined {
    return this.#keys.get(key);
  }

  /**
   * Keys starting with `prefix`, after `after` (exclusive), in order.
   * @param limit at most this many.
   */
  range(prefix: string, after: string | undefined, limit: number): KeyValue[] {
    const out: KeyValue[] = [];
    const start = after !== undefined && after >= prefix ? after : prefix;
    for (const [k, kv] of this.#keys.entries(start)) {
      if (!k.startsWith(prefix)) break;
      if (after !== undefined && k <= after) continue;
      out.push(kv);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** A session by id. */
  session(id: number): Session | undefined {
    const s = this.#sessions.get(id);
    return s && sessionOf(s);
  }

  /** Every live session, in opening order (views: read them at once). */
  sessions(): IterableIterator<Readonly<Session>> {
    // No copies: the leader walks them on every tick.
    return this.#sessions.values();
  }

  /**
   * Sessions whose `expiresAt` is at or before `now`: what an old-style
   * `expire {now}` entry ends (leaders decide on their monotonic clock now).
   */
  expiredSessions(now: number): number[] {
    const out: number[] = [];
    for (const s of this.#sessions.values()) {
      if (s.expiresAt <= now) out.push(s.id);
    }
    return out;
  }

  /** Serialises the whole state (checksummed by the snapshot store). */
  snapshot(): Uint8Array {
    return SnapshotMessage.encode({
      appliedIndex: this.#applied,
      keys: [...this.#keys.values()],
      sessions: [...this.#sessions.values()].map(sessionOf),
    });
  }

  /**
   * Replaces the state with a snapshot's.
   * @throws CodecError when the bytes are not a valid snapshot.
   */
  restore(bytes: Uint8Array): void {
    const snap = decodeSnapshot(bytes);
    this.#keys = new OrderedMap<string, KeyValue>();
    this.#sessions = new Map();
    for (const s of snap.sessions) {
      this.#sessions.set(s.id, { ...s, keys: new Set() });
    }
    for (const kv of snap.keys) {
      this.#keys.set(kv.key, kv);
      if (kv.session !== undefined) {
        this.#sessions.get(kv.session)?.keys.add(kv.key);
      }
    }
    this.#applied = snap.appliedIndex;
  }

  #run(rev: number, c: KvCommand, events: WatchEvent[]): KvResult {
    switch (c.op) {
      case "put": {
        if (c.session !== undefined && !this.#sessions.has(c.session)) {
          return noSession(rev, c.session);
        }
        const prev = this.#put(rev, c.key, c.value, c.session, events);
        return { op: "put", revision: rev, prev };
      }
      case "delete":
        return {
          op: "delete",
          revision: rev,
          deleted: this.#delete(rev, c.key, events),
        };
      case "cas": {
        const cur = this.#keys.get(c.key);
        let ok = true;
        if (c.expectValue !== undefined) {
          ok = c.expectValue === null
            ? cur === undefined
            : cur !== undefined && bytesEqual(cur.value, c.expectValue);
        }
        if (ok && c.expectRevision !== undefined) {
          ok = (cur?.modRevision ?? 0) === c.expectRevision;
        }
        if (!ok) {
          return { op: "cas", revision: rev, succeeded: false, current: cur };
        }
        if (c.value === null) this.#delete(rev, c.key, events);
        else this.#put(rev, c.key, c.value, undefined, events);
        return {
          op: "cas",
          revision: rev,
          succeeded: true,
          current: this.#keys.get(c.key),
        };
      }
      case "txn": {
        const succeeded = c.compare.every((cmp) => this.#holds(cmp));
        const ops = succeeded ? c.success : c.failure;
        const results: Extract<KvResult, { op: "txn" }>["results"] = [];
        for (const op of ops) {
          if (op.op === "put") {
            this.#put(rev, op.key, op.value, undefined, events);
            results.push({
              op: "put",
              key: op.key,
              kv: this.#keys.get(op.key),
            });
          } else if (op.op === "delete") {
            results.push({
              op: "delete",
              key: op.key,
              deleted: this.#delete(rev, op.key, events),
            });
          } else {
            results.push({
              op: "get",
              key: op.key,
              kv: this.#keys.get(op.key),
            });
          }
        }
        return { op: "txn", revision: rev, succeeded, results };
      }
      case "session_open": {
        const s = {
          id: rev,
          ttlMs: c.ttlMs,
          expiresAt: c.now + c.ttlMs,
          renewedAt: rev,
          keys: new Set<string>(),
        };
        this.#sessions.set(rev, s);
        return {
          op: "session_open",
          revision: rev,
          id: rev,
          ttlMs: c.ttlMs,
          expiresAt: s.expiresAt,
        };
      }
      case "session_keepalive": {
        const s = this.#sessions.get(c.id);
        if (!s) return noSession(rev, c.id);
        s.expiresAt = Math.max(s.expiresAt, c.now + s.ttlMs);
        s.renewedAt = rev;
        return {
          op: "session_keepalive",
          revision: rev,
          id: c.id,
          expiresAt: s.expiresAt,
        };
      }
      case "session_close":
        return {
          op: "session_close",
          revision: rev,
          id: c.id,
          closed: this.#endSession(rev, c.id, events),
        };
      case "expire": {
        const expired = this.expiredSessions(c.now);
        for (const id of expired) this.#endSession(rev, id, events);
        return { op: "expire", revision: rev, expired };
      }
      case "session_expire": {
        // The leader's decision, except for sessions an entry after its
        // decision renewed: those keep-alives were acknowledged.
        const expired: number[] = [];
        for (const id of c.ids) {
          const s = this.#sessions.get(id);
          if (s && s.renewedAt <= c.asOf) {
            this.#endSession(rev, id, events);
            expired.push(id);
          }
        }
        return { op: "expire", revision: rev, expired };
      }
      case "lock": {
        if (!this.#sessions.has(c.session)) return noSession(rev, c.session);
        const key = LOCK_PREFIX + c.name;
        const cur = this.#keys.get(key);
        if (cur) {
          return {
            op: "lock",
            revision: rev,
            acquired: cur.session === c.session,
            token: cur.createRevision,
            holder: cur.session ?? 0,
          };
        }
        this.#put(
          rev,
          key,
          new TextEncoder().encode(String(c.session)),
          c.session,
          events,
        );
        return {
          op: "lock",
          revision: rev,
          acquired: true,
          token: rev,
          holder: c.session,
        };
      }
      case "unlock": {
        const key = LOCK_PREFIX + c.name;
        const cur = this.#keys.get(key);
        if (!cur || cur.session !== c.session) {
          return { op: "unlock", revision: rev, released: false };
        }
        this.#delete(rev, key, events);
        return { op: "unlock", revision: rev, released: true };
      }
    }
  }

  #put(
    rev: number,
    key: string,
    value: Uint8Array,
    session: number | undefined,
    events: WatchEvent[],
  ): KeyValue | undefined {
    const prev = this.#keys.get(key);
    if (prev?.session !== undefined && prev.session !== session) {
      this.#sessions.get(prev.session)?.keys.delete(key);
    }
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev?.createRevision ?? rev,
      modRevision: rev,
      version: (prev?.version ?? 0) + 1,
    };
    if (session !== undefined) {
      kv.session = session;
      this.#sessions.get(session)?.keys.add(key);
    }
    this.#keys.set(key, kv);
    events.push({ type: "put", key, value, revision: rev });
    return prev;
  }

  #delete(rev: number, key: string, events: WatchEvent[]): boolean {
    const prev = this.#keys.get(key);
    if (!prev) return false;
    if (prev.session !== undefined) {
      this.#sessions.get(prev.session)?.keys.delete(key);
    }
    this.#keys.delete(key);
    events.push({ type: "delete", key, revision: rev });
    return true;
  }

  #endSession(rev: number, id: number, events: WatchEvent[]): boolean {
    const s = this.#sessions.get(id);
    if (!s) return false;
    for (const key of [...s.keys].sort()) this.#delete(rev, key, events);
    this.#sessions.delete(id);
    return true;
  }

  #holds(c: Compare): boolean {
    const kv = this.#keys.get(c.key);
    if (c.target === "value") {
      if (!(c.value instanceof Uint8Array)) return false;
      if (!kv) return c.op === "!=";
      const cmp = compareBytes(kv.value, c.value);
      return c.op === "=="
        ? cmp === 0
        : c.op === "!="
        ? cmp !== 0
        : c.op === "<"
        ? cmp < 0
        : cmp > 0;
    }
    if (typeof c.value !== "number") return false;
    const actual = c.target === "exists"
      ? (kv ? 1 : 0)
      : c.target === "modRevision"
      ? kv?.modRevision ?? 0
      : c.target === "createRevision"
      ? kv?.createRevision ?? 0
      : kv?.version ?? 0;
    return c.op === "=="
      ? actual === c.value
      : c.op === "!="
      ? actual !== c.value
      : c.op === "<"
      ? actual < c.value
      : actual > c.value;
  }
}

function sessionOf(s: Session): Session {
  return {
    id: s.id,
    ttlMs: s.ttlMs,
    expiresAt: s.expiresAt,
    renewedAt: s.renewedAt,
  };
}

function noSession(revision: number, id: number): KvResult {
  return {
    op: "error",
    revision,
    code: "session_not_found",
    message: `session ${id} does not exist (expired or never opened)`,
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
