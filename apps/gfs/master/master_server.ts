import { Hono } from "hono";
import { need } from "../shared/access.ts";
import { z } from "zod";
import type { ChunkMaster, ChunkMasterOptions } from "./chunk_master.ts";
import { settleChunkBytes } from "../shared/cell_config_file.ts";
import {
  errorResponse,
  installErrorHandlers,
  isLoopback,
  tlsServeOptions,
} from "@strata/edge";
import { GfsError, gfsToEdgeError } from "../shared/gfs_error.ts";
import { AccessConfigFields, resolveGfsAccess } from "../shared/access.ts";
import { ReplicatedMasterStore } from "./replicated_master_store.ts";
import { parsePeerList, splitHostPort } from "@strata/replication";
import { startMaintenance } from "./master_maintenance.ts";
import { MasterService, type MetadataStore } from "./master_service.ts";
import { chunkserverRoutes } from "./master_routes_chunkserver.ts";
import { clientRoutes } from "./master_routes_client.ts";
import { gatewayRoutes } from "./master_routes_gateway.ts";
import { statusRoutes } from "./master_routes_status.ts";
import { memberRoutes } from "./master_routes_members.ts";

export type { MetadataStore } from "./master_service.ts";

/** Configuration of a master process (times in ms, sizes in bytes). */
export const MasterConfigSchema = z.object({
  /** Where the raft log, snapshots and hard state live. */
  dataDir: z.string().min(1),
  host: z.string().default("127.0.0.1"),
  /** Bind port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(0),
  /**
   * Chunk size, bytes: fixed when the cell's data is created (see
   * cell_config_file.ts); unset means "what the data says", 64 MiB for a new cell.
   */
  chunkBytes: z.number().int().min(64 * 1024).max(1024 * 2 ** 20).optional(),
  /** Default replication factor of new files. */
  replication: z.number().int().min(1).max(16).default(3),
  /** Largest file a PUT accepts. */
  maxFileBytes: z.number().int().min(0).default(2 ** 40),
  deadAfterMs: z.number().int().min(100).default(10_000),
  leaseMs: z.number().int().min(100).default(60_000),
  gcDelayMs: z.number().int().min(0).default(3 * 24 * 3600_000),
  pendingTimeoutMs: z.number().int().min(100).default(10 * 60_000),
  /** Period of dead-server detection, GC and re-replication planning. */
  tickMs: z.number().int().min(10).default(1000),
  maxClonesPerServer: z.number().int().min(1).default(2),
  /** Rebalancing moves per tick (0 disables). */
  maxMovesPerTick: z.number().int().min(0).default(2),
  checkpointEvery: z.number().int().min(1).default(10_000),
  /** This master's id in a replicated group (with `peers`). */
  id: z.number().int().min(1).default(1),
  /**
   * Every master of a replicated group, `1=raftHost:port/httpHost:port,...`
   * (this one included). Without it the master runs alone: a one-member
   * group with no raft port.
   */
  peers: z.string().optional(),
  /**
   * Start as a new member of a running group (no bootstrap): added through
   * `POST /v1/master/members` on the leader; `peers` lists the group and
   * this master.
   */
  join: z.boolean().default(false),
  /** Milliseconds per raft tick of a replicated master. */
  raftTickMs: z.number().int().min(5).default(100),
  /** Raft ticks without a leader before a replicated master campaigns. */
  electionTicks: z.number().int().min(3).default(10),
  ...AccessConfigFields,
});

/** Master configuration (parsed). */
export type MasterConfig = z.infer<typeof MasterConfigSchema>;

/** A running master. */
export interface RunningMaster {
  /** Base URL it serves on. */
  url: string;
  /** The soft state (locations, leases) of the current term. */
  readonly core: ChunkMaster;
  /** Where its metadata lives: a Raft group (of one when alone). */
  store: MetadataStore;
  /** Stops serving and closes the metadata store. */
  close(): Promise<void>;
}

/**
 * Starts the master: recovers its state from its raft log and snapshots
 * (alone, or as a replica of a Raft group), builds the {@link MasterService} (the core
 * every part shares), mounts the route modules — chunkserver protocol
 * (`master_routes_chunkserver.ts`), client RPCs (`master_routes_client.ts`),
 * file gateway (`master_routes_gateway.ts`), status
 * (`master_routes_status.ts`) — serves them, and starts the maintenance
 * loop (`master_maintenance.ts`). Locations are re-learned from heartbeats
 * after a restart.
 */
