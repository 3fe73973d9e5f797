import { Hono } from "hono";
import { z } from "zod";
import { installErrorHandlers, tlsServeOptions } from "@strata/edge";
import { settleChunkBytes } from "../shared/cell_config_file.ts";
import { ChunkStore } from "./chunk_store.ts";
import { gfsToEdgeError } from "../shared/gfs_error.ts";
import { AccessConfigFields, resolveGfsAccess } from "../shared/access.ts";
import { MasterEndpoints } from "../shared/http_json.ts";
import { ChunkserverService } from "./chunkserver_service.ts";
import { clientDataRoutes } from "./chunkserver_routes_client.ts";
import { peerDataRoutes } from "./chunkserver_routes_peer.ts";
import { masterCommandRoutes } from "./chunkserver_routes_master.ts";
import { statusRoutes } from "./chunkserver_routes_status.ts";
import { runHeartbeats } from "./chunkserver_heartbeat.ts";
import { runScrubber } from "./chunkserver_scrubber.ts";
import { startDataPort } from "./chunkserver_data_port.ts";
import { startBulkPort } from "./chunkserver_bulk_port.ts";

/** Configuration of a chunkserver process. */
export const ChunkserverConfigSchema = z.object({
  /** Stable id (default: kept in `<dataDir>/id`). */
  id: z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/).optional(),
  /** Where chunks live. */
  dataDir: z.string().min(1),
  /** Master base URL, or every master's, comma-separated. */
  master: z.string().refine(
    (v) =>
      v.split(",").every((u) => z.string().url().safeParse(u.trim()).success),
    "expected a URL or comma-separated URLs",
  ),
  /** Rack name ("" = racks not configured). */
  rack: z.string().max(64).default(""),
  /** Capacity offered for chunks, bytes. */
  capacityBytes: z.number().int().min(1).default(100 * 2 ** 30),
  /**
   * Chunk size, bytes (must match the master's): fixed when the data
   * directory is created (cell_config_file.ts); unset means "what the data
   * says", or for a new directory the size the masters report.
   */
  chunkBytes: z.number().int().min(64 * 1024).max(1024 * 2 ** 20).optional(),
  /** Heartbeat interval, ms. */
  heartbeatMs: z.number().int().min(10).default(1000),
  /** Pause between scrubbing two chunks, ms (0 disables the scrubber). */
  scrubPauseMs: z.number().int().min(0).default(200),
  /**
   * A scrub pass over every chunk starts at most this often, ms (default
   * 10 min). Passes used to follow each other a second apart: an idle
   * chunkserver re-verified the same unchanged chunks five times a second
   * (a timer, a read and a CRC each), and every visit to a chunk being
   * appended to waited for its appends and folded its tail. Reads verify
   * the blocks they touch either way; HDFS scans every block once in three
   * weeks by default.
   */
  scrubEveryMs: z.number().int().min(0).default(600_000),
  /** Bind host. */
  host: z.string().default("127.0.0.1"),
  /** Bind port (0 = any free port). */
  port: z.number().int().min(0).max(65535).default(0),
  /**
   * The data port (framed TCP reads and record appends; 0 = any free port,
   * -1 = none). A cell serving TLS has none: its clients use HTTPS.
   */
  dataPort: z.number().int().min(-1).max(65535).default(0),
  /**
   * The bulk port (raw chunk bytes: uploads and large reads; 0 = any free
   * port, -1 = none). Off under TLS, like the data port.
   */
  bulkPort: z.number().int().min(-1).max(65535).default(0),
  ...AccessConfigFields,
});

/** Chunkserver configuration (parsed). */
export type ChunkserverConfig = z.infer<typeof ChunkserverConfigSchema>;

