import { Buffer } from "node:buffer";
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import {
  deadlineError,
  edgeGuard,
  type EdgeGuardOptions,
  installErrorHandlers,
  percentDecodeBytes,
  rawPathRest,
  readBytes,
  readJson,
  readParams,
  readQuery,
  requestDeadline,
  requireRole,
} from "@strata/edge";
import type { KvCommand } from "./kv_commands.ts";
import type { KeyValue, KvResult } from "./kv_state_machine.ts";
import { LOCK_PREFIX } from "./kv_state_machine.ts";
import {
  type Consistency,
  type KvService,
  ServiceError,
} from "./kv_service.ts";
import { WatchError } from "./watch_hub.ts";
import { jointChangesSchema } from "./member_changes.ts";

/** Limits of the HTTP API. */
export interface HttpLimits {
  /** Longest key in UTF-8 bytes (default 1024). */
  maxKeyBytes: number;
  /** Largest value in bytes (default 1 MiB); larger → 413. */
  maxValueBytes: number;
  /** Deadline of every request, ms (default 5000): never a hang. */
  requestTimeoutMs: number;
  /** Largest `limit` of a range scan (default 10,000). */
  maxRangeLimit: number;
}

/** Defaults of {@link HttpLimits}. */
export const DEFAULT_LIMITS: HttpLimits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1 << 20,
  requestTimeoutMs: 5000,
  maxRangeLimit: 10_000,
};

const utf8 = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

/** Strictly percent-decodes a raw path segment to bytes, then to strict UTF-8. */
function decodeKey(raw: string, limits: HttpLimits): string {
  return checkKey(percentDecodeBytes(raw, "key"), limits);
}

function checkKey(bytes: Uint8Array, limits: HttpLimits): string {
  if (bytes.length === 0) {
    throw new ServiceError("bad_request", "the key is empty");
  }
  if (bytes.length > limits.maxKeyBytes) {
    throw new ServiceError(
      "bad_request",
      `the key is ${bytes.length} bytes; the limit is ${limits.maxKeyBytes}`,
    );
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ServiceError("bad_request", "the key is not valid UTF-8");
  }
}

function keyFromBody(key: string, limits: HttpLimits): string {
  return checkKey(textEncoder.encode(key), limits);
}

const encodingSchema = z.enum(["utf8", "base64"]).default("utf8");

function valueBytes(
  value: string,
  encoding: "utf8" | "base64",
  limits: HttpLimits,
): Uint8Array {
  let bytes: Uint8Array;
  if (encoding === "base64") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 === 1) {
      throw new ServiceError("bad_request", "value is not valid base64");
    }
    bytes = new Uint8Array(Buffer.from(value, "base64"));
  } else bytes = textEncoder.encode(value);
  if (bytes.length > limits.maxValueBytes) {
    throw new ServiceError(
      "too_large",
      `the value is ${bytes.length} bytes; the limit is ${limits.maxValueBytes}`,
    );
  }
  return bytes;
}

/** A value as JSON: UTF-8 text when it is, else base64 (and says so). */
function renderValue(value: Uint8Array, encoding: "utf8" | "base64") {
  if (encoding === "utf8") {
    try {
      return { value: utf8.decode(value) };
    } catch {
      // Binary: fall through to base64 rather than mangling it.
    }
  }
  return {
    value: Buffer.from(value).toString("base64"),
    encoding: "base64" as const,
  };
}

function renderKv(kv: KeyValue, encoding: "utf8" | "base64") {
  return {
    key: kv.key,
    ...renderValue(kv.value, encoding),
    revision: kv.modRevision,
    createRevision: kv.createRevision,
    version: kv.version,
    ...(kv.session !== undefined ? { session: kv.session } : {}),
  };
}

