import { z } from "zod";
import { defineMessage, defineMessageSet } from "@strata/codec";

/**
 * The data raft exchanges and persists. Every shape is a zod schema (the
 * single definition); the TypeScript types are inferred from them. Inside
 * the core the messages are plain objects and are never validated on the
 * hot path: validation happens where bytes enter (see {@link raftMessageSet}).
 */

const id = z.number().int().nonnegative();
const u = z.number().int().nonnegative();
/** A clock reading (monotonic or wall, ms; fractions allowed; zod 4 refuses infinities). */
const time = z.number();
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, {
  message: "expected bytes",
});

/** Raft node id; 0 means "none". */
export type NodeId = number;
/** The id that means "no node" (no leader known, no vote cast). */
export const NONE: NodeId = 0;

/** Schema of a log entry. */
export const entrySchema = z.object({
  /** Term in which the leader created the entry. */
  term: u,
  /** Position in the log, from 1. */
  index: u,
  /** "normal" carries application data, "conf" an encoded {@link ConfChange}. */
  type: z.enum(["normal", "conf"]),
  /** Payload bytes (empty for the leader's no-op entry and for echo stubs). */
  data: bytes,
  /**
   * Set only on the wire from a leader to the follower that forwarded the
   * proposal: the payload was left out and the follower fills it in from the
   * proposal it still holds under this id.
   */
  echo: u.optional(),
});
/** A log entry. */
export type Entry = z.infer<typeof entrySchema>;

/** Schema of the state that must be durable before messages are sent. */
export const hardStateSchema = z.object({ term: u, vote: id, commit: u });
/** Term, vote and commit index: persisted before messages go out. */
export type HardState = z.infer<typeof hardStateSchema>;

/** Schema of a membership (voters and non-voting learners). */
export const confStateSchema = z.object({
  voters: z.array(id),
  learners: z.array(id),
  /** In a joint configuration: the voters of the configuration being left. */
  votersOutgoing: z.array(id).optional(),
  /** In a joint configuration: outgoing voters that become learners on leaving it. */
  learnersNext: z.array(id).optional(),
  /** In a joint configuration: the leader leaves it by itself once it is applied. */
  autoLeave: z.boolean().optional(),
});
/**
 * A membership: voters and learners (non-voting, receive the log); in a
 * joint configuration also the outgoing voters (decisions need a majority of
 * both voter sets).
 */
export type ConfState = z.infer<typeof confStateSchema>;

/** Schema of a snapshot's metadata. */
export const snapshotMetaSchema = z.object({
  index: u,
  term: u,
  confState: confStateSchema,
});
/** Which log prefix a snapshot replaces, and the membership at its index. */
export type SnapshotMeta = z.infer<typeof snapshotMetaSchema>;

/** A state machine snapshot: metadata plus the application's bytes. */
export interface Snapshot {
  /** Index, term and membership the snapshot stands for. */
  meta: SnapshotMeta;
  /** The state machine's serialized state. */
  data: Uint8Array;
}

/** Schema of a single-server membership change (carried in "conf" entries). */
export const confChangeSchema = z.object({
  type: z.enum(["addNode", "addLearner", "removeNode"]),
  nodeId: id.refine((n) => n !== 0, "node id 0 is reserved"),
});
/**
 * One server at a time: add a voter (or promote a learner), add a learner,
 * or remove a node. Takes effect on every node when the entry is applied.
 */
export type ConfChange = z.infer<typeof confChangeSchema>;

/**
 * Schema of a membership change in the style of etcd's ConfChangeV2: several
 * single changes applied at once through a joint configuration (old and new
 * voters must both agree until it is left), or, with no changes, the
 * instruction to leave the joint configuration. `context` travels with the
 * change in the log (e.g. the addresses of new members).
 */
export const confChangeV2Schema = z.object({
  changes: z.array(confChangeSchema).max(64),
  /**
   * "auto": a single change is applied directly, several through a joint
   * configuration that the leader leaves by itself once it is applied;
   * "explicit": always joint, left only by proposing an empty change.
   */
  transition: z.enum(["auto", "explicit"]).default("auto"),
  context: bytes.optional(),
});
/** A joint (or single) membership change with a context payload; see {@link confChangeV2Schema}. */
export type ConfChangeV2 = z.input<typeof confChangeV2Schema>;

