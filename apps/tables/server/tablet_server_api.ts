/**
 * The HTTP API of a tablet server (Hono, behind the edge guard): row
 * mutations, check-and-mutate, row reads and NDJSON scans for the rows of
 * the tablets it serves, and the master's orders to open and close
 * tablets. Reads need `read`, mutations `write`, the master's orders
 * `admin`.
 *
 * Fencing: nothing is served unless the server's kv session lease is valid
 * (checked before the work and again before the answer); a row outside
 * every open tablet is `409 not_serving`, a server without a session
 * answers `503 not_serving`. A write whose lease ran out while it was
 * being applied, or whose tablet another server claimed while it was being
 * logged, is answered `503 unavailable` (outcome unknown: it may be in the
 * log a successor replays), never `not_serving`, which promises nothing was
 * applied.
 */
import { type Context, Hono } from "hono";
import type { GroupCommitStats } from "../storage/server_log.ts";
import { z } from "zod";
import {
  CachedRouter,
  EdgeError,
  edgeGuard,
  type EdgeGuardOptions,
  readJson,
  readQuery,
  requireRole,
} from "@strata/edge";
import { compareBytes, prefixEnd } from "@strata/lsm";
import {
  b64,
  checkAndMutateBody,
  fromB64,
  getRowQuery,
  holdBody,
  LIMITS,
  mutateBody,
  renderRow,
  scanQuery,
  tableNameSchema,
  tableSchemaJson,
  toBytes,
} from "../shared/wire.ts";
import { storageNameSchema, tabletRecordSchema } from "../shared/kv_layout.ts";
import {
  fenced,
  installTablesErrorHandlers,
  TablesError,
} from "../shared/tables_error.ts";
import {
  type Carried,
  HostError,
  type OpenTablet,
  type TabletHost,
} from "./tablet_host.ts";
import { rowKey, toColumns, toMutations } from "./mutation_input.ts";
import { isTabletError } from "../tablet/tablet_error.ts";
import { isFencedError } from "../storage/gfs_fence.ts";
import { type StoreFolder, sweepRetired } from "../storage/store_sweep.ts";
import type { SplitResult } from "../storage/log_split.ts";
import type { LogSweepResult } from "../storage/log_sweep.ts";
import { META_FENCE_HEADER, META_TABLE } from "../shared/metadata_layout.ts";
import { isGfsError } from "@strata/gfs";
import type { SessionLease } from "./session_lease.ts";

/** What the API serves from. */
export interface TabletServerState {
  id: string;
  host: TabletHost;
  /** The current session's lease; undefined while (re)registering. */
  lease(): SessionLease | undefined;
  /** Why the server is not serving, when it is not. */
  notServingReason(): string;
  /** The tablets' stores, for the master's sweeps of retired ones. */
  stores?: StoreFolder;
  /**
   * Splits the commit logs of dead tablet server `server` by tablet
   * (`../storage/log_split.ts`); absent without GFS.
   */
  splitLogs?: (server: string) => Promise<SplitResult[]>;
  /**
   * Deletes dead servers' commit logs no tablet's recovery can read again
   * (`../storage/log_sweep.ts`); absent without GFS.
   */
  sweepLogs?: () => Promise<LogSweepResult>;
  /**
   * The server log's blocks and records acknowledged since it opened
   * (undefined: none open, or tablets logged on local disk): records per
   * block is the group commit's size; its group-commit counters (where a
   * write waits before its block).
   */
  logStats?: () =>
    | { blocks: number; records: number } & Partial<GroupCommitStats>
    | undefined;
}

