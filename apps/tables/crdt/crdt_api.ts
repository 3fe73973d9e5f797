/**
 * `crdt_api.ts`: the CRDT routes of a tablet server (behind its edge
 * guard, which must know the peer secret). They serve the replicas held
 * here whether or not the server's kv session is alive.
 *
 * - `POST /v1/crdt/:range/update` (write): one operation on one key
 *   → `{"range","replica","key","counter"?,"set"?,"register"?}` once durable here.
 * - `GET /v1/crdt/:range/get?key=K` (read): the key's value at this replica.
 * - `GET /v1/crdt/:range/scan?prefix=&after=&limit=` (read): `{"keys":[…],"more"}`.
 * - `GET /v1/crdt/:range/digest` (read): `{"keys","digest"}` of the whole replica.
 * - `GET /v1/crdt` (read): the ranges held here, keys not yet pushed per peer.
 * - `POST /v1/crdt/_sync` (peer secret only): another replica's key states.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import {
  EdgeError,
  readJson,
  readQuery,
  requirePeer,
  requireRole,
} from "@strata/edge";
import type { CrdtService } from "./crdt_service.ts";
import { crdtKeySchema } from "./crdt_value.ts";
import {
  crdtRangeNameSchema,
  crdtScanQuery,
  crdtSyncBody,
  crdtUpdateBody,
  MAX_SYNC_BYTES,
} from "./crdt_wire.ts";

const rangeParam = (c: Context): string => {
  const r = crdtRangeNameSchema.safeParse(c.req.param("range"));
  if (!r.success) {
    throw new EdgeError("bad_request", `range: ${r.error.issues[0]?.message}`);
  }
  return r.data;
};
const getQuery = z.strictObject({ key: crdtKeySchema });

/** The routes, for the server's app. */
export function createCrdtApi(crdt: CrdtService, serverId: string): Hono {
  const app = new Hono();

  app.post("/v1/crdt/_sync", requirePeer(), async (c) => {
    const b = await readJson(c, crdtSyncBody, { maxBytes: MAX_SYNC_BYTES });
    return c.json(await crdt.handleSync(b));
  });

  app.get("/v1/crdt", requireRole("read"), (c) => c.json(crdt.status()));

  app.post("/v1/crdt/:range/update", requireRole("write"), async (c) => {
    const range = rangeParam(c);
    const { key, ...op } = await readJson(c, crdtUpdateBody, {
      maxBytes: 2 << 20,
    });
    return c.json({
      range,
      replica: serverId,
      ...(await crdt.update(range, key, op)),
    });
  });

  app.get("/v1/crdt/:range/get", requireRole("read"), async (c) => {
    const range = rangeParam(c);
    const { key } = readQuery(c, getQuery);
    return c.json({
      range,
      replica: serverId,
      ...(await crdt.read(range, key)),
    });
  });

  app.get("/v1/crdt/:range/scan", requireRole("read"), async (c) => {
    const range = rangeParam(c);
    const q = readQuery(c, crdtScanQuery);
    return c.json({ range, replica: serverId, ...(await crdt.scan(range, q)) });
  });

  app.get("/v1/crdt/:range/digest", requireRole("read"), async (c) => {
    const range = rangeParam(c);
    return c.json({ range, replica: serverId, ...(await crdt.digest(range)) });
  });

  return app;
}
