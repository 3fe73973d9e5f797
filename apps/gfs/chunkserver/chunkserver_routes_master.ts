import type { Hono } from "hono";
import { authHeaders, readJson } from "@strata/edge";
import { need } from "../shared/access.ts";
import { GfsError } from "../shared/gfs_error.ts";
import { throwIfFailed } from "../shared/http_json.ts";
import {
  CloneSchema,
  HandleParam,
  SetVersionSchema,
} from "../shared/messages.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

/**
 * Master commands (peer secret only): set a chunk's version (creating it,
 * granting a lease), clone a chunk from another replica (re-replication,
 * rebalancing), delete a chunk.
 */
export function masterCommandRoutes(app: Hono, cs: ChunkserverService): void {
  const { store } = cs;

  app.post("/v1/chunks/:handle/version", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const v = await readJson(c, SetVersionSchema);
    const had = store.meta(handle)?.version;
    if (had !== undefined && v.version > had) cs.appends.abortForwards(handle);
    await cs.serial(
      handle,
      () => store.setVersion(handle, v.version, v.create),
    );
    if (v.leaseUntil !== undefined) {
      cs.leases.set(handle, { version: v.version, expiresAt: v.leaseUntil });
    } else if ((cs.leases.get(handle)?.version ?? v.version) < v.version) {
      cs.leases.delete(handle);
    }
    return c.json({ ok: true });
  });

  app.post("/v1/chunks/:handle/clone", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const cl = await readJson(c, CloneSchema);
    const [source] = await cs.peers.origins([cl.source], "clone source");
    const src = `${source}/v1/chunks/${handle}?version=${cl.version}`;
    const res = await fetch(src, {
      headers: authHeaders(cs.peerToken),
      client: cs.client,
      signal: AbortSignal.timeout(120_000),
    })
      .catch((e) => {
        throw new GfsError("unavailable", `cannot reach ${cl.source}: ${e}`);
      });
    await throwIfFailed(res, src);
    const data = new Uint8Array(await res.arrayBuffer());
    const length = await cs.serial(handle, async () => {
      const m = store.meta(handle);
      if (m !== undefined) await store.delete(handle);
      await store.setVersion(handle, cl.version, true);
      return await store.write(handle, cl.version, 0, data);
    });
    return c.json({ length });
  });

  app.delete("/v1/chunks/:handle", need.peer, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    await cs.serial(handle, () => store.delete(handle));
    cs.forget(handle);
    return c.json({ ok: true });
  });
}