const putJson = z.strictObject({
  value: z.string(),
  encoding: encodingSchema,
  session: z.number().int().positive().optional(),
});
const casJson = z.strictObject({
  expectValue: z.string().nullable().optional(),
  expectRevision: z.number().int().nonnegative().optional(),
  value: z.string().nullable(),
  encoding: encodingSchema,
}).refine(
  (b) => b.expectValue !== undefined || b.expectRevision !== undefined,
  {
    message:
      "give expectValue (null: key absent) or expectRevision (0: key absent)",
  },
);
const txnValue = z.union([z.string(), z.number().int().nonnegative()]);
const txnJson = z.strictObject({
  compare: z.array(z.strictObject({
    key: z.string(),
    target: z.enum([
      "value",
      "modRevision",
      "createRevision",
      "version",
      "exists",
    ]),
    op: z.enum(["==", "!=", "<", ">"]),
    value: txnValue,
  })).max(64).default([]),
  success: z.array(z.discriminatedUnion("op", [
    z.strictObject({
      op: z.literal("put"),
      key: z.string(),
      value: z.string(),
    }),
    z.strictObject({ op: z.literal("delete"), key: z.string() }),
    z.strictObject({ op: z.literal("get"), key: z.string() }),
  ])).max(128).default([]),
  failure: z.array(z.discriminatedUnion("op", [
    z.strictObject({
      op: z.literal("put"),
      key: z.string(),
      value: z.string(),
    }),
    z.strictObject({ op: z.literal("delete"), key: z.string() }),
    z.strictObject({ op: z.literal("get"), key: z.string() }),
  ])).max(128).default([]),
  encoding: encodingSchema,
});
const sessionJson = z.strictObject({
  ttlMs: z.number().int().min(1000).max(3_600_000),
});
const lockJson = z.strictObject({
  session: z.number().int().positive(),
  /** Wait up to this long for the lock (ms); 0 = try once. */
  waitMs: z.number().int().min(0).max(60_000).default(0),
});
const unlockJson = z.strictObject({ session: z.number().int().positive() });
const memberJson = z.discriminatedUnion("action", [
  z.strictObject({
    action: z.literal("add"),
    id: z.number().int().positive(),
    peerAddress: z.string().regex(/^[^\s:]+:\d{1,5}$/, "host:port"),
    httpAddress: z.string().regex(/^[^\s:]+:\d{1,5}$/, "host:port").optional(),
  }),
  z.strictObject({
    action: z.literal("promote"),
    id: z.number().int().positive(),
  }),
  z.strictObject({
    action: z.literal("remove"),
    id: z.number().int().positive(),
  }),
]);
const transferJson = z.strictObject({
  to: z.number().int().positive().optional(),
});
const consistencyQuery = z.object({
  consistency: z.enum(["linearizable", "lease", "stale"]).default(
    "linearizable",
  ),
  encoding: encodingSchema,
});
const rangeQuery = consistencyQuery.extend({
  prefix: z.string().default(""),
  after: z.string().optional(),
  limit: z.coerce.number().int().positive().default(100),
});
const sessionParams = z.object({ id: z.coerce.number().int().positive() });
const watchQuery = z.object({
  prefix: z.string().default(""),
  from: z.coerce.number().int().positive().optional(),
  encoding: encodingSchema,
});

/** The largest body a request may carry, bytes (a value may grow 4/3 in base64). */
function maxBodyBytes(limits: HttpLimits): number {
  return limits.maxValueBytes * 2 + 64 * 1024;
}

function expectResult<T extends KvResult["op"]>(
  r: KvResult,
  op: T,
): Extract<KvResult, { op: T }> {
  if (r.op === "error") throw new ServiceError("not_found", r.message);
  if (r.op !== op) {
    throw new ServiceError("internal", `expected a ${op} result, got ${r.op}`);
  }
  return r as Extract<KvResult, { op: T }>;
}

/** Who may call a node's API: see `resolveAccess` in @strata/edge. */
export type HttpAccess = Pick<EdgeGuardOptions, "auth" | "hosts">;

/**
 * The HTTP API of a node (Hono), behind the edge guard: reads need the
 * `read` role, writes, transactions, sessions and locks `write`, cluster
 * membership and leadership transfer `admin`. Every body, query and key
 * is validated; every failure is JSON `{"error":{"code","message"}}` with a
 * 4xx/5xx status; every request has a deadline.
 */
