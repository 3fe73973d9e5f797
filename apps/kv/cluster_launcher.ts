/**
 * Starts a local cluster of node processes (`node_main.ts`), one OS
 * process each, and waits until each has printed its ready line. Used by
 * `deno task kv`, the integration tests and the benchmark. The cluster's
 * tokens and peer secret are generated in the data root (mode 0600) on
 * first start and shared by every node (`--auth-dir`).
 */
import {
  type ClusterSecrets,
  freePort,
  loadOrCreateSecrets,
  spawnUntilReady,
  stopChild,
} from "@strata/edge";
import {
  RestartBudget,
  restartOnExit,
  type RestartPolicy,
} from "@strata/process";
import { kvNodeArgs, kvNodeReady } from "./node_args.ts";

/** One running node process. */
export interface NodeProcess {
  id: number;
  /** `127.0.0.1:port` of its HTTP API. */
  http: string;
  /** `http://127.0.0.1:port` (https with TLS). */
  url: string;
  /** `127.0.0.1:port` of its raft TCP port. */
  peer: string;
  /** `127.0.0.1:port` of its learner port (`KvClient.follow`), if served. */
  learner?: string;
  dataDir: string;
  process: Deno.ChildProcess;
}

/** A running local cluster. */
export interface LocalCluster {
  nodes: Map<number, NodeProcess>;
  /** The `--peers` value every node was started with. */
  peers: string;
  /**
   * The tokens (admin, write, read) and peer secret in the data root;
   * undefined with `insecureNoAuth`.
   */
  secrets?: ClusterSecrets;
  /** Kills one node (SIGKILL by default) and waits for it to exit. */
  kill(id: number, signal?: Deno.Signal): Promise<void>;
  /** Starts a node again on its data directory and ports. */
  restart(id: number): Promise<NodeProcess>;
  /**
   * Starts an extra node with `--join` on the addresses it was added with
   * (see {@link reserveAddresses}).
   */
  join(
    id: number,
    addresses: { peer: string; http: string },
  ): Promise<NodeProcess>;
  /** Sends a signal without waiting (SIGSTOP / SIGCONT). */
  signal(id: number, signal: Deno.Signal): void;
  /** Stops every node (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** Number of nodes (default 3). */
  size?: number;
  /** Root of the nodes' data directories (`<root>/node-<id>`). */
  dataRoot: string;
  /** HTTP ports to use (default: free ports). */
  httpPorts?: number[];
  /** Extra flags for every node. */
  extraArgs?: string[];
  /** Extra flags for the Deno runtime of every node (e.g. `--cpu-prof-dir`). */
  denoFlags?: string[];
  /** Pass each node's stderr through (default: discard). */
  inheritStderr?: boolean;
  /** Max wait for every node to be ready, ms (default 30 s). */
  timeoutMs?: number;
  /**
   * Start the nodes with `--insecure-no-auth` (no tokens, no peer secret).
   * Only for measuring what auth costs; never the default.
   */
  insecureNoAuth?: boolean;
  /** Serve every node's HTTP API over TLS with these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /**
   * Act as a supervisor: a node that exits without `kill`/`stop` (a
   * crash, or exit code 74 after its replica halted on a failed disk
   * write) is reported and started again on its data directory and
   * ports, as this policy says (default: after 1 s, at most 5 times a
   * minute, then left down). Off by default: tests kill nodes on purpose.
   */
  supervise?: RestartPolicy;
  /**
   * A command the nodes run under, which must exec deno in its own
   * process (e.g. `nsenter -t PID -m --wd=DIR --`: another mount
   * namespace).
   */
  prefix?: string[];
  /** Site label of each node (`--site`), by id; nodes it leaves out have none. */
  sites?: (id: number) => string | undefined;
}

function siteArgs(site: string | undefined): string[] {
  return site === undefined ? [] : ["--site", site];
}