export async function startMaster(
  input: z.input<typeof MasterConfigSchema>,
): Promise<RunningMaster> {
  const parsed = MasterConfigSchema.parse(input);
  await Deno.mkdir(parsed.dataDir, { recursive: true });
  const access = await resolveGfsAccess(parsed);
  const cfg = {
    ...parsed,
    chunkBytes: await settleChunkBytes(parsed.dataDir, parsed.chunkBytes),
    peerToken: access.peerToken,
    httpClient: access.client,
    scheme: access.scheme,
  };
  let store: MetadataStore;
  if (cfg.peers !== undefined) {
    const members = parsePeerList(cfg.peers);
    const self = members.get(cfg.id);
    if (self === undefined) {
      throw new GfsError(
        "bad_request",
        `--peers does not list this master's id ${cfg.id}`,
      );
    }
    const [hostname, port] = splitHostPort(self.peer);
    if (access.peerToken === undefined && !isLoopback(hostname)) {
      throw new GfsError(
        "bad_request",
        `refusing to listen for raft peers on ${hostname} without the peer secret: drop --insecure-no-auth`,
      );
    }
    store = await ReplicatedMasterStore.open(cfg.dataDir, {
      id: cfg.id,
      members,
      join: cfg.join,
      listen: { hostname, port },
      tickMs: cfg.raftTickMs,
      electionTicks: cfg.electionTicks,
      checkpointEvery: cfg.checkpointEvery,
      // The raft transport authenticates peers with the cell's peer secret.
      secret: access.peerToken,
      // With --tls-cert, raft runs over TLS with the same certificate.
      tls: access.tls.serve && {
        cert: access.tls.serve.cert,
        key: access.tls.serve.key,
        caCerts: access.tls.caCerts ?? [],
      },
      scheme: access.scheme,
    });
  } else {
    // Alone: a one-member group without a raft port (leads at once; a
    // former single master's op log is migrated on the first open).
    store = await ReplicatedMasterStore.open(cfg.dataDir, {
      id: cfg.id,
      checkpointEvery: cfg.checkpointEvery,
      scheme: access.scheme,
    });
  }
  const m = new MasterService(
    cfg,
    store,
    {
      chunkBytes: cfg.chunkBytes,
      deadAfterMs: cfg.deadAfterMs,
      leaseMs: cfg.leaseMs,
      gcDelayMs: cfg.gcDelayMs,
      pendingTimeoutMs: cfg.pendingTimeoutMs,
      maxClonesPerServer: cfg.maxClonesPerServer,
      maxMovesPerTick: cfg.maxMovesPerTick,
    } satisfies Partial<ChunkMasterOptions>,
  );

  const app = new Hono();
  const errors = { name: "gfs-master", map: gfsToEdgeError };
  installErrorHandlers(app, errors);
  // Tokens, Host and cross-site checks before anything, the redirect to
  // the leader included (it would tell a stranger who leads).
  app.use("*", access.guard);
  // Only the serving master answers; the others redirect to it (307 keeps
  // the method and body), or say there is no leader yet.
  app.use("*", async (c, next) => {
    if (
      m.store.serving() || c.req.path === "/metrics" ||
      c.req.path === "/v1/master" ||
      // No valid lease (lapsed, voided by a pause, or refused by the clock
      // guard): a leader confirms its leadership with a ReadIndex round.
      await m.store.servingConfirmed()
    ) return await next();
    const leader = m.store.leaderUrl();
    if (leader !== undefined) {
      const u = new URL(c.req.url);
      return c.redirect(`${leader}${u.pathname}${u.search}`, 307);
    }
    return errorResponse(
      c,
      new GfsError(
        "not_leader",
        "this master does not lead and knows no leader (election in progress); retry shortly",
      ),
      errors,
    );
  });
  app.get("/v1/master", need.read, (c) => {
    const base = {
      url: m.url,
      serving: m.store.serving(),
      appliedIndex: m.store.appliedIndex,
      // Every replica answers this, so a new chunkserver can learn the
      // cell's chunk size from any of them.
      chunkBytes: m.cfg.chunkBytes,
    };
    const r = m.store.replication();
    return c.json({
      ...base,
      ...r,
      leaderUrl: m.store.leaderUrl() ?? (r.leader === r.id ? m.url : null),
    });
  });

  chunkserverRoutes(app, m);
  clientRoutes(app, m);
  gatewayRoutes(app, m);
  statusRoutes(app, m);
  memberRoutes(app, m);

  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    onListen: () => {},
    ...tlsServeOptions(access.tls),
  }, app.fetch);
  m.url = `${access.scheme}://${cfg.host}:${server.addr.port}`;
  const stopMaintenance = startMaintenance(m);

  return {
    url: m.url,
    get core(): ChunkMaster {
      return m.core;
    },
    store,
    async close() {
      const maintenance = stopMaintenance();
      await server.shutdown();
      await maintenance;
      await store.close();
      access.client?.close();
    },
  };
}