export function createHttpApi(
  service: KvService,
  access: HttpAccess,
  limits: HttpLimits = DEFAULT_LIMITS,
): Hono {
  const app = new Hono();
  const deadline = (c: Context) => requestDeadline(c, limits.requestTimeoutMs);
  const waitingFor = "the cluster to answer";
  const propose = async (c: Context, command: KvCommand) => {
    try {
      return await service.propose(command, deadline(c));
    } catch (e) {
      throw deadlineError(e, waitingFor);
    }
  };
  const barrier = async (c: Context, consistency: Consistency) => {
    try {
      await service.readBarrier(consistency, deadline(c));
    } catch (e) {
      throw deadlineError(e, waitingFor);
    }
  };
  const rawKey = (c: Context, prefix: string, suffix = "") =>
    decodeKey(rawPathRest(c, prefix, suffix), limits);
  const jsonBody = <T extends z.ZodType>(c: Context, schema: T) =>
    readJson(c, schema, { maxBytes: maxBodyBytes(limits), empty: {} });
  const write = requireRole("write");
  const admin = requireRole("admin");

  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    service.observeRequest?.(
      c.req.routePath,
      c.res.status,
      (performance.now() - started) / 1000,
    );
  });

  app.use(
    "*",
    edgeGuard({
      ...access,
      tokenHint:
        "send Authorization: Bearer <token>; the tokens are admin.token, write.token and read.token in the cluster's auth dir (by default its data dir)",
    }),
  );

  app.put("/v1/kv/:key{.+}", write, async (c) => {
    const key = rawKey(c, "/v1/kv/");
    let value: Uint8Array;
    let session: number | undefined;
    if ((c.req.header("content-type") ?? "").startsWith("application/json")) {
      const body = await jsonBody(c, putJson);
      value = valueBytes(body.value, body.encoding, limits);
      session = body.session;
    } else {
      value = await readBytes(c, maxBodyBytes(limits));
      if (value.length > limits.maxValueBytes) {
        throw new ServiceError(
          "too_large",
          `the value is ${value.length} bytes; the limit is ${limits.maxValueBytes}`,
        );
      }
    }
    const r = await propose(c, {
      op: "put",
      key,
      value,
      ...(session ? { session } : {}),
    });
    if (r.op === "error") throw new ServiceError("not_found", r.message);
    const put = expectResult(r, "put");
    return c.json({
      key,
      revision: put.revision,
      ...(put.prev ? { prevRevision: put.prev.modRevision } : {}),
    });
  });

  app.post("/v1/kv/:key{.+}/cas", write, async (c) => {
    const key = rawKey(c, "/v1/kv/", "/cas");
    const body = await jsonBody(c, casJson);
    const r = expectResult(
      await propose(c, {
        op: "cas",
        key,
        ...(body.expectValue !== undefined
          ? {
            expectValue: body.expectValue === null
              ? null
              : valueBytes(body.expectValue, body.encoding, limits),
          }
          : {}),
        ...(body.expectRevision !== undefined
          ? { expectRevision: body.expectRevision }
          : {}),
        value: body.value === null
          ? null
          : valueBytes(body.value, body.encoding, limits),
      }),
      "cas",
    );
    return c.json({
      key,
      succeeded: r.succeeded,
      revision: r.revision,
      ...(r.current ? { current: renderKv(r.current, body.encoding) } : {}),
    });
  });

  app.get("/v1/kv/:key{.+}", async (c) => {
    const key = rawKey(c, "/v1/kv/");
    const q = readQuery(c, consistencyQuery);
    await barrier(c, q.consistency);
    const kv = service.store.get(key);
    if (!kv) {
      throw new ServiceError(
        "not_found",
        `key ${JSON.stringify(key)} not found`,
        { revision: service.store.appliedIndex },
      );
    }
    return c.json(renderKv(kv, q.encoding));
  });

  app.delete("/v1/kv/:key{.+}", write, async (c) => {
    const key = rawKey(c, "/v1/kv/");
    const r = expectResult(await propose(c, { op: "delete", key }), "delete");
    return c.json({ key, deleted: r.deleted, revision: r.revision });
  });

  app.get("/v1/kv", async (c) => {
    const q = readQuery(c, rangeQuery);
    if (q.limit > limits.maxRangeLimit) {
      throw new ServiceError(
        "bad_request",
        `limit ${q.limit} is over the maximum of ${limits.maxRangeLimit}`,
      );
    }
    await barrier(c, q.consistency);
    const kvs = service.store.range(q.prefix, q.after, q.limit + 1);
    const more = kvs.length > q.limit;
    return c.json({
      kvs: kvs.slice(0, q.limit).map((kv) => renderKv(kv, q.encoding)),
      more,
      revision: service.store.appliedIndex,
    });
  });

  app.post("/v1/txn", write, async (c) => {
    const body = await jsonBody(c, txnJson);
    const toBytes = (v: string) => valueBytes(v, body.encoding, limits);
    const ops = (list: typeof body.success) =>
      list.map((op) =>
        op.op === "put"
          ? {
            op: "put" as const,
            key: keyFromBody(op.key, limits),
            value: toBytes(op.value),
          }
          : { op: op.op, key: keyFromBody(op.key, limits) }
      );
    const r = expectResult(
      await propose(c, {
        op: "txn",
        compare: body.compare.map((cmp) => {
          if (cmp.target === "value" && typeof cmp.value !== "string") {
            throw new ServiceError(
              "bad_request",
              "a value compare takes a string value",
            );
          }
          if (cmp.target !== "value" && typeof cmp.value !== "number") {
            throw new ServiceError(
              "bad_request",
              `a ${cmp.target} compare takes a number`,
            );
          }
          return {
            key: keyFromBody(cmp.key, limits),
            target: cmp.target,
            op: cmp.op,
            value: typeof cmp.value === "string"
              ? toBytes(cmp.value)
              : cmp.value,
          };
        }),
        success: ops(body.success),
        failure: ops(body.failure),
      }),
      "txn",
    );
    return c.json({
      succeeded: r.succeeded,
      revision: r.revision,
      results: r.results.map((x) => ({
        op: x.op,
        key: x.key,
        ...(x.kv ? { kv: renderKv(x.kv, body.encoding) } : {}),
        ...(x.deleted !== undefined ? { deleted: x.deleted } : {}),
      })),
    });
  });

  app.post("/v1/sessions", write, async (c) => {
    const body = await jsonBody(c, sessionJson);
    const r = expectResult(
      await propose(c, {
        op: "session_open",
        ttlMs: body.ttlMs,
        now: Date.now(),
      }),
      "session_open",
    );
    return c.json({
      id: r.id,
      ttlMs: r.ttlMs,
      expiresAt: r.expiresAt,
      revision: r.revision,
    });
  });

  app.post("/v1/sessions/:id/keepalive", write, async (c) => {
    const { id } = readParams(c, sessionParams);
    if (service.keepAlive) {
      try {
        return c.json(await service.keepAlive(id, deadline(c)));
      } catch (e) {
        throw deadlineError(e, waitingFor);
      }
    }
    const r = expectResult(
      await propose(c, { op: "session_keepalive", id, now: Date.now() }),
      "session_keepalive",
    );
    return c.json({ id: r.id, expiresAt: r.expiresAt, revision: r.revision });
  });

  app.delete("/v1/sessions/:id", write, async (c) => {
    const { id } = readParams(c, sessionParams);
    const r = expectResult(
      await propose(c, { op: "session_close", id }),
      "session_close",
    );
    if (!r.closed) {
      throw new ServiceError("not_found", `session ${id} does not exist`);
    }
    return c.json({ id, closed: true, revision: r.revision });
  });

  app.post("/v1/locks/:name{.+}", write, async (c) => {
    const name = rawKey(c, "/v1/locks/");
    const body = await jsonBody(c, lockJson);
    const signal = deadline(c);
    const waitUntil = performance.now() + body.waitMs;
    for (;;) {
      const r = expectResult(
        await propose(c, { op: "lock", name, session: body.session }),
        "lock",
      );
      if (r.acquired || performance.now() >= waitUntil) {
        return c.json({
          name,
          acquired: r.acquired,
          token: r.token,
          holder: r.holder,
          revision: r.revision,
        }, r.acquired ? 200 : 409);
      }
      // Wait for the lock key to be deleted (or the wait to end), then retry.
      const wait = AbortSignal.any([
        signal,
        AbortSignal.timeout(Math.max(1, waitUntil - performance.now())),
      ]);
      let released = false;
      let unknown = false;
      try {
        for await (
          const e of service.watches.watch(
            LOCK_PREFIX + name,
            r.revision + 1,
            wait,
          )
        ) {
          if (e.type === "delete" && e.key === LOCK_PREFIX + name) {
            released = true;
            break;
          }
        }
      } catch (e) {
        if (!(e instanceof WatchError)) throw e;
        unknown = true;
      }
      if (signal.aborted) {
        throw new ServiceError(
          "timeout",
          "the request deadline passed while waiting for the lock",
        );
      }
      // The wait ran out and the watch saw the holder keep the lock: the
      // answer is the first attempt's. Proposing again only to hear it
      // cost every node an fsync, twice per wait for a standby that
      // waits in a loop.
      if (!released && !unknown && performance.now() >= waitUntil) {
        return c.json({
          name,
          acquired: false,
          token: r.token,
          holder: r.holder,
          revision: r.revision,
        }, 409);
      }
    }
  });

  app.delete("/v1/locks/:name{.+}", write, async (c) => {
    const name = rawKey(c, "/v1/locks/");
    const body = await jsonBody(c, unlockJson);
    const r = expectResult(
      await propose(c, { op: "unlock", name, session: body.session }),
      "unlock",
    );
    return c.json({ name, released: r.released, revision: r.revision });
  });

  app.get("/v1/locks/:name{.+}", async (c) => {
    const name = rawKey(c, "/v1/locks/");
    const q = readQuery(c, consistencyQuery);
    await barrier(c, q.consistency);
    const kv = service.store.get(LOCK_PREFIX + name);
    if (!kv) {
      throw new ServiceError(
        "not_found",
        `lock ${JSON.stringify(name)} is free`,
      );
    }
    return c.json({ name, holder: kv.session, token: kv.createRevision });
  });

  app.get("/v1/watch", (c) => {
    const q = readQuery(c, watchQuery);
    const lastId = c.req.header("last-event-id");
    const from = lastId && /^\d+$/.test(lastId) ? Number(lastId) + 1 : q.from;
    // Refuse a compacted start before the stream opens, as a plain 410.
    if (
      from !== undefined && from < service.watches.oldestRevision &&
      from <= service.store.appliedIndex
    ) {
      throw new ServiceError("compacted", `revision ${from} is compacted`, {
        oldestRevision: service.watches.oldestRevision,
      });
    }
    return streamSSE(c, async (stream) => {
      const ac = new AbortController();
      stream.onAbort(() => ac.abort());
      try {
        for await (
          const e of service.watches.watch(q.prefix, from, ac.signal)
        ) {
          await stream.writeSSE({
            id: String(e.revision),
            event: e.type,
            data: JSON.stringify({
              type: e.type,
              key: e.key,
              revision: e.revision,
              ...(e.value ? renderValue(e.value, q.encoding) : {}),
            }),
          });
        }
      } catch (e) {
        if (e instanceof WatchError) {
          await stream.writeSSE({
            event: "error",
            data: JSON.stringify({
              error: { code: e.code, message: e.message },
            }),
          });
        } else throw e;
      }
    });
  });

  app.get("/v1/status", (c) => c.json(service.status()));
  app.get("/v1/cluster", (c) => {
    const config = service.configuration();
    return c.json({
      members: service.members(),
      leader: service.status().leader,
      // Joint: both the outgoing and the incoming voters' majorities decide.
      joint: config.votersOutgoing !== undefined,
      ...config,
    });
  });
  app.post("/v1/cluster/members", admin, async (c) => {
    const body = await jsonBody(c, memberJson);
    try {
      return c.json({
        members: await service.changeMembership(body, deadline(c)),
      });
    } catch (e) {
      throw deadlineError(e, waitingFor);
    }
  });
  app.post("/v1/cluster/changes", admin, async (c) => {
    const body = await jsonBody(c, jointChangesSchema);
    try {
      return c.json({
        members: await service.changeMembers(body.changes, deadline(c)),
        ...service.configuration(),
      });
    } catch (e) {
      throw deadlineError(e, waitingFor);
    }
  });
  app.post("/v1/cluster/transfer-leadership", admin, async (c) => {
    const body = await jsonBody(c, transferJson);
    try {
      return c.json({
        leader: await service.transferLeadership(body.to, deadline(c)),
      });
    } catch (e) {
      throw deadlineError(e, waitingFor);
    }
  });
  app.get(
    "/metrics",
    async (c) =>
      c.text(await service.metrics(), 200, {
        "content-type": "text/plain; version=0.0.4",
      }),
  );

  installErrorHandlers(app, { name: "kv" });
  return app;
}