/** A running chunkserver. */
export interface RunningChunkserver {
  /** The chunkserver's stable id. */
  id: string;
  /** Base URL it serves on. */
  url: string;
  /** The data port (null: none, e.g. under TLS). */
  dataPort: number | null;
  /** The bulk port (null: none, e.g. under TLS). */
  bulkPort: number | null;
  /** Its chunk store. */
  store: ChunkStore;
  /** Stops serving and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts a chunkserver: opens the chunk store, builds the
 * {@link ChunkserverService} (the core every part shares), mounts the
 * route modules — client data (`chunkserver_routes_client.ts`: the push
 * chain, piece writes, record appends, reads), peer data
 * (`chunkserver_routes_peer.ts`: a primary's mutations on its
 * secondaries), master commands (`chunkserver_routes_master.ts`: version,
 * clone, delete), status — serves them, and starts the heartbeat
 * (`chunkserver_heartbeat.ts`) and the scrubber
 * (`chunkserver_scrubber.ts`).
 *
 * Write path (GFS): over the bulk port (`chunkserver_bulk_port.ts`) the
 * client sends each piece to the primary, which passes it along the chain
 * while receiving it and answers once it is durable everywhere. Over HTTP
 * (no bulk port: TLS, older servers) the client pushes data along a chain of replicas
 * (`POST /v1/push/:dataId?chain=…`, each server forwarding the stream to the
 * next while it receives it), then asks the primary to apply it. The
 * primary orders mutations per chunk (`mutation_order.ts`), applies
 * locally, and forwards the same mutation at the same offset to the
 * secondaries (`secondaries.ts`); record appends are group-committed per
 * chunk (`record_appender.ts`).
 */
export async function startChunkserver(
  input: z.input<typeof ChunkserverConfigSchema>,
): Promise<RunningChunkserver> {
  const parsed = ChunkserverConfigSchema.parse(input);
  await Deno.mkdir(parsed.dataDir, { recursive: true });
  // Users' tokens for client calls; the peer secret to and from the
  // masters and the other chunkservers.
  const access = await resolveGfsAccess(parsed);
  const peerToken = access.peerToken;
  const client = access.client;
  const cfg = {
    ...parsed,
    chunkBytes: await settleChunkBytes(
      parsed.dataDir,
      parsed.chunkBytes,
      // A new chunkserver without --chunk-bytes joins the cell at its size.
      async () =>
        (await new MasterEndpoints(parsed.master, 30_000, peerToken, client)
          .call(
            "/v1/master",
            z.object({ chunkBytes: z.number().int() }),
            { timeoutMs: 5000 },
          )).chunkBytes,
    ),
  };
  const id = cfg.id ?? await loadOrMakeId(cfg.dataDir);
  const store = await ChunkStore.open(cfg.dataDir, {
    chunkBytes: cfg.chunkBytes,
  });
  const cs = new ChunkserverService(cfg, id, store, peerToken, client);

  const app = new Hono();
  installErrorHandlers(app, { name: "gfs-chunkserver", map: gfsToEdgeError });
  app.use("*", access.guard);
  app.use("*", async (_c, next) => {
    cs.stats.inflight++;
    try {
      await next();
    } finally {
      cs.stats.inflight--;
    }
  });
  clientDataRoutes(app, cs);
  peerDataRoutes(app, cs);
  masterCommandRoutes(app, cs);
  statusRoutes(app, cs);

  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    onListen: () => {},
    ...tlsServeOptions(access.tls),
  }, app.fetch);
  cs.url = `${access.scheme}://${cfg.host}:${server.addr.port}`;
  // Under TLS the data port stays off: the transport's TLS listener cannot
  // switch Nagle off (see packages/transport's README), which would hold
  // every small reply; clients of a TLS cell use the HTTPS routes.
  const dataPort = cfg.dataPort >= 0 && !access.tls.serve
    ? startDataPort(cs, {
      host: cfg.host,
      port: cfg.dataPort,
      secrets: access.secrets,
    })
    : null;
  cs.dataPort = dataPort?.port ?? null;
  // The bulk port is plain TCP too (chunk bytes in the clear, as the data
  // port's): off under TLS, where clients use HTTPS.
  const bulkPort = cfg.bulkPort >= 0 && !access.tls.serve
    ? startBulkPort(cs, {
      host: cfg.host,
      port: cfg.bulkPort,
      secrets: access.secrets,
    })
    : null;
  cs.bulkPort = bulkPort?.port ?? null;

  const loops = [runHeartbeats(cs)];
  if (cfg.scrubPauseMs > 0) loops.push(runScrubber(cs));

  return {
    id,
    url: cs.url,
    dataPort: cs.dataPort,
    bulkPort: cs.bulkPort,
    store,
    async close() {
      // Ends the loops and any heartbeat still retrying unreachable
      // masters, so close() never waits out the failover window.
      cs.closing.abort();
      await server.shutdown();
      await dataPort?.close();
      await bulkPort?.close();
      await cs.secondaries.close();
      await Promise.allSettled(loops);
      await store.close();
      client?.close();
    },
  };
}

async function loadOrMakeId(dir: string): Promise<string> {
  const path = `${dir}/id`;
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (/^[A-Za-z0-9._-]+$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = `cs-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(path, id);
  return id;
}
