/**
 * @module
 * Turns a non-replicated, deterministic state machine into a replicated
 * one: {@link ReplicatedNode} runs packages/raft's pure core with a
 * durable log (packages/storage) and TCP peers (packages/transport), and
 * applies committed commands to your {@link CommandStateMachine} in log
 * order on every replica.
 *
 * @example
 * ```ts
 * import { ReplicatedNode, type CommandStateMachine } from "@strata/replication";
 *
 * class Counter implements CommandStateMachine<number> {
 *   appliedIndex = 0;
 *   total = 0;
 *   apply(index: number, command: Uint8Array): number {
 *     this.appliedIndex = index;
 *     return this.total += command[0]!;
 *   }
 *   skip(index: number) { this.appliedIndex = index; }
 *   snapshot() { return new TextEncoder().encode(String(this.total)); }
 *   restore(data: Uint8Array, index: number) {
 *     this.total = Number(new TextDecoder().decode(data));
 *     this.appliedIndex = index;
 *   }
 * }
 *
 * const dataDir = await Deno.makeTempDir();
 * const node = await ReplicatedNode.start({
 *   id: 1,
 *   members: new Map([[1, { peer: "127.0.0.1:0" }]]),
 *   dataDir,
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   electionTicks: 3,
 *   tickMs: 20,
 * }, new Counter());
 * while (!node.isLeader) await new Promise((r) => setTimeout(r, 20));
 * console.log(await node.propose(new Uint8Array([5]), AbortSignal.timeout(5000))); // 5
 * await node.stop();
 * await Deno.remove(dataDir, { recursive: true });
 * ```
 */
export type { CommandStateMachine } from "./command_state_machine.ts";
export {
  type LeaseStatus,
  type NodeClock,
  type PeerAddress,
  proposalCommand,
  type ReadConsistency,
  type ReplicaMember,
  type ReplicaStatus,
  ReplicatedNode,
  type ReplicatedNodeConfig,
  splitHostPort,
  systemClock,
} from "./replicated_node.ts";
export {
  corruptDataExitCode,
  exitOnReplicaFailure,
  type FailureSource,
  isCorruptReplicaData,
  REPLICA_CORRUPT_EXIT_CODE,
  REPLICA_FAILED_EXIT_CODE,
} from "./exit_on_failure.ts";
export {
  isReplicationError,
  ReplicationError,
  type ReplicationErrorCode,
} from "./replication_error.ts";
export { ReplicationMetrics } from "./replication_metrics.ts";
export {
  decodeHardState,
  encodeHardState,
  readHardState,
  writeHardState,
} from "./hard_state_file.ts";
export { formatPeerList, parsePeerList } from "./peer_list.ts";
export type {
  PeerTransport,
  RecoveredState,
  ReplicaPorts,
  ReplicaStorage,
} from "./replica_ports.ts";
export {
  DiskReplicaStorage,
  LogEntry,
  snapshotGap,
} from "./disk_replica_storage.ts";
export {
  type SiteStatus,
  TcpPeerTransport,
  type TcpPeerTransportOptions,
} from "./tcp_peer_transport.ts";
export {
  type Outgoing,
  type Routes,
  SiteRouter,
  type SiteRouteStatus,
} from "./site_router.ts";
export { peerMessageSet, peerMessageTypes, PeerSite } from "./peer_messages.ts";
export { type PlantedBug, plantedBugs } from "./planted_bugs.ts";
