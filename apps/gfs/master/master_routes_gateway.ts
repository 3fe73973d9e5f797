import type { Hono } from "hono";
import { need } from "../shared/access.ts";
import { percentDecode, rawPathRest, readJson, readQuery } from "@strata/edge";
import { z } from "zod";
import { GfsClient, type MasterCaller } from "../client/client.ts";
import { GfsError } from "../shared/gfs_error.ts";
import { parsePath, parsePrefix, parseTrashPath } from "../shared/gfs_path.ts";
import {
  type FetchJsonOptions,
  jsonRequestInit,
  parseResponse,
  requestBody,
} from "../shared/http_json.ts";
import type { MasterService } from "./master_service.ts";
import { PathLocks } from "./path_locks.ts";
import { parseRange } from "../client/range_header.ts";

// Request schemas, built once (zod compiles a schema on first use, so one
// built per request costs more than the request).
const PutQuery = z.object({
  replication: z.coerce.number().int().min(1).max(16).optional(),
});
const UndeleteBody = z.object({ trashPath: z.string().min(1).max(2048) });
const LsQuery = z.object({ prefix: z.string().max(2048).default("/") });
/** At most this many paths in one `POST /v1/exists`. */
export const MAX_EXISTS_PATHS = 256;
const ExistsBody = z.object({
  paths: z.array(z.string().min(1).max(2048)).min(1).max(MAX_EXISTS_PATHS),
});

/** This master's RPCs as a {@link MasterCaller}, answered in process. */
class InProcessMaster implements MasterCaller {
  constructor(readonly app: Hono, readonly m: MasterService) {}

  get current(): string {
    return this.m.url;
  }

  async call<S extends z.ZodType>(
    pathAndQuery: string,
    schema: S,
    options: FetchJsonOptions = {},
  ): Promise<z.infer<S>> {
    const res = await this.app.request(pathAndQuery, {
      // The gateway route already checked the user's role; its RPCs are
      // the master's own.
      ...jsonRequestInit({ token: this.m.cfg.peerToken, ...options }),
      signal: options.signal,
    });
    return await parseResponse(res, schema, `${this.m.url}${pathAndQuery}`);
  }
}

/** The file gateway: files by path (PUT/GET/DELETE), undelete, ls, stat. */
export function gatewayRoutes(app: Hono, m: MasterService): void {
  // The gateway is a client of this master's own RPCs, called in process
  // (Hono's app.request: no socket, no HTTP between the two).
  const client = new GfsClient(
    m.url,
    { token: m.cfg.peerToken, httpClient: m.cfg.httpClient },
    new InProcessMaster(app, m),
  );

  app.put("/v1/files/*", need.write, async (c) => {
    const path = parsePath(percentDecode(rawPathRest(c, "/v1/files")));
    const q = readQuery(
      c,
      PutQuery,
    );
    const declared = c.req.header("content-length");
    if (declared !== undefined && Number(declared) > m.cfg.maxFileBytes) {
      throw new GfsError(
        "too_large",
        `upload of ${declared} bytes exceeds the limit of ${m.cfg.maxFileBytes}`,
      );
    }
    const body = requestBody(c) ??
      new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    const r = await client.upload(path, body, {
      replication: q.replication,
      maxBytes: m.cfg.maxFileBytes,
    });
    m.stats.uploads++;
    m.stats.uploadBytes += r.length;
    return c.json({ path, length: r.length, chunks: r.chunks }, 201);
  });

  app.get("/v1/files/*", need.read, async (c) => {
    const path = parsePath(percentDecode(rawPathRest(c, "/v1/files")));
    const located = m.core.locate(path);
    const length = m.core.fileLength(located.file);
    const range = parseRange(c.req.header("range"), length);
    const d = await client.download(path, range ?? undefined);
    m.stats.downloads++;
    m.stats.downloadBytes += d.length;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(d.length),
      "accept-ranges": "bytes",
    };
    if (range) {
      headers["content-range"] = `bytes ${range.offset}-${
        range.offset + range.length - 1
      }/${length}`;
    }
    if (range && range.length === 0) {
      headers["content-range"] = `bytes */${length}`;
    }
    return new Response(d.stream, { status: range ? 206 : 200, headers });
  });

  app.delete("/v1/files/*", need.write, async (c) => {
    const path = parsePath(percentDecode(rawPathRest(c, "/v1/files")));
    const r = await m.locks.with(
      PathLocks.forPath(path, "write"),
      () => m.propose({ t: "delete", path, now: Date.now() }),
    );
    return c.json({ ok: true, trashPath: r.t === "delete" ? r.trashPath : "" });
  });

  app.post("/v1/undelete", need.write, async (c) => {
    const b = await readJson(
      c,
      UndeleteBody,
    );
    const t = parsePath(b.trashPath);
    const orig = parseTrashPath(t);
    if (orig === null) {
      throw new GfsError("bad_request", `${t} is not a trash path`);
    }
    const r = await m.locks.with([
      ...PathLocks.forPath(t, "write"),
      ...PathLocks.forPath(orig.original, "write"),
    ], () => m.propose({ t: "undelete", trashPath: t, now: Date.now() }));
    return c.json({ ok: true, path: r.t === "undelete" ? r.path : "" });
  });

  app.get("/v1/ls", need.read, (c) => {
    const q = readQuery(
      c,
      LsQuery,
    );
    const prefix = parsePrefix(q.prefix);
    return c.json({
      files: m.store.state.namespace.list(prefix).map(({ path, file }) =>
        m.info(path, file)
      ),
    });
  });

  /** The file `stat` answers for `path`, if any. */
  const statable = (path: string) => {
    const f = path.startsWith("/.trash/")
      ? m.store.state.namespace.get(path)
      : m.store.state.visibleFile(path);
    return f === undefined || f.state !== "complete" ? undefined : f;
  };

  app.get("/v1/stat/*", need.read, (c) => {
    const path = parsePath(percentDecode(rawPathRest(c, "/v1/stat")));
    const f = statable(path);
    if (f === undefined) throw new GfsError("not_found", `${path} not found`);
    return c.json(m.info(path, f));
  });

  // Several stats in one read (a commit log's checks after each append:
  // its seal and one fencing claim per tablet): one request, and an
  // absent file is an answer, not an error.
  app.post("/v1/exists", need.read, async (c) => {
    const b = await readJson(c, ExistsBody);
    const paths = b.paths.map(parsePath);
    return c.json({ exists: paths.map((p) => statable(p) !== undefined) });
  });
}
