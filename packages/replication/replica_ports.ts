/**
 * The edges of a {@link ReplicatedNode} as ports: its disk, its network,
 * its timers and its randomness. Production wiring (the default) is the
 * segmented log and snapshot store in a data directory, transport's TCP
 * RPC, `setTimeout` and `Math.random`; packages/sim passes a simulated
 * disk, network and virtual timers driven by a seed, so the same Ready
 * loop that serves users runs in the simulator.
 */
import type { Entry, HardState, Message, Snapshot } from "@strata/raft";
import type { Timers } from "@strata/transport";
import type { MemberAddresses } from "./member_addresses_file.ts";
import type { PlantedBug } from "./planted_bugs.ts";
import type { SiteStatus } from "./tcp_peer_transport.ts";

/** What a replica finds on its disk when it starts. */
export interface RecoveredState {
  /** The newest snapshot, if any. */
  snapshot?: Snapshot;
  /** The log entries after the snapshot, in order. */
  entries: Entry[];
  /** Term, vote and commit as last written. */
  hardState: HardState;
  /** Addresses learned from joint changes' context. */
  members: MemberAddresses;
}

/**
 * The durable state of one replica. Every returned promise resolves only
 * once the write is durable (fsync'd): the node sends nothing that
 * acknowledges a write before that.
 */
export interface ReplicaStorage {
  /** Reads everything back (once, at start). */
  recover(): Promise<RecoveredState>;
  /** Index of the last log entry written (0 when empty). */
  readonly lastIndex: number;
  /** Bytes of the log (for status pages). */
  readonly byteSize: number;
  /** Appends entries that follow `lastIndex`. */
  append(entries: Entry[]): Promise<void>;
  /** Drops entries from `from` on (a new leader overwrote them). */
  truncateSuffix(from: number): Promise<void>;
  /** Term, vote and commit. */
  writeHardState(hs: HardState): Promise<void>;
  /** Addresses learned from the log. */
  writeMembers(members: MemberAddresses): Promise<void>;
  /** Saves a snapshot received from the leader and empties the log up to it. */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** Saves a snapshot taken here (the log is kept until {@link compactPrefix}). */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Deletes log entries up to `index` (covered by a saved snapshot). */
  compactPrefix(index: number): Promise<void>;
  /** Releases the files. */
  close(): Promise<void>;
}

/**
 * Messages to and from the other replicas. Raft tolerates loss, so `send`
 * may drop a message (an unreachable peer); it never blocks.
 */
export interface PeerTransport {
  /**
   * Starts accepting messages; each one is handed to `deliver`.
   * `addressOf` gives a member's raft address (a relay passes appends on
   * only to members it knows). `announced` is called with a peer's raft
   * address when the peer announces it (first on each connection it
   * dials), so a replica can answer a member whose address it never
   * learned (one added while it was down).
   */
  listen(
    deliver: (m: Message) => void,
    addressOf?: (id: number) => string | undefined,
    announced?: (id: number, address: string) => void,
  ): Promise<void>;
  /**
   * Sends `m` to the member at `address` (best effort).
   * @returns false when it was dropped at once (no connection to the peer).
   */
  send(m: Message, address: string): boolean;
  /**
   * Called after each Ready's messages were handed to `send`: a transport
   * that routes messages together (multi-site relaying) sends them now.
   */
  flush?(): void;
  /** Site, remote sites and relays, for status pages (transports with sites). */
  siteStatus?(): SiteStatus | undefined;
  /** The port bound (0 when not applicable). */
  readonly port: number;
  /** Closes connections and the listener. */
  close(): Promise<void>;
}

/**
 * The ports a {@link ReplicatedNode} may be given instead of its production
 * edges (third argument of `ReplicatedNode.start`); every one is optional.
 * The clocks are `ReplicatedNodeConfig.clock`.
 */
export interface ReplicaPorts {
  /** Durable state (default: files in `dataDir`). */
  storage?: ReplicaStorage;
  /** Peer messages (default: TCP on `listen`). */
  transport?: PeerTransport;
  /** Timers for ticks and polls (default: `setTimeout`). */
  timers?: Timers;
  /** Randomness of election timeouts and proposal ids (default `Math.random`). */
  random?: () => number;
  /**
   * A deliberate bug, for showing that the simulator finds it (see
   * planted_bugs.ts). Only code can set it: no configuration file, flag or
   * request reaches this argument. Never set it outside tests.
   */
  unsafePlantedBug?: PlantedBug;
}
