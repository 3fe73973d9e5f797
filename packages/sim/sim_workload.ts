/**
 * What {@link runReplicatedKvSimulation} needs from an application to
 * simulate it: its real state machine, and clients whose operations map
 * onto the key-value model that packages/sim's linearizability checker
 * knows (each application key is a model key, each operation a get, put,
 * delete or cas on it), so one checker serves every application.
 */
import type {
  CommandStateMachine,
  ReplicaPorts,
  ReplicatedNode,
  ReplicatedNodeConfig,
} from "@strata/replication";
import type { KvInput, KvOutput } from "./linearizability.ts";
import type { Prng } from "./prng.ts";

/** An application's state machine as the simulator drives it. */
export interface SimMachine extends CommandStateMachine<unknown> {
  /** Index of the last entry applied, skipped or restored. */
  readonly appliedIndex: number;
  /** The whole state as bytes (replicas must end byte-identical). */
  snapshot(): Uint8Array;
}

/** What the driver reads of a replica's state machine. */
export type SimMachineView = Pick<SimMachine, "appliedIndex" | "snapshot">;

/** One life of a replica as a workload started it. */
export interface SimStarted {
  node: ReplicatedNode<unknown>;
  machine: SimMachineView;
  /** The application object around the node, when there is one (the GFS master's store). */
  app?: unknown;
}

/** One replica as a client operation sees it, inside the server process. */
export interface SimReplica extends SimStarted {
  /** Waits until a read may be served here (the chosen consistency). */
  readBarrier(signal: AbortSignal): Promise<void>;
  /** Counts a read the application served from its lease. */
  leaseServed(): void;
}

/**
 * The server refused the request before it could have any effect (a
 * master that does not serve redirects): nothing is recorded.
 */
export class NoEffect extends Error {}

/** What an operation answered: the model output, and its model input when the answer changes it. */
export interface SimAnswer {
  output: KvOutput;
  /** Replaces the planned input (a rejected delete is a read that saw nothing). */
  input?: KvInput;
}

/** One client operation, planned by a client and run on a replica. */
export interface SimOp {
  /** The model operation recorded when the outcome is unknown. */
  input: KvInput;
  /** Runs it on a replica; throws as the application's request would. */
  run(r: SimReplica, signal: AbortSignal): Promise<SimAnswer>;
}

/** An application under simulation. */
export interface SimWorkload {
  /** `kv` or `gfs` (the CLI's `--machine`). */
  readonly name: string;
  /** A fresh state machine for one life of a replica. */
  newMachine(): SimMachine;
  /**
   * Starts one life of a replica on the simulator's ports, as the
   * application does (default: `ReplicatedNode.start` over
   * {@link newMachine}).
   */
  start?(
    config: ReplicatedNodeConfig,
    ports: ReplicaPorts,
  ): Promise<SimStarted>;
  /** Client `c`'s operation generator; `prng` is the client's own. */
  client(c: number, prng: Prng, keys: string[]): () => SimOp;
  /** A final read of `key` (lost acknowledged writes show here). */
  read(key: string): SimOp;
}