/** Starts the cluster. @throws Error when a node fails to come up. */
export async function startLocalCluster(
  options: LocalClusterOptions,
): Promise<LocalCluster> {
  const size = options.size ?? 3;
  const secrets = options.insecureNoAuth
    ? undefined
    : await loadOrCreateSecrets(options.dataRoot);
  const spec = new Map<number, { peer: string; http: string }>();
  for (let id = 1; id <= size; id++) {
    spec.set(id, {
      peer: `127.0.0.1:${freePort()}`,
      http: `127.0.0.1:${options.httpPorts?.[id - 1] ?? freePort()}`,
    });
  }
  const peers = [...spec].map(([id, a]) => `${id}=${a.peer}/${a.http}`).join(
    ",",
  );
  const nodes = new Map<number, NodeProcess>();
  const extra = new Map<number, { peer: string; http: string }>();
  /** Processes whose exit was asked for (kill, stop): not restarted. */
  const asked = new WeakSet<Deno.ChildProcess>();
  const budgets = new Map<number, RestartBudget>();
  let stopping = false;

  const spawn = async (id: number, join = false): Promise<NodeProcess> => {
    const addr = spec.get(id) ?? extra.get(id)!;
    const dataDir = `${options.dataRoot}/node-${id}`;
    // The learner port is chosen here like the others: a node binding port 0
    // itself could be given one this launcher reserved for another node.
    const learner = options.extraArgs?.includes("--learner")
      ? []
      : ["--learner", `127.0.0.1:${freePort()}`];
    const p = await spawnUntilReady(
      kvNodeArgs({
        id,
        peers,
        dataDir,
        authDir: secrets?.dir,
        tls: options.tls,
        denoFlags: options.denoFlags,
        extraArgs: [
          ...learner,
          ...(options.extraArgs ?? []),
          ...siteArgs(options.sites?.(id)),
        ],
        ...(join ? { join, listen: addr.peer, http: addr.http } : {}),
      }),
      kvNodeReady,
      {
        name: `raft node ${id}`,
        timeoutMs: options.timeoutMs ?? 30_000,
        stderr: options.inheritStderr ? "inherit" : "null",
        prefix: options.prefix,
      },
    );
    const np: NodeProcess = {
      id,
      http: p.ready.http,
      url: `${p.ready.scheme}://${p.ready.http}`,
      peer: p.ready.peer,
      ...(p.ready.learner ? { learner: p.ready.learner } : {}),
      dataDir,
      process: p.child,
    };
    nodes.set(id, np);
    if (options.supervise) {
      if (!budgets.has(id)) {
        budgets.set(id, new RestartBudget(options.supervise));
      }
      restartOnExit(
        p.child,
        {
          name: `kv node ${id}`,
          asked: () =>
            stopping || asked.has(p.child) ||
            nodes.get(id)?.process !== p.child,
          restart: () => spawn(id, join),
        },
        budgets.get(id)!,
        options.supervise,
      );
    }
    return np;
  };

  // Settle every start before giving up, so a node that came up while
  // another failed is killed too, not left running.
  const starts = await Promise.allSettled(
    [...spec.keys()].map((id) => spawn(id)),
  );
  const failed = starts.find((r) => r.status === "rejected");
  if (failed) {
    stopping = true;
    for (const n of nodes.values()) {
      try {
        n.process.kill("SIGKILL");
      } catch { /* gone */ }
      await n.process.status;
    }
    throw failed.reason;
  }

  const killNode = async (id: number, signal: Deno.Signal = "SIGKILL") => {
    const n = nodes.get(id);
    if (!n) return;
    asked.add(n.process);
    try {
      n.process.kill(signal);
    } catch { /* gone */ }
    await n.process.status;
    nodes.delete(id);
  };
  return {
    nodes,
    peers,
    secrets,
    kill: killNode,
    restart: (id) => spawn(id),
    join: (id, addresses) => {
      extra.set(id, addresses);
      return spawn(id, true);
    },
    signal: (id, signal) => nodes.get(id)?.process.kill(signal),
    async stop() {
      stopping = true;
      const all = [...nodes.values()];
      await Promise.all(all.map((n) => stopChild(n.process, false, 3000)));
      nodes.clear();
    },
  };
}

/** Where a new member will listen, chosen up front (for `POST /v1/cluster/members`). */
export function reserveAddresses(): { peer: string; http: string } {
  return {
    peer: `127.0.0.1:${freePort()}`,
    http: `127.0.0.1:${freePort()}`,
  };
}
