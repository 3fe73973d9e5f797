/**
 * The dashboard's HTTP server (Hono): the page and its modules, a JSON
 * snapshot, an SSE stream of snapshots, the actions (kill, restart, pause,
 * transfer, write, follow; kill and restart of chunkservers and GFS
 * masters; upload, search; kill and restart of tables masters and tablet
 * servers, split, follow and write a row), simulation replay and the
 * benchmark report. Every body and query is validated with zod; every
 * failure is JSON `{"error":{"code","message"}}` with a 4xx/5xx status.
 *
 * Browser safety (the edge guard): a `Host` other than the configured
 * names is refused (DNS rebinding), cross-site requests may not act, and
 * every action needs the per-run page token, which the served page holds
 * and sends as a header — never a cookie another site's page could send.
 */
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import {
  callerRole,
  EdgeError,
  edgeGuard,
  installErrorHandlers,
  LOOPBACK_NAMES,
  readJson,
  readParams,
  readQuery,
  requireRole,
  roleAllows,
  TokenAuth,
} from "@strata/edge";
import type { ClusterSnapshot } from "./cluster_snapshot.ts";
import type { PlaygroundBackend, SimApi } from "./playground_backend.ts";
import { PlaygroundError } from "./playground_error.ts";

/** Options of {@link createDashboardApp}. */
export interface DashboardOptions {
  /** The clusters the dashboard shows and acts on. */
  backend: PlaygroundBackend;
  /** Simulation replay (packages/sim). */
  sim: SimApi;
  /** Directory of index.html and the modules (default: ./static beside this file). */
  staticDir?: string;
  /** The benchmark report file (default: benches/report/index.html of the repository). */
  reportFile?: string;
  /** Ms between keep-alive comments on the SSE stream (default 15 s). */
  keepAliveMs?: number;
  /**
   * The per-run token every action needs (`Authorization: Bearer`); the
   * served page carries it in `<meta name="strata-page-token">`.
   */
  pageToken: string;
  /** Host names the dashboard answers to (default: the loopback names). */
  hosts?: readonly string[] | "any";
  /**
   * Served off loopback: every request needs one of these tokens (the
   * `read` one to look, `admin` also to act), as a Bearer token or as the
   * password a browser asks for (HTTP Basic); the page's actions still
   * carry the per-run page token. Without it (loopback) reads are public.
   */
  operatorTokens?: { read: string; admin: string };
}

/**
 * The dashboard's HTTP app (a Hono app, seen through what callers use).
 */
export interface DashboardApp {
  /** Answers one request; bound, so it can be handed to `Deno.serve` as is. */
  fetch: (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ) => Promise<Response> | Response;
  /** Answers a request for `input` (a path or URL) without a server; for tests. */
  request: (
    input: Request | string | URL,
    init?: RequestInit,
  ) => Promise<Response> | Response;
}

/** Largest key a write may name (bytes of UTF-8), as the raft API allows. */
export const MAX_KEY_BYTES = 1024;
/** Largest value the dashboard writes (bytes). */
export const MAX_VALUE_BYTES = 64 * 1024;

const STATIC_DIR = new URL("./static/", import.meta.url).pathname;
const REPORT_FILE =
  new URL("../../benches/report/index.html", import.meta.url).pathname;

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  json: "application/json",
};

