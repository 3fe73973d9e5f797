/**
 * @module
 * strata's raft: a pure, I/O-free Raft consensus core in the style of
 * etcd-io/raft. The application ticks it, steps received messages into it,
 * and drains `Ready`s (state to persist, messages to send, entries to
 * apply), then calls `advance()`. Elections use injected randomness,
 * pre-vote and check-quorum; replication is pipelined with flow control and
 * fast conflict backup; snapshots travel in resumable chunks; reads are
 * linearizable via ReadIndex or a lease measured on an injected monotonic
 * clock and guarded against pauses and bad clocks.
 *
 * @example
 * ```ts
 * import { MemoryStorage, RawNode } from "@strata/raft";
 *
 * const storage = new MemoryStorage();
 * const node = new RawNode({
 *   id: 1, peers: [1], storage, electionTick: 10, heartbeatTick: 1,
 *   random: () => 0.5,
 * });
 * const drain = () => {
 *   while (node.hasReady()) {
 *     const rd = node.ready();
 *     if (rd.hardState) storage.setHardState(rd.hardState);
 *     storage.append(rd.entries); // persist before sending messages
 *     for (const e of rd.committedEntries) {
 *       if (e.type === "normal" && e.data.length) console.log("apply", e.index, new TextDecoder().decode(e.data));
 *     }
 *     node.advance();
 *   }
 * };
 * drain(); // applies the bootstrap membership
 * node.campaign();
 * drain();
 * node.propose(new TextEncoder().encode("x=1"));
 * drain(); // apply 3 x=1
 * ```
 */
export {
  type AnyConfChange,
  type ConfChange,
  confChangeSchema,
  type ConfChangeV2,
  confChangeV2Schema,
  type ConfState,
  confStateSchema,
  decodeAnyConfChange,
  decodeConfChange,
  decodeRaftMessage,
  encodeConfChange,
  encodeConfChangeV2,
  encodeRaftMessage,
  type Entry,
  entrySchema,
  entrySize,
  type HardState,
  hardStateSchema,
  type Message,
  type MessageOf,
  type MessageType,
  type NodeId,
  NONE,
  raftMessageSet,
  raftMessageTypes,
  type Snapshot,
  type SnapshotMeta,
  snapshotMetaSchema,
} from "./messages.ts";
export { cloneConf, MemoryStorage, type Storage } from "./storage.ts";
export { isRaftError, RaftError, type RaftErrorCode } from "./raft_error.ts";
export type { RaftEvent, RaftRole } from "./raft_events.ts";
export {
  ClockGuard,
  type ClockGuardOptions,
  type ClockVerdict,
  type PeerClock,
} from "./clock_guard.ts";
export {
  type LeaseState,
  Raft,
  type RaftConfig,
  type RaftStats,
  type ReadState,
} from "./raft.ts";
export {
  type NodeStatus,
  type PeerStatus,
  RawNode,
  type Ready,
} from "./raw_node.ts";
export type { ReplicatedStateMachine } from "./state_machine.ts";
export type { Inflights, Progress, ProgressState } from "./progress.ts";
export type { RaftLog } from "./raft_log.ts";
export {
  CommitStreamHub,
  type CommitStreamOptions,
  CommitStreamSubscriber,
  type StreamMessage,
} from "./commit_stream.ts";
