import type { Hono } from "hono";
import { need } from "../shared/access.ts";
import { promLine } from "../shared/http_json.ts";
import type { MasterService } from "./master_service.ts";

/** Status: chunkservers, health, metrics. */
export function statusRoutes(app: Hono, m: MasterService): void {
  app.get("/v1/chunkservers", need.read, (c) => {
    const now = Date.now();
    const counts = new Map<string, number>();
    for (const locs of m.core.locations.values()) {
      for (const id of locs.keys()) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return c.json({
      chunkservers: [...m.core.servers.values()].map((s) => ({
        id: s.id,
        url: s.url,
        rack: s.rack,
        alive: s.alive,
        capacityBytes: s.capacityBytes,
        usedBytes: s.usedBytes,
        fractionUsed: s.capacityBytes > 0 ? s.usedBytes / s.capacityBytes : 1,
        load: s.load,
        chunks: counts.get(s.id) ?? 0,
        lastHeartbeatMsAgo: now - s.lastHeartbeat,
      })),
    });
  });

  app.get("/v1/health", need.read, (c) => {
    const h = m.core.health();
    return c.json({
      status: h.lost > 0 || h.underReplicated > 0 ? "degraded" : "ok",
      ...h,
      files: m.store.state.namespace.size,
    });
  });

  app.get("/metrics", need.read, async (c) => {
    const h = m.core.health();
    const lines = [
      "# TYPE gfs_master_files gauge",
      promLine("gfs_master_files", m.store.state.namespace.size),
      "# TYPE gfs_master_chunks gauge",
      promLine("gfs_master_chunks", h.chunks),
      "# TYPE gfs_master_under_replicated_chunks gauge",
      promLine("gfs_master_under_replicated_chunks", h.underReplicated),
      "# TYPE gfs_master_lost_chunks gauge",
      promLine("gfs_master_lost_chunks", h.lost),
      "# TYPE gfs_master_chunkservers gauge",
      promLine("gfs_master_chunkservers", h.liveServers, { state: "live" }),
      promLine("gfs_master_chunkservers", h.deadServers, { state: "dead" }),
      "# TYPE gfs_master_oplog_applied_index gauge",
      promLine("gfs_master_oplog_applied_index", m.store.appliedIndex),
      "# TYPE gfs_master_ops_total counter",
      promLine("gfs_master_ops_total", m.stats.ops),
      "# TYPE gfs_master_heartbeats_total counter",
      promLine("gfs_master_heartbeats_total", m.stats.heartbeats),
      "# TYPE gfs_master_clones_total counter",
      promLine("gfs_master_clones_total", m.stats.clones, { result: "ok" }),
      promLine("gfs_master_clones_total", m.stats.cloneFailures, {
        result: "failed",
      }),
      "# TYPE gfs_master_gateway_bytes_total counter",
      promLine("gfs_master_gateway_bytes_total", m.stats.uploadBytes, {
        direction: "upload",
      }),
      promLine("gfs_master_gateway_bytes_total", m.stats.downloadBytes, {
        direction: "download",
      }),
      "# TYPE gfs_master_clones_in_flight gauge",
      promLine("gfs_master_clones_in_flight", m.core.inflight.length),
    ];
    const raft = await m.store.renderMetrics();
    return c.text(lines.join("\n") + "\n" + raft, 200, {
      "content-type": "text/plain; version=0.0.4",
    });
  });
}