const keySchema = z.string().min(1, "the key is empty").refine(
  (k) => new TextEncoder().encode(k).length <= MAX_KEY_BYTES,
  `the key is longer than ${MAX_KEY_BYTES} bytes`,
);
const writeBody = z.strictObject({
  key: keySchema,
  value: z.string().refine(
    (v) => new TextEncoder().encode(v).length <= MAX_VALUE_BYTES,
    `the value is longer than ${MAX_VALUE_BYTES} bytes`,
  ),
  node: z.number().int().positive().optional(),
});
const followBody = z.strictObject({ key: keySchema });
const transferBody = z.strictObject({
  to: z.number().int().positive().optional(),
});
const nodeParams = z.object({
  id: z.coerce.number().int().positive(),
  action: z.enum(["kill", "restart", "pause", "resume"]),
});
const chunkserverParams = z.object({
  index: z.coerce.number().int().min(0),
  action: z.enum(["kill", "restart"]),
});
const masterParams = z.object({
  index: z.coerce.number().int().min(0),
  action: z.enum(["kill", "restart"]),
});
const tablesParams = z.object({
  kind: z.enum(["masters", "servers"]),
  id: z.string().min(1).max(64),
  action: z.enum(["kill", "restart"]),
});
const tabletParams = z.object({
  id: z.string().min(1).max(128),
});
/** A table name as apps/tables accepts it. */
const tableName = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/,
  "a table name: letters, digits, '_', '.', '-' (at most 64)",
);
const rowKey = z.string().min(1, "the row key is empty").refine(
  (k) => new TextEncoder().encode(k).length <= MAX_KEY_BYTES,
  `the row key is longer than ${MAX_KEY_BYTES} bytes`,
);
const followRowBody = z.strictObject({ table: tableName, row: rowKey });
const writeRowBody = z.strictObject({
  table: tableName,
  row: rowKey,
  column: z.string().regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}:.{1,256}$/,
    "a column is family:qualifier",
  ),
  value: z.string().refine(
    (v) => new TextEncoder().encode(v).length <= MAX_VALUE_BYTES,
    `the value is longer than ${MAX_VALUE_BYTES} bytes`,
  ),
});
const searchQuery = z.object({
  q: z.string().trim().min(1, "type something to search for").max(1000),
  size: z.coerce.number().int().min(1).max(50).default(10),
});
const uploadQuery = z.object({
  name: z.string().min(1).max(200).regex(
    /^[A-Za-z0-9._ ()+-]+$/,
    "use letters, digits, spaces and . _ - ( ) + in file names",
  ).refine((n) => n !== "." && n !== "..", "not a file name"),
});
const replayQuery = z.object({
  scenario: z.string().min(1).max(100),
  seed: z.string().min(1, "give a seed (a number or a failing test's line)")
    .max(20_000),
});

const replicatedQuery = z.object({
  machine: z.enum(["kv", "gfs"]).default("kv"),
  seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).default(1),
  bug: z.string().min(1).max(64).optional(),
  find: z.enum(["0", "1"]).default("0").transform((v) => v === "1"),
});

const roomName = z.string().min(1, "the room is empty").max(200).refine(
  (r) => ![...r].some((ch) => ch.charCodeAt(0) < 0x20),
  "a room name has no control characters",
);
const roomSubscribeBody = z.strictObject({
  room: roomName,
  server: z.string().min(1).max(64),
});
const roomPublishBody = z.strictObject({
  room: roomName,
  data: z.string().max(4096, "a message is at most 4096 characters here"),
  server: z.string().min(1).max(64).optional(),
});
const seriesName = z.string().min(1, "the series is empty").max(100).refine(
  (s) => !s.includes("\0"),
  "a series name has no NUL",
);
const seriesWriteBody = z.strictObject({
  series: seriesName,
  points: z.number().int().min(1).max(1000).default(100),
  spanMs: z.number().int().min(1000).max(60_000).default(5000),
});
const seriesQuery = z.object({ series: seriesName });

/** The playground's errors in the edge's envelope (`port_taken` is a conflict). */
function toEdgeError(e: unknown): EdgeError | undefined {
  if (!(e instanceof PlaygroundError)) return undefined;
  return new EdgeError(
    e.code === "port_taken" ? "conflict" : e.code,
    e.message,
  );
}

const jsonBody = <T extends z.ZodType>(c: Context, schema: T) =>
  readJson(c, schema, { empty: {} });

