import type { Hono } from "hono";
import { need } from "../shared/access.ts";
import { promLine } from "../shared/http_json.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

/** Status: health and Prometheus metrics. */
export function statusRoutes(app: Hono, cs: ChunkserverService): void {
  const { id, store, stats, cfg } = cs;

  app.get("/v1/health", need.read, (c) =>
    c.json({
      status: "ok",
      id,
      chunks: store.list().length,
      usedBytes: store.usedBytes,
      capacityBytes: cfg.capacityBytes,
      // Clients learn the data port here (see client/data_connection.ts).
      dataPort: cs.dataPort,
      // ... and the bulk port (client/bulk_connection.ts).
      bulkPort: cs.bulkPort,
    }));

  app.get("/metrics", need.read, (c) =>
    c.text(
      [
        "# TYPE gfs_chunkserver_chunks gauge",
        promLine("gfs_chunkserver_chunks", store.list().length, { id }),
        promLine("gfs_chunkserver_used_bytes", store.usedBytes, { id }),
        promLine("gfs_chunkserver_capacity_bytes", cfg.capacityBytes, { id }),
        "# TYPE gfs_chunkserver_reads_total counter",
        promLine("gfs_chunkserver_reads_total", stats.reads, { id }),
        promLine("gfs_chunkserver_read_bytes_total", stats.readBytes, { id }),
        promLine("gfs_chunkserver_writes_total", stats.writes, { id }),
        promLine("gfs_chunkserver_write_bytes_total", stats.writeBytes, { id }),
        promLine("gfs_chunkserver_corrupt_replicas_total", stats.corrupt, {
          id,
        }),
        promLine("gfs_chunkserver_data_port_calls_total", stats.dataPortCalls, {
          id,
        }),
        promLine("gfs_chunkserver_bulk_port_calls_total", stats.bulkCalls, {
          id,
        }),
        promLine(
          "gfs_chunkserver_data_port_applies_total",
          stats.dataPortApplies,
          { id },
        ),
        promLine(
          "gfs_chunkserver_granted_creates_total",
          stats.grantedCreates,
          { id },
        ),
        // Inline unless the last 8 syncs were all slow (over 10 ms).
        promLine("gfs_chunkserver_journal_syncs_total", store.journalSyncs, {
          id,
        }),
        promLine(
          "gfs_chunkserver_journal_inline_syncs_total",
          store.journalInlineSyncs,
          { id },
        ),
      ].join("\n") + "\n",
      200,
      { "content-type": "text/plain; version=0.0.4" },
    ));
}
