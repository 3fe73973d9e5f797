/**
 * The HTTP API of a master (Hono, behind the edge guard). Reads of the
 * tablet map (`GET /v1/tables…`, `GET /v1/tablets`) come from kv and are
 * answered by any master, so clients find tablets while a standby takes
 * over; creating and deleting tables and moving tablets need the active
 * master (a standby answers `503 no_leader` with `leaderUrl`) and the
 * `admin` role.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import {
  EdgeError,
  edgeGuard,
  type EdgeGuardOptions,
  readJson,
  requireRole,
} from "@strata/edge";
import { compareBytes } from "@strata/lsm";
import { KvClientError } from "@strata/kv";
import {
  createTableBody,
  encodingSchema,
  LIMITS,
  tableNameSchema,
  toBytes,
} from "../shared/wire.ts";
import { installTablesErrorHandlers } from "../shared/tables_error.ts";
import type { MasterService } from "./master_service.ts";
import { crdtRangeNameSchema, createCrdtRangeBody } from "../crdt/crdt_wire.ts";

const moveBody = z.strictObject({ server: z.string().min(1).max(64) });
/** Merge `:id` with the tablet right after it. */
const mergeBody = z.strictObject({ with: z.string().min(1).max(128) });
const splitBody = z.strictObject({
  /** Split key; default: the tablet's middle key. */
  key: z.string().optional(),
  encoding: encodingSchema,
});

/** Builds the app. */
export function createMasterApi(
  id: string,
  master: MasterService,
  access: Pick<EdgeGuardOptions, "auth" | "hosts">,
): Hono {
  const app = new Hono();
  const tableParam = (c: Context) => {
    const r = tableNameSchema.safeParse(c.req.param("name"));
    if (!r.success) {
      throw new EdgeError(
        "bad_request",
        `table: ${r.error.issues[0]?.message}`,
      );
    }
    return r.data;
  };
  const active = async () => {
    if (master.role !== "active") {
      const leaderUrl = await master.leaderUrl();
      throw new EdgeError(
        "no_leader",
        `master ${id} is a standby; send this to the active master${
          leaderUrl ? ` (${leaderUrl})` : ""
        }`,
        leaderUrl ? { leaderUrl } : undefined,
      );
    }
  };

  app.use(
    "*",
    edgeGuard({
      ...access,
      tokenHint:
        "send Authorization: Bearer <token>; the tokens are admin.token, write.token and read.token in the tables auth dir",
    }),
  );

  app.get("/v1/status", async (c) =>
    c.json({
      id,
      role: master.role,
      ...(master.role === "active" ? { token: master.token } : {}),
      leaderUrl: (await master.leaderUrl()) ?? null,
      loadPolicy: master.loadPolicy,
      passes: { ...master.passes, fullPassMs: master.fullPassMs },
      decisions: master.decisions,
    }));

  app.get(
    "/v1/tables",
    async (c) => c.json({ tables: await master.schemas() }),
  );

  app.get(
    "/v1/tables/:name",
    async (c) => c.json(await master.table(tableParam(c))),
  );

  app.post("/v1/tables", requireRole("admin"), async (c) => {
    const body = await readJson(c, createTableBody, { maxBytes: 1 << 20 });
    await active();
    const splits = body.splits.map((s) =>
      toBytes(s, body.encoding, "split key", LIMITS.maxRowKeyBytes)
    ).sort(compareBytes);
    for (let i = 0; i < splits.length; i++) {
      if (
        splits[i]!.length === 0 ||
        (i > 0 && compareBytes(splits[i - 1]!, splits[i]!) === 0)
      ) {
        throw new EdgeError(
          "bad_request",
          "split keys must be non-empty and distinct",
        );
      }
    }
    if (splits.length > 100) {
      throw new EdgeError("bad_request", "at most 100 split keys");
    }
    const { encoding: _e, splits: _s, ...schema } = body;
    const tablets = await master.createTable(schema, splits);
    return c.json({ schema, tablets }, 201);
  });

  app.delete("/v1/tables/:name", requireRole("admin"), async (c) => {
    const name = tableParam(c);
    await active();
    await master.deleteTable(name);
    return c.json({ deleted: name });
  });

  app.get("/v1/root", async (c) => c.json({ tablet: await master.root() }));

  app.get(
    "/v1/tablets",
    async (c) => c.json({ tablets: await master.tablets() }),
  );

  app.post("/v1/tablets/:id/move", requireRole("admin"), async (c) => {
    const tabletId = c.req.param("id");
    const body = await readJson(c, moveBody);
    await active();
    return c.json({ tablet: await master.moveTablet(tabletId, body.server) });
  });

  app.post("/v1/tablets/:id/split", requireRole("admin"), async (c) => {
    const tabletId = c.req.param("id");
    const body = await readJson(c, splitBody, { empty: {} });
    await active();
    const key = body.key === undefined
      ? undefined
      : toBytes(body.key, body.encoding, "split key", LIMITS.maxRowKeyBytes);
    return c.json({ tablets: await master.splitTablet(tabletId, key) });
  });

  app.post("/v1/tablets/:id/merge", requireRole("admin"), async (c) => {
    const tabletId = c.req.param("id");
    const body = await readJson(c, mergeBody);
    await active();
    return c.json({
      tablet: await master.mergeTablets(tabletId, body.with),
    });
  });

  // CRDT ranges (../crdt/): declarations in kv; replicas on the servers.
  const crdtParam = (c: Context) => {
    const r = crdtRangeNameSchema.safeParse(c.req.param("name"));
    if (!r.success) {
      throw new EdgeError(
        "bad_request",
        `range: ${r.error.issues[0]?.message}`,
      );
    }
    return r.data;
  };
  app.get(
    "/v1/crdt",
    async (c) => c.json({ ranges: await master.crdtRanges() }),
  );
  app.get(
    "/v1/crdt/:name",
    async (c) => c.json(await master.crdtRange(crdtParam(c))),
  );
  app.post("/v1/crdt", requireRole("admin"), async (c) => {
    const body = await readJson(c, createCrdtRangeBody);
    await active();
    return c.json(
      await master.createCrdtRange(body.name, body.replicas),
      201,
    );
  });
  app.delete("/v1/crdt/:name", requireRole("admin"), async (c) => {
    const name = crdtParam(c);
    await active();
    await master.deleteCrdtRange(name);
    return c.json({ deleted: name });
  });

  installTablesErrorHandlers(app, {
    name: `tables master ${id}`,
    // kv did not answer (or not in time): the request may be retried.
    translate: (e) =>
      e instanceof KvClientError
        ? new EdgeError(
          e.code === "unknown_outcome" ? "timeout" : "unavailable",
          `the kv service: ${e.message}`,
        )
        : undefined,
  });
  return app;
}
