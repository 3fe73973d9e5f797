/**
 * Starts the whole playground on loopback, every node its own process:
 * a 3-node raft-kv cluster, a GFS cell (3 masters replicated on Raft, 3
 * chunkservers), the
 * search cluster (3 shards × 2 replicas + a coordinator) with the
 * SpamAssassin corpus indexed on first start, and the tables cell (2
 * masters, 3 tablet servers) on that kv cluster and GFS cell. Data lives under one
 * directory and is reused by the next start.
 */
import { join } from "node:path";
import { startCluster as startGfs } from "@strata/gfs";
import { readSpamAssassin, startCluster as startSearch } from "@strata/search";
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { PlaygroundError } from "./playground_error.ts";
import { authHeaders, tlsClient, tokenFile } from "@strata/edge";
import { freePort } from "@strata/process";
import { pathExists as exists } from "@strata/storage";
import { startTablesStack } from "@strata/tables/stack_launcher";
import { TablesClient } from "@strata/tables/client";

/** Options of {@link startPlayground}. */
export interface PlaygroundOptions {
  /** Root of every cluster's data (`raft/`, `gfs/`, `search/` below it). */
  dataDir: string;
  /** HTTP ports of raft nodes 1..3 (default: free ports). */
  raftHttpPorts?: number[];
  /** Index the corpus when the search cluster is empty (default true). */
  index?: boolean;
  /** Index at most this many emails (default: all of them). */
  indexLimit?: number;
  /** Capacity each chunkserver reports, bytes (default 256 MiB, so uploads show on the bars). */
  chunkserverCapacityBytes?: number;
  /** GFS chunk size, bytes (default 1 MiB, so a few-MB upload spreads over chunkservers). */
  chunkBytes?: number;
  /**
   * Run every cluster over TLS with these PEM files: each process serves
   * HTTPS with them and trusts them when it calls the others, and the
   * playground calls them over https trusting the certificate.
   */
  tls?: { certFile: string; keyFile: string };
  /** Called with a line of progress at each step. */
  onProgress?: (line: string) => void;
  /**
   * Aborts the start (Ctrl-C while it runs): what already started is
   * stopped and the promise rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/** One running raft-kv node process. */
export interface PlaygroundRaftNode {
  /** Raft id of the node (1..3). */
  id: number;
  /** `127.0.0.1:port` of its HTTP API. */
  http: string;
  /** `http://127.0.0.1:port` (https with TLS). */
  url: string;
}

/**
 * The raft-kv cluster as the playground drives it (the local cluster of
 * apps/kv, seen through what the playground uses).
 */
export interface PlaygroundRaft {
  /** The running nodes by id; a killed node is absent until restarted. */
  nodes: ReadonlyMap<number, PlaygroundRaftNode>;
  /** Kills one node (SIGKILL by default) and waits for it to exit. */
  kill(id: number, signal?: Deno.Signal): Promise<void>;
  /** Starts a killed node again on its data directory and ports. */
  restart(id: number): Promise<PlaygroundRaftNode>;
  /** Sends a signal without waiting (SIGSTOP / SIGCONT). */
  signal(id: number, signal: Deno.Signal): void;
  /**
   * The cluster's admin token (generated in its data dir by the launcher);
   * the dashboard drives the cluster as its operator.
   */
  readonly adminToken?: string;
}

/** A GFS master or chunkserver process. */
export interface PlaygroundGfsProcess {
  /** Base URL it serves on. */
  url: string;
  /** Chunkserver id (empty for a master). */
  id: string;
  /** Sends SIGTERM (SIGKILL with `hard`) and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
}

/**
 * The GFS cell as the playground drives it (the process cluster of
 * apps/gfs, seen through what the playground uses).
 */
export interface PlaygroundGfs {
  /** Every master replica, by index (Raft id = index + 1). */
  masters: PlaygroundGfsProcess[];
  /** Every master's base URL, by index. */
  masterUrls: string[];
  /** Every chunkserver, by index. */
  chunkservers: PlaygroundGfsProcess[];
  /** Starts stopped chunkserver `i` again on its data directory. */
  restartChunkserver(i: number): Promise<PlaygroundGfsProcess>;
  /** Starts master `i` again after its process was stopped. */
  startMaster(i: number): Promise<PlaygroundGfsProcess>;
  /** The cell's secrets (generated in its data dir by the launcher); the dashboard uses its admin token. */
  readonly secrets?: { readonly tokens: { readonly admin: string } };
}

/**
 * The search cluster as the playground drives it (the cluster of
 * apps/search, seen through what the playground uses).
 */
export interface PlaygroundSearch {
  /** Base URL of the coordinator's public API. */
  url: string;
  /** `replicas[shard][replica]`: the replica's process, null once killed. */
  replicas: ReadonlyArray<ReadonlyArray<{ url: string } | null>>;
  /** The cluster's secrets (generated in its data dir by the launcher); the dashboard uses its admin token. */
  readonly secrets?: { readonly tokens: { readonly admin: string } };
}

/** A tables master or tablet server process. */
export interface PlaygroundTablesProcess {
  id: string;
  /** `http://host:port`. */
  url: string;
}

/**
 * The tables cell as the playground drives it (apps/tables' stack,
 * sharing the playground's kv cluster and GFS cell).
 */
export interface PlaygroundTables {
  /** Every master and tablet server as started (ids and URLs stay known while killed). */
  masters: readonly PlaygroundTablesProcess[];
  servers: readonly PlaygroundTablesProcess[];
  /** Whether the process runs now. */
  running(kind: "master" | "server", id: string): boolean;
  /** SIGKILL and wait for the exit. */
  kill(kind: "master" | "server", id: string): Promise<void>;
  /** Starts a killed process again with its flags and data. */
  restart(kind: "master" | "server", id: string): Promise<void>;
  /** The cell's admin token (generated in its auth dir by the launcher). */
  readonly adminToken: string;
}

/** The table the playground creates on first start (a row per animal). */
export const DEMO_TABLE = "animals";

/** The running playground. */
export interface Playground {
  /** The 3-node raft-kv cluster. */
  raft: PlaygroundRaft;
  /** The GFS cell: 3 masters replicated on Raft and 3 chunkservers. */
  gfs: PlaygroundGfs;
  /** The search cluster: 3 shards × 2 replicas and a coordinator. */
  search: PlaygroundSearch;
  /** The tables cell: 2 masters, 3 tablet servers, tablets in the GFS cell. */
  tables: PlaygroundTables;
  /** Documents in the search index after startup. */
  docs: number;
  /**
   * With `tls`: a fetch client trusting the clusters' certificate, for
   * every call to them (closed by stop); undefined over plain HTTP.
   */
  httpClient?: Deno.HttpClient;
  /** Stops every process (tables, search, gfs, raft), waiting for each to exit. */
  stop(): Promise<void>;
}

/**
 * Starts the playground. On failure, whatever already started is stopped
 * before the error is thrown.
 * @throws PlaygroundError `unavailable` when a cluster does not come up.
 */
export async function startPlayground(
  options: PlaygroundOptions,
): Promise<Playground> {
  const progress = options.onProgress ?? (() => {});
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  const signal = options.signal;
  const tls = options.tls;
  const httpClient = tls ? await tlsClient(tls.certFile) : undefined;
  if (httpClient) stops.push(() => Promise.resolve(httpClient.close()));
  const client = httpClient ? { client: httpClient } : {};
  try {
    signal?.throwIfAborted();
    const raftDir = join(options.dataDir, "raft");
    progress(`[1/4] raft-kv: 3 nodes, data in ${raftDir}…`);
    await Deno.mkdir(raftDir, { recursive: true });
    const raft = await startLocalCluster({
      size: 3,
      dataRoot: raftDir,
      httpPorts: options.raftHttpPorts,
      tls,
    }).catch((e) => {
      throw new PlaygroundError(
        "unavailable",
        `raft-kv did not start: ${message(e)}`,
      );
    });
    stops.push(() => raft.stop());
    const raftView: PlaygroundRaft = {
      nodes: raft.nodes,
      kill: raft.kill,
      restart: raft.restart,
      signal: raft.signal,
      adminToken: raft.secrets?.tokens.admin,
    };
    signal?.throwIfAborted();

    const gfsDir = join(options.dataDir, "gfs");
    progress(
      `[2/4] gfs: 3 masters on Raft and 3 chunkservers, data in ${gfsDir}…`,
    );
    const chunkBytes = options.chunkBytes ?? 1 << 20;
    const gfs = await startGfs({
      dataDir: gfsDir,
      // Three replicas, so killing the leader shows an election while
      // the cell keeps serving.
      masters: GFS_MASTERS,
      chunkservers: 3,
      // Declare a dead chunkserver sooner than the default 10 s, so
      // re-replication shows within seconds of a kill.
      master: { chunkBytes, deadAfterMs: 4000 },
      chunkserver: () => ({
        capacityBytes: options.chunkserverCapacityBytes ?? 256 * 2 ** 20,
      }),
      tls,
    }).catch((e) => {
      throw new PlaygroundError(
        "unavailable",
        `gfs did not start: ${message(e)}`,
      );
    });
    stops.push(() => gfs.stop());
    signal?.throwIfAborted();

    const searchDir = join(options.dataDir, "search");
    progress(
      `[3/4] search: 3 shards × 2 replicas + coordinator, data in ${searchDir}…`,
    );
    const search = await startSearch({
      shards: 3,
      replicas: 2,
      dataDir: searchDir,
      tls,
    }).catch((e) => {
      throw new PlaygroundError(
        "unavailable",
        `search did not start: ${message(e)}`,
      );
    });
    stops.push(() => search.stop());
    signal?.throwIfAborted();
    const searchAuth = authHeaders(search.secrets?.tokens.admin);
    let docs = await searchDocs(search.url, searchAuth, client);
    // The marker is written only when indexing finished: a start that was
    // stopped half way indexes again (re-posting an id replaces it).
    const marker = join(searchDir, INDEXED_MARKER);
    if (options.index !== false && !await exists(marker)) {
      docs = await indexCorpus(
        search.url,
        searchAuth,
        options.indexLimit ?? Infinity,
        progress,
        signal,
        client,
      );
      await Deno.writeTextFile(
        marker,
        JSON.stringify({ docs, at: new Date().toISOString() }) + "\n",
      );
    } else {
      progress(`      ${docs} documents already indexed`);
    }
    signal?.throwIfAborted();

    const tablesDir = join(options.dataDir, "tables");
    progress(
      `[4/4] tables: 2 masters and 3 tablet servers on that kv cluster and GFS cell, data in ${tablesDir}…`,
    );
    const stack = await startTablesStack({
      dataRoot: tablesDir,
      masters: 2,
      servers: 3,
      // Ports fixed up front: a restarted process comes back where the
      // dashboard looks for it.
      masterPorts: [freePort(), freePort()],
      serverPorts: [freePort(), freePort(), freePort()],
      useKv: {
        // URLs: they say https when the kv cluster serves TLS.
        endpoints: [...raft.nodes.values()].sort((a, b) => a.id - b.id).map((
          n,
        ) => n.url),
        tokenFile: tokenFile(raftDir, "write"),
      },
      useGfs: {
        masterUrls: gfs.masterUrls,
        ...(gfs.secrets
          ? { tokenFile: tokenFile(gfs.secrets.dir, "write") }
          : {}),
      },
      // A dead tablet server's tablets move within seconds, so the panel
      // shows the reassignment soon after a kill.
      sessionTtlMs: TABLES_SESSION_TTL_MS,
      tls,
    }).catch((e) => {
      throw new PlaygroundError(
        "unavailable",
        `tables did not start: ${message(e)}`,
      );
    });
    stops.push(() => stack.stop());
    const tables: PlaygroundTables = {
      masters: byId([...stack.masters.values()]),
      servers: byId([...stack.servers.values()]),
      running: (kind, id) =>
        (kind === "master" ? stack.masters : stack.servers).has(id),
      kill: (kind, id) => stack.signal(kind, id, "SIGKILL"),
      restart: async (kind, id) => {
        await stack.restart(kind, id);
      },
      adminToken: stack.secrets.tokens.admin,
    };
    await seedDemoTable(
      stack.masterUrls(),
      tables.adminToken,
      progress,
      httpClient,
    );
    signal?.throwIfAborted();
    return {
      raft: raftView,
      gfs,
      search,
      tables,
      docs,
      ...(httpClient ? { httpClient } : {}),
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

const byId = (ps: PlaygroundTablesProcess[]): PlaygroundTablesProcess[] =>
  ps.map(({ id, url }) => ({ id, url })).sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  );

/** kv session TTL of the tables processes, ms. */
const TABLES_SESSION_TTL_MS = 6000;

/** Rows of the demo table: spread over the alphabet, so splits have keys to cut at. */
const DEMO_ROWS = [
  "aardvark",
  "badger",
  "camel",
  "dingo",
  "eland",
  "ferret",
  "gazelle",
  "heron",
  "ibis",
  "jackal",
  "koala",
  "lemur",
  "marmot",
  "newt",
  "ocelot",
  "panda",
  "quokka",
  "raven",
  "stoat",
  "tapir",
  "urial",
  "vole",
  "walrus",
  "xerus",
  "yak",
  "zebra",
];

/**
 * Creates the demo table (two tablets, split at "m") with a row per
 * animal, unless it exists: a second start keeps the data it has.
 */
async function seedDemoTable(
  masters: string[],
  token: string,
  progress: (line: string) => void,
  httpClient: Deno.HttpClient | undefined,
): Promise<void> {
  const client = new TablesClient(masters, {
    token,
    retryForMs: 60_000,
    ...(httpClient ? { httpClient } : {}),
  });
  const existing = await client.listTables();
  if (existing.some((t) => t.name === DEMO_TABLE)) {
    progress(`      table ${DEMO_TABLE} already there`);
    return;
  }
  await client.createTable(DEMO_TABLE, [{ name: "info", maxVersions: 3 }], [
    "m",
  ]);
  // At once: the tablet servers group-commit them to GFS.
  await Promise.all(
    DEMO_ROWS.map((name, i) =>
      client.mutateRow(DEMO_TABLE, name, [
        { op: "put", family: "info", qualifier: "name", value: name },
        { op: "put", family: "info", qualifier: "legs", value: String(i % 5) },
      ])
    ),
  );
  progress(
    `      table ${DEMO_TABLE}: ${DEMO_ROWS.length} rows in 2 tablets`,
  );
}

/** Master replicas of the GFS cell. */
const GFS_MASTERS = 3;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function searchDocs(
  url: string,
  headers: Record<string, string>,
  client: { client?: Deno.HttpClient },
): Promise<number> {
  const res = await fetch(`${url}/v1/stats`, {
    ...client,
    headers,
    signal: AbortSignal.timeout(10_000),
  });
  const stats = await res.json() as { docs?: number };
  return Number(stats.docs ?? 0);
}

/** File in the search data directory that says the corpus was indexed. */
const INDEXED_MARKER = "corpus-indexed.json";

async function indexCorpus(
  url: string,
  headers: Record<string, string>,
  limit: number,
  progress: (line: string) => void,
  signal: AbortSignal | undefined,
  client: { client?: Deno.HttpClient },
): Promise<number> {
  let total = 0;
  let indexed = 0;
  let batch: string[] = [];
  const t0 = performance.now();
  const send = async () => {
    if (batch.length === 0) return;
    const res = await fetch(`${url}/v1/docs`, {
      ...client,
      method: "POST",
      headers: { ...headers, "content-type": "application/x-ndjson" },
      body: batch.join("\n"),
    });
    if (!res.ok) {
      throw new PlaygroundError(
        "unavailable",
        `indexing failed: ${(await res.text()).slice(0, 300)}`,
      );
    }
    await res.body?.cancel();
    indexed += batch.length;
    batch = [];
    const rate = Math.round(
      indexed / Math.max(1e-3, (performance.now() - t0) / 1000),
    );
    progress(`      indexed ${indexed}/${total} emails (${rate} docs/s)`);
  };
  for await (const doc of readSpamAssassin(limit, (_, n) => total = n)) {
    signal?.throwIfAborted();
    batch.push(JSON.stringify(doc));
    if (batch.length >= 1000) await send();
  }
  await send();
  return indexed;
}
