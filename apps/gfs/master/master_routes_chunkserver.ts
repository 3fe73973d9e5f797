import type { Hono } from "hono";
import { need } from "../shared/access.ts";
import { GfsError } from "../shared/gfs_error.ts";
import { readJson } from "@strata/edge";
import type { MasterService } from "./master_service.ts";
import { CorruptReportSchema, HeartbeatSchema } from "../shared/messages.ts";

/** Largest heartbeat body (it lists every chunk a server holds). */
const HEARTBEAT_MAX_BYTES = 64 << 20;

/** The chunkserver protocol: heartbeats and corruption reports. */
export function chunkserverRoutes(app: Hono, m: MasterService): void {
  app.post("/v1/heartbeat", need.peer, async (c) => {
    const hb = await readJson(c, HeartbeatSchema, {
      // Far above the edge's 1 MiB default for a server with many chunks.
      maxBytes: HEARTBEAT_MAX_BYTES,
    });
    if (hb.chunkBytes !== undefined && hb.chunkBytes !== m.cfg.chunkBytes) {
      // Never register it: its chunks would be cut at other offsets than
      // the files this master describes.
      throw new GfsError(
        "conflict",
        `chunkserver ${hb.id} keeps ${hb.chunkBytes}-byte chunks; this cell's are ${m.cfg.chunkBytes} bytes (start it with --chunk-bytes ${m.cfg.chunkBytes} on a new --data-dir)`,
      );
    }
    m.stats.heartbeats++;
    const { reply, ops } = m.core.heartbeat(hb, Date.now());
    for (const op of ops) {
      await m.propose(op).catch(() => {});
    }
    const peers = [...m.core.servers.values()].map((s) => s.url);
    return c.json({ ...reply, peers });
  });

  app.post("/v1/report-corrupt", need.peer, async (c) => {
    const r = await readJson(c, CorruptReportSchema);
    m.core.reportCorrupt(r.id, r.handle);
    return c.json({ ok: true });
  });
}