const base = { from: id, to: id, term: u };

const Prop = defineMessage(
  "raft.prop",
  z.object({
    type: z.literal("prop"),
    ...base,
    entries: z.array(entrySchema),
    /** Forwarded-proposal ids, parallel to entries (follower → leader). */
    proposalIds: z.array(u).optional(),
  }),
);
const App = defineMessage(
  "raft.app",
  z.object({
    type: z.literal("app"),
    ...base,
    /** Index of the entry just before `entries`. */
    index: u,
    /** Term of that entry. */
    logTerm: u,
    entries: z.array(entrySchema),
    commit: u,
  }),
);
const AppResp = defineMessage(
  "raft.appResp",
  z.object({
    type: z.literal("appResp"),
    ...base,
    /** Accepted: last index now matching. Rejected: the rejected `index`. */
    index: u,
    reject: z.boolean(),
    /** Rejected: the follower's guess of the last index that may match. */
    rejectHint: u,
    /** Rejected: term of the follower's entry at `rejectHint`. */
    logTerm: u,
    /** Rejected because an echo stub named a proposal the follower lost. */
    echoMiss: z.boolean().optional(),
  }),
);
const voteFields = {
  ...base,
  index: u,
  logTerm: u,
  /** Campaign forced by leadership transfer (ignores leases). */
  transfer: z.boolean().optional(),
};
const Vote = defineMessage(
  "raft.vote",
  z.object({ type: z.literal("vote"), ...voteFields }),
);
const PreVote = defineMessage(
  "raft.preVote",
  z.object({ type: z.literal("preVote"), ...voteFields }),
);
const VoteResp = defineMessage(
  "raft.voteResp",
  z.object({ type: z.literal("voteResp"), ...base, reject: z.boolean() }),
);
const PreVoteResp = defineMessage(
  "raft.preVoteResp",
  z.object({ type: z.literal("preVoteResp"), ...base, reject: z.boolean() }),
);
const Heartbeat = defineMessage(
  "raft.heartbeat",
  z.object({
    type: z.literal("heartbeat"),
    ...base,
    commit: u,
    /** Broadcast sequence number (acks release ReadIndex requests). */
    seq: u,
    /** Leader's monotonic clock when sent (acks extend its read lease). */
    sentAt: time,
  }),
);
const HeartbeatResp = defineMessage(
  "raft.heartbeatResp",
  z.object({
    type: z.literal("heartbeatResp"),
    ...base,
    seq: u,
    /** The heartbeat's `sentAt`, echoed. */
    sentAt: time,
    /** The responder's monotonic clock when it answered (clock guard). */
    now: time,
    /** The responder's wall clock when it answered, if it has one (clock guard). */
    wall: time.optional(),
  }),
);
const Snap = defineMessage(
  "raft.snap",
  z.object({
    type: z.literal("snap"),
    ...base,
    meta: snapshotMetaSchema,
    /** Byte offset of `data` within the snapshot. */
    offset: u,
    /** Total snapshot bytes. */
    total: u,
    data: bytes,
  }),
);
const SnapResp = defineMessage(
  "raft.snapResp",
  z.object({
    type: z.literal("snapResp"),
    ...base,
    /** Snapshot index this acknowledges. */
    index: u,
    /** Bytes received so far: where the leader resumes. */
    offset: u,
  }),
);
const TimeoutNow = defineMessage(
  "raft.timeoutNow",
  z.object({ type: z.literal("timeoutNow"), ...base }),
);
const TransferLeader = defineMessage(
  "raft.transferLeader",
  z.object({ type: z.literal("transferLeader"), ...base, target: id }),
);
const ReadIndex = defineMessage(
  "raft.readIndex",
  z.object({ type: z.literal("readIndex"), ...base, ctx: z.string() }),
);
const ReadIndexResp = defineMessage(
  "raft.readIndexResp",
  z.object({
    type: z.literal("readIndexResp"),
    ...base,
    ctx: z.string(),
    index: u,
  }),
);

