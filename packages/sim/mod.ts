/**
 * @module
 * strata's deterministic simulation: a seeded PRNG, a virtual clock with a
 * single-threaded event scheduler, and production `ReplicatedNode`s on
 * simulated ports — a disk that loses unsynced writes on crash, a faulty
 * network carrying the real codec (delay, loss, duplication, reordering,
 * partitions), clocks and timers — as a tester's cluster
 * (`ReplicaCluster`) and as seeded application runs
 * (`runReplicatedKvSimulation` from `@strata/sim/replicated`); a
 * linearizability checker; and replays of named scenarios on
 * `ReplicaCluster` as event timelines for the playground
 * (`replayScenario`, `replayInput`, `parseSeed`). Every run is
 * reproducible from one seed.
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
export { isSimError, SimError, type SimErrorCode } from "./sim_error.ts";
export { messageBytes } from "./message_bytes.ts";
export {
  RecordingCommandMachine,
  ReplicaCluster,
  type ReplicaClusterOptions,
  ReplicaSimNode,
} from "./replica_cluster.ts";
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