const openBody = z.strictObject({
  tablet: tabletRecordSchema,
  schema: tableSchemaJson,
  token: z.number().int().positive(),
});
const closeBody = z.strictObject({
  id: z.string().min(1),
  token: z.number().int().positive(),
});
const splitBody = z.strictObject({
  id: z.string().min(1),
  token: z.number().int().positive(),
  /** Split key, base64; default: the tablet's own middle key. */
  key: z.string().optional(),
  left: storageNameSchema,
  right: storageNameSchema,
});
const mergeBody = z.strictObject({
  left: z.string().min(1),
  right: z.string().min(1),
  token: z.number().int().positive(),
  into: storageNameSchema,
});
const sweepBody = z.strictObject({
  token: z.number().int().positive(),
  live: z.array(storageNameSchema).max(1_000_000),
  retired: z.array(storageNameSchema).max(100_000),
});
const sweepLogsBody = z.strictObject({
  token: z.number().int().positive(),
});
const splitLogsBody = z.strictObject({
  token: z.number().int().positive(),
  server: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a tablet server id"),
});
/** readJson's options on every route (one object, not one per request). */
const BODY_LIMIT = { maxBytes: LIMITS.maxBodyBytes } as const;
const splitting = (t: OpenTablet) =>
  new TablesError(
    "not_serving",
    503,
    `tablet ${t.record.id} is being split or merged; ask the master for the new tablets`,
  );
/**
 * Table names that passed {@link tableNameSchema}: a row write checks its
 * table's name on every request, and zod's check was ~2% of a tablet
 * server's CPU under puts. Only valid names are kept (a few per cell); the
 * set is emptied if it ever grows past 4,096.
 */
const validTables = new Set<string>();
const tableParam = (c: Context): string => {
  const raw = c.req.param("table");
  if (raw !== undefined && validTables.has(raw)) return raw;
  const r = tableNameSchema.safeParse(raw);
  if (!r.success) {
    throw new EdgeError("bad_request", `table: ${r.error.issues[0]?.message}`);
  }
  if (r.data === raw) {
    if (validTables.size >= 4096) validTables.clear();
    validTables.add(raw);
  }
  return r.data;
};

