/**
 * @module
 * strata's deterministic simulation: a seeded PRNG, a virtual clock with a
 * single-threaded event scheduler, a faulty network (delay, loss,
 * duplication, reordering, partitions), disks that lose unsynced writes on
 * crash, production `ReplicatedNode`s on all of it (`ReplicaCluster`, and
 * `runReplicatedKvSimulation` from `@strata/sim/replicated`), a
 * linearizability checker, and replays of named scenarios as event
 * timelines for the playground (`replayScenario`, `parseSeed`; these still
 * run the raft core with `RaftCluster`). Every run is reproducible from one
 * seed.
 *
 * @example
 * ```ts
 * import { ReplicaCluster } from "@strata/sim";
 *
 * const cluster = new ReplicaCluster({ seed: 42, nodes: 3 });
 * const leader = await cluster.checkOneLeader();
 * const index = await cluster.one("hello", 3, false);
 * console.log(leader, index, cluster.nCommitted(index)); // … [3, "hello"]
 * ```
 */
export { Prng } from "./prng.ts";
export { Scheduler } from "./scheduler.ts";
export {
  type NetworkFaults,
  type NetworkStats,
  RELIABLE,
  SimNetwork,
} from "./sim_network.ts";
export { SimDisk } from "./sim_disk.ts";
export { isSimError, SimError, type SimErrorCode } from "./sim_error.ts";
export { messageBytes } from "./message_bytes.ts";
export {
  type AppPacket,
  type ClusterOptions,
  RaftCluster,
  RecordingStateMachine,
  SimNode,
} from "./raft_cluster.ts";
export {
  RecordingCommandMachine,
  ReplicaCluster,
  type ReplicaClusterOptions,
  ReplicaSimNode,
} from "./replica_cluster.ts";
export {
  type KvSimOptions,
  type KvSimResult,
  KvStateMachine,
  runKvSimulation,
} from "./kv_simulation.ts";
export { LONG, runSeeded, testSeeds } from "./seeded_test_runner.ts";
export {
  type LinkView,
  listScenarios,
  type NodeView,
  type ParsedSeed,
  parseSeed,
  replayInput,
  type ReplayOptions,
  type ReplayScenario,
  replayScenario,
  type Timeline,
  type TimelineStep,
  type TimelineStepKind,
} from "./replay.ts";
export * from "./linearizability.ts";