function missingReportPage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>strata benchmark report</title>
<style>body{font:15px/1.5 system-ui,sans-serif;color:#1f2933;max-width:40rem;margin:3rem auto;padding:0 1rem}
code{background:#eef2f6;padding:.1rem .35rem;border-radius:4px}</style></head>
<body id="report-missing"><h1>No benchmark report yet</h1>
<p>The report is rendered from the results of the benchmark suites. Run them, then render it:</p>
<pre><code>deno task bench</code>
<code>deno task report</code></pre>
<p>Then reload this page: it shows <code>benches/report/index.html</code>.</p></body></html>`;
}

/** Builds the dashboard app. */
export function createDashboardApp(options: DashboardOptions): DashboardApp {
  const { backend, sim } = options;
  const staticDir = options.staticDir ?? STATIC_DIR;
  const reportFile = options.reportFile ?? REPORT_FILE;
  const app = new Hono();
  app.use(
    "*",
    edgeGuard({
      auth: new TokenAuth({
        write: options.pageToken,
        read: options.operatorTokens?.read,
        admin: options.operatorTokens?.admin,
      }),
      hosts: options.hosts ?? LOOPBACK_NAMES,
      publicReads: !options.operatorTokens,
      basicAuth: options.operatorTokens !== undefined,
      tokenHint: options.operatorTokens
        ? "log in with the dashboard token (read.token or admin.token in the playground's auth directory) as the password"
        : "reload the dashboard page: its actions carry the run's token",
    }),
  );
  const act = requireRole("write");

  const serveFile = async (c: Context, name: string) => {
    const ext = name.slice(name.lastIndexOf(".") + 1);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${staticDir}/${name}`);
    } catch {
      throw new PlaygroundError("not_found", `no file ${name}`);
    }
    // The page holds the run's token (base64url: safe in an attribute);
    // only a page served under an allowed Host can read it. With operator
    // tokens only a caller who may act gets it: the read token looks only.
    const role = callerRole(c);
    if (
      name === "index.html" &&
      (!options.operatorTokens ||
        (role !== undefined && roleAllows(role, "write")))
    ) {
      bytes = new TextEncoder().encode(
        new TextDecoder().decode(bytes).replace(
          "<head>",
          `<head>\n    <meta name="strata-page-token" content="${options.pageToken}">`,
        ),
      );
    }
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
  };

  app.get("/", (c) => serveFile(c, "index.html"));
  app.get("/static/:name", (c) => {
    const name = c.req.param("name");
    if (!/^[a-z0-9_-]+\.(html|js|css|svg|png|json)$/.test(name)) {
      throw new PlaygroundError("not_found", `no file ${name}`);
    }
    return serveFile(c, name);
  });

  app.get("/report", async (c) => {
    try {
      const html = await Deno.readTextFile(reportFile);
      return c.html(html);
    } catch {
      return c.html(missingReportPage(), 200);
    }
  });

  app.get("/api/snapshot", (c) => c.json(backend.snapshot()));

  app.get("/api/stream", (c) =>
    streamSSE(c, async (stream) => {
      let wake: (() => void) | undefined;
      let latest: ClusterSnapshot | undefined = backend.snapshot();
      const unsubscribe = backend.subscribe((s) => {
        latest = s;
        wake?.();
      });
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      const keepAlive = options.keepAliveMs ?? 15_000;
      try {
        while (open) {
          if (latest) {
            const s = latest;
            latest = undefined;
            await stream.writeSSE({
              event: "snapshot",
              data: JSON.stringify(s),
            });
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, keepAlive);
          });
          wake = undefined;
          if (open && !latest) await stream.write(": keep-alive\n\n");
        }
      } finally {
        unsubscribe();
      }
    }));

  app.post("/api/raft/nodes/:id/:action", act, async (c) => {
    const p = readParams(c, nodeParams);
    if (!backend.raftNodeIds().includes(p.id)) {
      throw new PlaygroundError(
        "not_found",
        `there is no raft node ${p.id}; the nodes are ${
          backend.raftNodeIds().join(", ")
        }`,
      );
    }
    await backend.raftAction(p.id, p.action);
    return c.json({ ok: true, node: p.id, action: p.action });
  });

  app.post("/api/raft/transfer", act, async (c) => {
    const b = await jsonBody(c, transferBody);
    if (b.to !== undefined && !backend.raftNodeIds().includes(b.to)) {
      throw new PlaygroundError("not_found", `there is no raft node ${b.to}`);
    }
    return c.json({ leader: await backend.transferLeadership(b.to) });
  });

  app.post("/api/raft/write", act, async (c) => {
    const b = await jsonBody(c, writeBody);
    if (b.node !== undefined && !backend.raftNodeIds().includes(b.node)) {
      throw new PlaygroundError("not_found", `there is no raft node ${b.node}`);
    }
    return c.json(await backend.writeKey(b.key, b.value, b.node));
  });

  app.post("/api/follow", act, async (c) => {
    const b = await jsonBody(c, followBody);
    backend.follow(b.key);
    return c.json({ following: b.key });
  });

  app.post("/api/gfs/chunkservers/:index/:action", act, async (c) => {
    const p = readParams(c, chunkserverParams);
    if (p.index >= backend.chunkserverCount()) {
      throw new PlaygroundError(
        "not_found",
        `there is no chunkserver ${p.index}; there are ${backend.chunkserverCount()}`,
      );
    }
    await backend.chunkserverAction(p.index, p.action);
    return c.json({ ok: true, index: p.index, action: p.action });
  });

  app.post("/api/gfs/masters/:index/:action", act, async (c) => {
    const p = readParams(c, masterParams);
    if (p.index >= backend.masterCount()) {
      throw new PlaygroundError(
        "not_found",
        `there is no GFS master ${p.index}; there are ${backend.masterCount()}`,
      );
    }
    await backend.masterAction(p.index, p.action);
    return c.json({ ok: true, index: p.index, action: p.action });
  });

  app.post("/api/gfs/upload", act, async (c) => {
    const q = readQuery(c, uploadQuery);
    const declared = c.req.header("content-length");
    const length = declared !== undefined && /^\d+$/.test(declared)
      ? Number(declared)
      : undefined;
    const body = c.req.raw.body;
    if (!body || length === 0) {
      throw new PlaygroundError("bad_request", "the file is empty");
    }
    return c.json(await backend.upload(q.name, body, length), 201);
  });

  // Before the process route, which would take "tablets" for a kind.
  app.post("/api/tables/tablets/:id/split", act, async (c) => {
    const p = readParams(c, tabletParams);
    return c.json({ split: p.id, tablets: await backend.splitTablet(p.id) });
  });

  app.post("/api/tables/:kind/:id/:action", act, async (c) => {
    const p = readParams(c, tablesParams);
    const kind = p.kind === "masters" ? "master" : "server";
    if (!backend.tablesIds(kind).includes(p.id)) {
      throw new PlaygroundError(
        "not_found",
        `there is no tables ${kind} ${p.id}; there are ${
          backend.tablesIds(kind).join(", ")
        }`,
      );
    }
    await backend.tablesAction(kind, p.id, p.action);
    return c.json({ ok: true, kind, id: p.id, action: p.action });
  });

  app.post("/api/tables/follow", act, async (c) => {
    const b = await jsonBody(c, followRowBody);
    backend.followRow(b.table, b.row);
    return c.json({ following: b });
  });

  app.post("/api/tables/write", act, async (c) => {
    const b = await jsonBody(c, writeRowBody);
    return c.json(await backend.writeRow(b.table, b.row, b.column, b.value));
  });

  app.post("/api/tables/rooms/subscribe", act, async (c) => {
    const b = await jsonBody(c, roomSubscribeBody);
    return c.json(await backend.roomSubscribe(b.room, b.server));
  });

  app.post("/api/tables/rooms/publish", act, async (c) => {
    const b = await jsonBody(c, roomPublishBody);
    return c.json(await backend.roomPublish(b.room, b.data, b.server));
  });

  app.get("/api/tables/rooms", (c) => c.json(backend.rooms()));

  app.post("/api/tables/timeseries/write", act, async (c) => {
    const b = await jsonBody(c, seriesWriteBody);
    return c.json(await backend.seriesWrite(b.series, b.points, b.spanMs));
  });

  app.get("/api/tables/timeseries", async (c) => {
    const q = readQuery(c, seriesQuery);
    return c.json(await backend.series(q.series));
  });

  app.get("/api/search", async (c) => {
    const q = readQuery(c, searchQuery);
    return c.json(await backend.search(q.q, q.size));
  });

  app.get("/api/sim/scenarios", (c) => c.json(sim.scenarios()));
  app.get("/api/sim/replay", async (c) => {
    const q = readQuery(c, replayQuery);
    return c.json(await sim.replay(q.scenario, q.seed));
  });

  app.get("/api/sim/bugs", (c) => c.json(sim.bugs()));
  app.get("/api/sim/replicated", async (c) => {
    const q = readQuery(c, replicatedQuery);
    if (q.bug !== undefined && !sim.bugs().includes(q.bug)) {
      throw new PlaygroundError(
        "bad_request",
        `bug: one of ${sim.bugs().join(", ")} (or none)`,
      );
    }
    return c.json(await sim.replicated(q));
  });

  installErrorHandlers(app, { name: "playground", map: toEdgeError });
  return app;
}
