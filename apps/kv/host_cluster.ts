/**
 * A KV cluster on separate network hosts (`@strata/hosts`): node i runs
 * inside host h<i>, binding and advertising that host's address. Used by
 * the partition tests and `bench:raft`'s run across hosts. Every node
 * starts with the arguments of {@link kvNodeArgs}, as the local launcher's.
 */
import type { Host, HostNetwork } from "@strata/hosts";
import { type ClusterSecrets, loadOrCreateSecrets } from "@strata/edge";
import type { ReadyProcess } from "@strata/process";
import { kvNodeArgs, kvNodeReady } from "./node_args.ts";

/** Raft TCP port of every node (each host has its own port space). */
export const PEER_PORT = 7000;
/** HTTP port of every node. */
export const HTTP_PORT = 2380;

/** One node running inside a host. */
export interface HostNode {
  id: number;
  host: Host;
  /** `address:port` of its HTTP API. */
  http: string;
  proc: ReadyProcess<{ http: string; peer: string; scheme: string }>;
}

/** Options of {@link startHostCluster}. */
export interface HostClusterOptions {
  /** Root of the data directories (`<root>/node-<id>`). */
  dataRoot: string;
  /** Milliseconds per raft tick (default: the node's, 100). */
  tickMs?: number;
}

/**
 * Starts kv node `id` inside `host` with the given `--peers` and data
 * directory, and waits for its ready line. The process is stopped by the
 * network's `close()` if not before.
 */
export function startKvNode(
  net: HostNetwork,
  host: Host,
  id: number,
  peers: string,
  dataDir: string,
  options: {
    tickMs?: number;
    authDir: string;
    /** Start with `--join`: a member added by a configuration change. */
    join?: boolean;
    /** Ports other than {@link PEER_PORT} and {@link HTTP_PORT} (a second node on the host). */
    peerPort?: number;
    httpPort?: number;
  },
): Promise<ReadyProcess<{ http: string; peer: string; scheme: string }>> {
  return net.spawn(
    host,
    kvNodeArgs({
      id,
      peers,
      dataDir,
      join: options.join,
      listen: `${host.address}:${options.peerPort ?? PEER_PORT}`,
      http: `${host.address}:${options.httpPort ?? HTTP_PORT}`,
      // Off loopback auth is required: the nodes share one auth directory
      // (tokens and the raft peer secret).
      authDir: options.authDir,
      tickMs: options.tickMs,
    }),
    kvNodeReady,
    {
      name: `kv node ${id} on ${host.name}`,
      stderr: "null",
      timeoutMs: 60_000,
    },
  );
}

/** A running cluster on hosts: its nodes and the secrets they share. */
export interface HostCluster {
  nodes: Map<number, HostNode>;
  /** The `--peers` list the nodes started with (a joining node takes it too). */
  peers: string;
  /** Generated in `<dataRoot>/auth` (mode 0600). */
  secrets: ClusterSecrets;
}

/**
 * Starts one node on every host of `net` (node i on host h<i>).
 * @returns the nodes by id and their secrets. @throws when a node does
 * not come up (the network's `close()` stops the others).
 */
export async function startHostCluster(
  net: HostNetwork,
  options: HostClusterOptions,
): Promise<HostCluster> {
  const secrets = await loadOrCreateSecrets(`${options.dataRoot}/auth`);
  const peers = net.hosts.map((h) =>
    `${h.index + 1}=${h.address}:${PEER_PORT}/${h.address}:${HTTP_PORT}`
  ).join(",");
  const nodes = new Map<number, HostNode>();
  await Promise.all(net.hosts.map(async (host) => {
    const id = host.index + 1;
    const proc = await startKvNode(
      net,
      host,
      id,
      peers,
      `${options.dataRoot}/node-${id}`,
      { tickMs: options.tickMs, authDir: secrets.dir },
    );
    nodes.set(id, { id, host, http: proc.ready.http, proc });
  }));
  return { nodes, peers, secrets };
}