/** Every raft message kind, as codec message types. */
export const raftMessageTypes = [
  Prop,
  App,
  AppResp,
  Vote,
  PreVote,
  VoteResp,
  PreVoteResp,
  Heartbeat,
  HeartbeatResp,
  Snap,
  SnapResp,
  TimeoutNow,
  TransferLeader,
  ReadIndex,
  ReadIndexResp,
] as const;

/**
 * The message set for sending raft messages over a transport:
 * `raftMessageSet.encodeFrame(...)` / `decodeFrame(...)` (validated), or
 * the {@link encodeRaftMessage}/{@link decodeRaftMessage} shortcuts.
 */
export const raftMessageSet = defineMessageSet(raftMessageTypes);

/** A raft message (discriminated by `type`). */
export type Message = z.infer<(typeof raftMessageTypes)[number]["schema"]>;
/** The `type` tags of {@link Message}. */
export type MessageType = Message["type"];
/** The message of one kind. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

const byType = new Map(
  raftMessageTypes.map((t) => [t.name.slice("raft.".length), t]),
);

/** Encodes a message as one codec frame (type id + CBOR + CRC32C). */
export function encodeRaftMessage(message: Message): Uint8Array {
  const type = byType.get(message.type)!;
  // deno-lint-ignore no-explicit-any
  return raftMessageSet.encodeFrame(type, message as any);
}

/**
 * Decodes and validates a frame produced by {@link encodeRaftMessage}.
 * @throws CodecError on bad bytes, unknown type or schema violation.
 */
export function decodeRaftMessage(
  frame: Parameters<typeof raftMessageSet.decodeFrame>[0],
): Message {
  return raftMessageSet.decodeFrame(frame).message as Message;
}

/** Payload bytes of an entry as counted by size limits (data only). */
export function entrySize(e: Entry): number {
  return e.data.length;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Encodes a membership change as the data of a "conf" entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return textEncoder.encode(JSON.stringify([cc.type, cc.nodeId]));
}

/** Encodes a {@link ConfChangeV2} as the data of a "conf" entry. */
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  return textEncoder.encode(JSON.stringify({
    v: 2,
    changes: cc.changes.map((c) => [c.type, c.nodeId]),
    transition: cc.transition ?? "auto",
    ...(cc.context ? { context: [...cc.context] } : {}),
  }));
}

/** What a "conf" entry holds: a single change (v1) or a joint one (v2). */
export type AnyConfChange =
  | { v: 1; cc: ConfChange }
  | {
    v: 2;
    cc: {
      changes: ConfChange[];
      transition: "auto" | "explicit";
      context?: Uint8Array;
    };
  };

/** Decodes the data of a "conf" entry of either kind; undefined when it is neither. */
export function decodeAnyConfChange(
  data: Uint8Array,
): AnyConfChange | undefined {
  const v1 = decodeConfChange(data);
  if (v1) return { v: 1, cc: v1 };
  try {
    const o = JSON.parse(textDecoder.decode(data));
    if (o?.v !== 2 || !Array.isArray(o.changes)) return undefined;
    const parsed = confChangeV2Schema.safeParse({
      changes: o.changes.map((c: unknown) =>
        Array.isArray(c) ? { type: c[0], nodeId: c[1] } : c
      ),
      transition: o.transition,
      context: Array.isArray(o.context) ? new Uint8Array(o.context) : undefined,
    });
    if (!parsed.success) return undefined;
    const cc = parsed.data;
    return {
      v: 2,
      cc: {
        changes: cc.changes,
        transition: cc.transition,
        ...(cc.context ? { context: cc.context } : {}),
      },
    };
  } catch {
    return undefined;
  }
}

/**
 * Decodes the data of a "conf" entry.
 * @throws RaftError-free: returns undefined when the bytes are not a change.
 */
export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  try {
    const [type, nodeId] = JSON.parse(textDecoder.decode(data));
    const parsed = confChangeSchema.safeParse({ type, nodeId });
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