/** Builds the app. */
export function createTabletServerApi(
  state: TabletServerState,
  access: Pick<EdgeGuardOptions, "auth" | "hosts" | "peerSecret">,
): Hono {
  // Its routes put `:table` next to the METADATA wildcard (and the rooms'
  // and CRDT routes mounted on it a static segment next to a `:param`),
  // so Hono matches with its TrieRouter: remembered, a put's path is not
  // searched again.
  const app = new Hono({ router: new CachedRouter() });
  const requireServing = () => {
    const lease = state.lease();
    if (!lease?.valid) throw fenced(state.notServingReason());
  };
  /** Serving, and `token` is the newest master's fencing token (409 if older). */
  const requireMaster = (token: number) => {
    requireServing();
    try {
      state.host.fence(token);
    } catch (e) {
      if (e instanceof HostError) throw new EdgeError("conflict", e.message);
      throw e;
    }
  };
  const tabletFor = (table: string, key: Uint8Array): OpenTablet => {
    requireServing();
    const t = state.host.find(table, key);
    if (!t) {
      throw new TablesError(
        "not_serving",
        409,
        `tablet server ${state.id} serves no tablet of ${table} holding this row; ask the master where it is`,
      );
    }
    return t;
  };
  const json = <T extends z.ZodType>(c: Context, s: T) =>
    readJson(c, s, BODY_LIMIT);

  app.use(
    "*",
    edgeGuard({
      ...access,
      tokenHint:
        "send Authorization: Bearer <token>; the tokens are admin.token, write.token and read.token in the tables auth dir",
    }),
  );

  app.get("/v1/status", (c) => {
    const lease = state.lease();
    const log = state.logStats?.();
    return c.json({
      id: state.id,
      serving: lease?.valid ?? false,
      ...(lease?.valid ? {} : { reason: state.notServingReason() }),
      leaseRemainingMs: Math.max(0, Math.round(lease?.remainingMs ?? 0)),
      masterToken: state.host.masterToken,
      tablets: state.host.list().length,
      ...(log === undefined ? {} : {
        log: {
          blocks: log.blocks,
          records: log.records,
          ...(log.gathers === undefined ? {} : {
            gathers: log.gathers,
            gathersFilled: log.gathersFilled,
            gatherMs: Math.round(log.gatherMs ?? 0),
            turnMs: Math.round(log.turnMs ?? 0),
            blockMs: Math.round(log.blockMs ?? 0),
            idleSpells: log.idleSpells,
          }),
        },
      }),
    });
  });

  app.get("/v1/tablets", (c) =>
    c.json({
      server: state.id,
      serving: state.lease()?.valid ?? false,
      tablets: state.host.list().map((t) => {
        const key = t.load.splitKey(t.range);
        return {
          ...t.record,
          bytes: t.tablet.approximateBytes(),
          frozen: t.frozen,
          load: {
            ...t.load.snapshot(),
            ...(key ? { splitKey: b64(key) } : {}),
          },
        };
      }),
    }));

  app.post("/v1/tablets/open", requireRole("admin"), async (c) => {
    const body = await json(c, openBody);
    requireServing();
    if (body.tablet.server !== state.id) {
      throw new EdgeError(
        "bad_request",
        `tablet ${body.tablet.id} is assigned to ${body.tablet.server}, not ${state.id}`,
      );
    }
    try {
      const t = await state.host.openTablet(
        body.tablet,
        body.schema,
        body.token,
      );
      return c.json({ opened: t.record.id });
    } catch (e) {
      if (e instanceof HostError) {
        throw new EdgeError("conflict", e.message, { reason: e.code });
      }
      throw new EdgeError(
        "unavailable",
        `cannot open tablet ${body.tablet.id}: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  });

  app.post("/v1/tablets/close", requireRole("admin"), async (c) => {
    const body = await json(c, closeBody);
    try {
      return c.json({
        closed: await state.host.closeTablet(body.id, body.token),
      });
    } catch (e) {
      if (e instanceof HostError) {
        throw new EdgeError("conflict", e.message, { reason: e.code });
      }
      throw e;
    }
  });

  app.post("/v1/tablets/split", requireRole("admin"), async (c) => {
    const body = await json(c, splitBody);
    requireMaster(body.token);
    const t = state.host.get(body.id);
    if (!t) {
      throw new EdgeError("not_found", `tablet ${body.id} is not open here`);
    }
    if (t.frozen) {
      throw new EdgeError(
        "conflict",
        `tablet ${body.id} is already being split`,
      );
    }
    const key = body.key !== undefined
      ? fromB64(body.key)
      : await t.tablet.splitKey();
    if (
      key === undefined || compareBytes(key, t.range.start) <= 0 ||
      (t.range.end !== null && compareBytes(key, t.range.end) >= 0)
    ) {
      throw new EdgeError(
        "conflict",
        `tablet ${body.id} cannot be split${
          key === undefined
            ? " (too little data)"
            : " at a key outside its range"
        }`,
      );
    }
    await state.host.freeze(t);
    const started = performance.now();
    let carried: Carried;
    try {
      carried = await state.host.copySplit(t, key, body.left, body.right);
    } catch (e) {
      // The tablet stays frozen: the master reopens it on its next pass.
      console.error(
        `tablet server ${state.id}: split of ${body.id} failed: ${
          e instanceof Error ? e.message : e
        }`,
      );
      throw new EdgeError(
        "unavailable",
        `the split of tablet ${body.id} failed; it is reopened unsplit`,
      );
    }
    return c.json({
      key: b64(key),
      ...carried,
      ms: Math.round(performance.now() - started),
    });
  });

  // The master's sweep: delete the retired stores no live manifest names.
  app.post("/v1/stores/sweep", requireRole("admin"), async (c) => {
    const body = await json(c, sweepBody);
    requireMaster(body.token);
    if (!state.stores) {
      throw new EdgeError("bad_request", "this server cannot sweep stores");
    }
    const removed = await sweepRetired(state.stores, body.live, body.retired);
    return c.json({ removed });
  });

  // The master, before reassigning a dead server's tablets: sort its
  // commit logs by tablet, so each new owner reads only its tablets' part.
  app.post("/v1/logs/split", requireRole("admin"), async (c) => {
    const body = await json(c, splitLogsBody);
    requireMaster(body.token);
    if (!state.splitLogs) {
      throw new EdgeError("bad_request", "this server keeps no logs in GFS");
    }
    const started = performance.now();
    const logs = await state.splitLogs(body.server);
    return c.json({ logs, ms: Math.round(performance.now() - started) });
  });

  // The master's sweep of dead servers' commit logs.
  app.post("/v1/logs/sweep", requireRole("admin"), async (c) => {
    const body = await json(c, sweepLogsBody);
    requireMaster(body.token);
    if (!state.sweepLogs) {
      throw new EdgeError("bad_request", "this server keeps no logs in GFS");
    }
    const started = performance.now();
    const r = await state.sweepLogs();
    return c.json({ ...r, ms: Math.round(performance.now() - started) });
  });

  app.post("/v1/tablets/merge", requireRole("admin"), async (c) => {
    const body = await json(c, mergeBody);
    requireMaster(body.token);
    const [left, right] = [
      state.host.get(body.left),
      state.host.get(body.right),
    ];
    if (!left || !right) {
      throw new EdgeError(
        "not_found",
        `tablet ${left ? body.right : body.left} is not open here`,
      );
    }
    if (
      left.record.table !== right.record.table || left.range.end === null ||
      compareBytes(left.range.end, right.range.start) !== 0
    ) {
      throw new EdgeError(
        "conflict",
        `tablets ${body.left} and ${body.right} are not adjacent tablets of one table`,
      );
    }
    if (left.frozen || right.frozen) {
      throw new EdgeError(
        "conflict",
        "a tablet is already being split or merged",
      );
    }
    await Promise.all([state.host.freeze(left), state.host.freeze(right)]);
    const started = performance.now();
    let carried: Carried;
    try {
      carried = await state.host.copyMerge(left, right, body.into);
    } catch (e) {
      // Both stay frozen: the master reopens them on its next pass.
      console.error(
        `tablet server ${state.id}: merge of ${body.left} and ${body.right} failed: ${
          e instanceof Error ? e.message : e
        }`,
      );
      throw new EdgeError(
        "unavailable",
        `the merge of tablets ${body.left} and ${body.right} failed; they are reopened unmerged`,
      );
    }
    return c.json({
      ...carried,
      ms: Math.round(performance.now() - started),
    });
  });

  // METADATA rows are written by the active master only: admin role and
  // a fencing token no older than the newest this server has seen.
  app.post(
    `/v1/tables/${META_TABLE}/*`,
    requireRole("admin"),
    async (c, next) => {
      const token = Number(c.req.header(META_FENCE_HEADER));
      if (!Number.isSafeInteger(token) || token <= 0) {
        throw new EdgeError(
          "forbidden",
          `writes to ${META_TABLE} come from the master, with its fencing token in ${META_FENCE_HEADER}`,
        );
      }
      try {
        state.host.fence(token);
      } catch (e) {
        if (e instanceof HostError) {
          throw new EdgeError("conflict", e.message, { reason: e.code });
        }
        throw e;
      }
      await next();
    },
  );

  app.post("/v1/tables/:table/mutate", requireRole("write"), async (c) => {
    const table = tableParam(c);
    const body = await json(c, mutateBody);
    const key = rowKey(body.row, body.encoding);
    const t = tabletFor(table, key);
    const mutations = toMutations(t.schema, key, body.mutations, body.encoding);
    const r = await state.host.write(
      t,
      () => t.tablet.mutateRow(key, mutations),
    );
    if (r === undefined) throw splitting(t);
    t.load.write(key);
    const { timestamp } = r;
    if (!state.lease()?.valid) {
      throw new EdgeError(
        "unavailable",
        "the server's session lease ran out while the mutation was applied: its outcome is unknown",
      );
    }
    return c.json({ applied: mutations.length, timestamp });
  });

  app.post(
    "/v1/tables/:table/check-and-mutate",
    requireRole("write"),
    async (c) => {
      const table = tableParam(c);
      const body = await json(c, checkAndMutateBody);
      const key = rowKey(body.row, body.encoding);
      const t = tabletFor(table, key);
      const mutations = toMutations(
        t.schema,
        key,
        body.mutations,
        body.encoding,
      );
      const cond = body.condition;
      toColumns(t.schema, cond.family, body.encoding); // checks the family
      const r = await state.host.write(t, () =>
        t.tablet.checkAndMutate(key, {
          family: cond.family,
          qualifier: toBytes(
            cond.qualifier,
            body.encoding,
            "qualifier",
            LIMITS.maxQualifierBytes,
          ),
          equals: cond.equals === null ? null : toBytes(
            cond.equals,
            body.encoding,
            "value",
            LIMITS.maxValueBytes,
          ),
        }, mutations));
      if (r === undefined) throw splitting(t);
      t.load.write(key);
      const { matched } = r;
      if (!state.lease()?.valid) {
        throw new EdgeError(
          "unavailable",
          "the server's session lease ran out while the mutation was applied: its outcome is unknown",
        );
      }
      return c.json({ succeeded: matched });
    },
  );

  app.get("/v1/tables/:table/row", requireRole("read"), async (c) => {
    const table = tableParam(c);
    const q = readQuery(c, getRowQuery);
    const key = rowKey(q.key, q.encoding);
    const t = tabletFor(table, key);
    t.load.read(key);
    const row = await t.tablet.getRow(key, {
      columns: toColumns(t.schema, q.columns, q.encoding),
      ...(q.versions !== undefined ? { versions: q.versions } : {}),
      ...(q.asOf !== undefined ? { asOf: q.asOf } : {}),
    });
    requireServing(); // a server paused while reading must not answer
    return c.json(renderRow(key, row?.cells ?? [], q.encoding));
  });

  app.post("/v1/tables/:table/hold", requireRole("write"), async (c) => {
    const table = tableParam(c);
    const body = await readJson(c, holdBody);
    const t = tabletFor(table, rowKey(body.row, body.encoding));
    await t.tablet.holdSnapshot(body.asOf, body.ms);
    requireServing();
    return c.json({ held: t.record.id, asOf: body.asOf, ms: body.ms });
  });

  app.get("/v1/tables/:table/scan", requireRole("read"), async (c) => {
    const table = tableParam(c);
    const q = readQuery(c, scanQuery);
    const bound = (s: string | undefined, what: string) =>
      s === undefined || s === ""
        ? undefined
        : toBytes(s, q.encoding, what, LIMITS.maxRowKeyBytes);
    const start = bound(q.start, "start");
    const end = bound(q.end, "end");
    const prefix = bound(q.prefix, "prefix");
    if (start && end && compareBytes(start, end) > 0) {
      throw new EdgeError(
        "bad_request",
        "the scan's start is after its end (the range is inverted)",
      );
    }
    // Where the scan begins: the larger of start and prefix.
    let from = start ?? new Uint8Array(0);
    if (prefix && compareBytes(prefix, from) > 0) from = prefix;
    const t = tabletFor(table, from);
    t.load.read(from);
    let until = end;
    const prefixStop = prefix ? prefixEnd(prefix) : undefined;
    if (prefixStop && (!until || compareBytes(prefixStop, until) < 0)) {
      until = prefixStop;
    }
    // The scan is complete here unless it runs past this tablet's end.
    const runsOn = t.range.end !== null &&
      (until === undefined || compareBytes(until, t.range.end) > 0);
    const stopAt = runsOn ? t.range.end! : until;
    const columns = toColumns(t.schema, q.columns, q.encoding);
    const consistent = q.consistent !== undefined;
    if (consistent) {
      if (q.asOf === undefined) {
        throw new EdgeError("bad_request", "a consistent scan needs asOf");
      }
      // A `compacted` refusal is an answer, not an error mid-stream.
      await t.tablet.holdSnapshot(q.asOf, 0);
    }
    const rows = t.tablet.scan({
      start: from,
      ...(stopAt ? { end: stopAt } : {}),
      ...(prefix ? { prefix } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(columns ? { columns } : {}),
      ...(q.versions !== undefined ? { versions: q.versions } : {}),
      ...(q.asOf !== undefined ? { asOf: q.asOf } : {}),
      ...(consistent ? { consistent } : {}),
    })[Symbol.asyncIterator]();
    const enc = new TextEncoder();
    let count = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const lines: string[] = [];
          for (let i = 0; i < 64; i++) {
            const r = await rows.next();
            if (r.done) {
              if (!state.lease()?.valid) throw fenced(state.notServingReason());
              const complete = !runsOn ||
                (q.limit !== undefined && count >= q.limit);
              lines.push(JSON.stringify({
                done: true,
                rows: count,
                continueAt: complete ? null : b64(t.range.end!),
              }));
              controller.enqueue(enc.encode(lines.join("\n") + "\n"));
              controller.close();
              return;
            }
            count++;
            lines.push(
              JSON.stringify(renderRow(r.value.key, r.value.cells, q.encoding)),
            );
          }
          if (!state.lease()?.valid) throw fenced(state.notServingReason());
          controller.enqueue(enc.encode(lines.join("\n") + "\n"));
        } catch (e) {
          const err = e instanceof TablesError
            ? { code: e.code, message: e.message }
            : { code: "unavailable", message: "the scan failed on the server" };
          if (!(e instanceof TablesError)) {
            console.error(
              `tablet server ${state.id}: scan failed: ${
                e instanceof Error ? e.stack : e
              }`,
            );
          }
          controller.enqueue(enc.encode(JSON.stringify({ error: err }) + "\n"));
          controller.close();
        }
      },
      async cancel() {
        await rows.return?.(undefined);
      },
    });
    return c.body(body, 200, { "content-type": "application/x-ndjson" });
  });

  installTablesErrorHandlers(app, {
    name: `tablet server ${state.id}`,
    translate: (e) => {
      if (isFencedError(e)) {
        // Appended before a newer owner's claim was seen: its replay may
        // apply it, so the outcome is unknown (the client does not re-send).
        if (e.maybeApplied) {
          return new EdgeError(
            "unavailable",
            `tablet server ${state.id}: another server took this tablet over while the write was being logged; it may have been applied`,
          );
        }
        // A newer owner claimed the tablet in GFS before the write was logged.
        return new TablesError(
          "not_serving",
          503,
          `tablet server ${state.id}: another server has taken this tablet over`,
        );
      }
      if (isGfsError(e)) {
        // Refused before anything was appended: the row is too big for one
        // commit-log record in this GFS cell.
        if (e.code === "too_large") {
          return new EdgeError("too_large", e.message);
        }
        // The GFS cell failed mid-way: a write's outcome is unknown.
        return new EdgeError("unavailable", `the GFS cell: ${e.message}`);
      }
      if (!isTabletError(e)) return undefined;
      switch (e.code) {
        case "bad_request":
        case "too_large":
        case "compacted":
          return new EdgeError(e.code, e.message);
        case "out_of_range":
        case "closed":
          // Checked before anything is applied: the client asks the master again.
          return new TablesError(
            "not_serving",
            e.code === "closed" ? 503 : 409,
            `tablet server ${state.id}: ${e.message}`,
          );
      }
    },
  });
  return app;
}
