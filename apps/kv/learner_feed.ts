/**
 * What a member sends a learner next, as a pure function of the learner's
 * position and the member's applied state: the changes since its position
 * from the watch history, a progress report, or — when the history no
 * longer reaches back that far — a snapshot of the prefix.
 */
import type { KeyValue, WatchEvent } from "./kv_state_machine.ts";
import type { Change, SnapshotEntry } from "./learner_messages.ts";

/** What the feed reads from a member. */
export interface FeedSource {
  /** The member's applied revision. */
  readonly revision: number;
  /** Changes under `prefix` at `from` or later; undefined when compacted. */
  eventsSince(prefix: string, from: number): WatchEvent[] | undefined;
  /** Every key under `prefix`, in order, at {@link revision}. */
  range(prefix: string): KeyValue[];
}

/** The next thing to send a learner that stands before revision `next`. */
export type FeedStep =
  /** The member has applied nothing at or after `next` yet. */
  | { kind: "wait" }
  /** Changes from `next` to `to`; the learner's next becomes `to + 1`. */
  | { kind: "changes"; from: number; to: number; changes: Change[] }
  /** The prefix at `revision`, in chunks; the learner's next becomes `revision + 1`. */
  | {
    kind: "snapshot";
    revision: number;
    chunks: SnapshotEntry[][];
  };

/** Limits of one step, bytes (keys and values counted). */
export interface FeedLimits {
  /** A changes message stops after the revision that takes it past this. */
  maxChangeBytes: number;
  /** A snapshot chunk stops after the key that takes it past this. */
  maxChunkBytes: number;
}

/** 1 MiB changes, 256 KiB snapshot chunks: far below the 16 MiB frame limit. */
export const DEFAULT_FEED_LIMITS: FeedLimits = {
  maxChangeBytes: 1 << 20,
  maxChunkBytes: 256 << 10,
};

/**
 * The step for a learner of `prefix` whose next revision is `next` (0: it
 * has no state yet and needs a snapshot).
 */
export function nextFeedStep(
  prefix: string,
  next: number,
  source: FeedSource,
  limits: FeedLimits = DEFAULT_FEED_LIMITS,
): FeedStep {
  const revision = source.revision;
  if (next > 0 && next > revision) return { kind: "wait" };
  const events = next === 0 ? undefined : source.eventsSince(prefix, next);
  if (events === undefined) {
    return {
      kind: "snapshot",
      revision,
      chunks: chunked(source.range(prefix), limits.maxChunkBytes),
    };
  }
  const changes: Change[] = [];
  let bytes = 0;
  let to = revision;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    // Cut only between revisions: a transaction's changes travel together.
    if (
      bytes > limits.maxChangeBytes && e.revision !== events[i - 1]!.revision
    ) {
      to = e.revision - 1;
      break;
    }
    changes.push({
      key: e.key,
      value: e.type === "put" ? e.value ?? new Uint8Array() : null,
      revision: e.revision,
    });
    bytes += e.key.length + (e.value?.length ?? 0);
  }
  return { kind: "changes", from: next, to, changes };
}

function chunked(kvs: KeyValue[], maxBytes: number): SnapshotEntry[][] {
  const chunks: SnapshotEntry[][] = [];
  let chunk: SnapshotEntry[] = [];
  let bytes = 0;
  for (const kv of kvs) {
    chunk.push({ key: kv.key, value: kv.value, revision: kv.modRevision });
    bytes += kv.key.length + kv.value.length;
    if (bytes > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
  }
  // Always at least one (possibly empty) chunk: its `last` flag installs the state.
  if (chunk.length > 0 || chunks.length === 0) chunks.push(chunk);
  return chunks;
}
