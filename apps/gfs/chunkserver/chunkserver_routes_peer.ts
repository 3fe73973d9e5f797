import type { Hono } from "hono";
import { readJson, readQuery } from "@strata/edge";
import { need } from "../shared/access.ts";
import { GfsError } from "../shared/gfs_error.ts";
import { readRawBytes } from "../shared/http_json.ts";
import {
  ApplyBytesQuerySchema,
  ApplySchema,
  HandleParam,
} from "../shared/messages.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

/**
 * Peer data routes (primary → secondaries, peer secret only): apply a
 * pushed piece or padding (`apply`), or bytes sent inline (`apply-bytes`,
 * a record-append batch), each in its mutation number's turn.
 */
export function peerDataRoutes(app: Hono, cs: ChunkserverService): void {
  const { store, order } = cs;

  app.post("/v1/chunks/:handle/apply-bytes", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, ApplyBytesQuerySchema);
    // The whole body first: waiting for our turn must not hold the sender.
    const data = await readRawBytes(c, cs.cfg.chunkBytes);
    await cs.applyBytes(handle, q, data);
    return c.json({ ok: true });
  });

  app.post("/v1/chunks/:handle/apply", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const a = await readJson(c, ApplySchema);
    if (a.padTo === undefined && a.dataId === undefined) {
      throw new GfsError("bad_request", "apply needs dataId or padTo");
    }
    if (a.seq !== undefined) await order.waitTurn(handle, a.version, a.seq);
    let applied: Promise<number>;
    try {
      applied = a.padTo !== undefined
        ? store.write(handle, a.version, a.padTo, new Uint8Array(0))
        : store.write(handle, a.version, a.offset, cs.staged(a.dataId!));
    } finally {
      // Queued in the store in number order: the next may queue now.
      if (a.seq !== undefined) order.markApplied(handle, a.version, a.seq);
    }
    await applied;
    if (a.dataId) cs.staging.delete(a.dataId);
    return c.json({ ok: true });
  });
}
