/**
 * @module
 * The one HTTP and process edge every strata app uses: the JSON error
 * envelope, zod-validated bodies/queries/paths, body limits and content
 * types, per-request deadlines, access control (bearer tokens with roles,
 * `Host` checks, cross-origin refusal), secrets generated in the data dir,
 * optional TLS, a schema-checked client for calling other nodes, flag
 * parsing with `--help`, the ready line, signals and child processes.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { z } from "zod";
 * import {
 *   edgeGuard, installErrorHandlers, printReadyLine, readJson,
 *   requireRole, resolveAccess, serveHttp,
 * } from "@strata/edge";
 *
 * const access = await resolveAccess({ listenHost: "127.0.0.1", secretsDir: "./data/demo" });
 * const app = new Hono();
 * app.use("*", edgeGuard(access));
 * app.get("/v1/hello", (c) => c.json({ hello: "world" })); // needs read
 * app.post("/v1/echo", requireRole("write"), async (c) =>
 *   c.json(await readJson(c, z.object({ say: z.string() }))));
 * installErrorHandlers(app, { name: "demo" });
 * const l = await serveHttp({ hostname: "127.0.0.1", port: 0, handler: app.fetch });
 * printReadyLine({ http: l.address });
 * await l.server.shutdown();
 * ```
 */
export { CachedRouter } from "./cached_router.ts";
export {
  Http1Client,
  type Http1ClientOptions,
  type Http1Request,
  type Http1Response,
} from "./http1_client.ts";
export {
  codeForStatus,
  EdgeError,
  type EdgeErrorCode,
  ERROR_STATUS,
  type ErrorBody,
  isEdgeError,
} from "./edge_error.ts";
export {
  type ErrorHandlerOptions,
  errorResponse,
  installErrorHandlers,
} from "./error_handler.ts";
export {
  checkUrlEncoding,
  DEFAULT_MAX_BODY_BYTES,
  isJsonContentType,
  NDJSON_CONTENT_TYPES,
  parseWith,
  percentDecode,
  percentDecodeBytes,
  queryParams,
  rawPathRest,
  readBytes,
  readJson,
  type ReadJsonOptions,
  readNdjson,
  type ReadNdjsonOptions,
  readParams,
  readQuery,
  strictUrlEncoding,
} from "./request_input.ts";
export {
  deadlineError,
  DEFAULT_REQUEST_TIMEOUT_MS,
  requestDeadline,
  withDeadline,
} from "./request_deadline.ts";
export { type Role, roleAllows, ROLES } from "./roles.ts";
export {
  callerRole,
  edgeGuard,
  type EdgeGuardOptions,
  hostName,
  requirePeer,
  requireRole,
  TokenAuth,
} from "./access_guard.ts";
export {
  type ClusterSecrets,
  loadOrCreateSecrets,
  peerSecretFile,
  randomSecret,
  readSecretFile,
  readToken,
  tokenFile,
  type TokenSources,
} from "./auth_secrets.ts";
export {
  type Access,
  type AccessOptions,
  allowedHosts,
  EdgeConfigError,
  isLoopback,
  isWildcard,
  LOOPBACK_NAMES,
  resolveAccess,
} from "./access_config.ts";
export {
  authHeaders,
  callJson,
  type CallOptions,
  errorFromBody,
  isUnreachable,
  tlsClient,
} from "./json_client.ts";
export {
  EDGE_AUTH_FLAGS,
  EDGE_FLAGS,
  EDGE_FLAGS_USAGE,
  type FlagsResult,
  hostFlag,
  hostPortFlag,
  parseFlags,
  parseFlagsAndPositionalsOrExit,
  parseFlagsOrExit,
  tlsFiles,
} from "./flags.ts";
export { printReadyLine, type ReadyFields, readyLine } from "./ready_line.ts";
export { failedToConnect, onceBody } from "./fetch_failure.ts";
export { onShutdown } from "./shutdown_signals.ts";
export {
  type HttpListener,
  serveHttp,
  type ServeOptions,
} from "./http_server.ts";
export {
  freePort,
  ProcessError,
  type ProcessErrorCode,
  type ReadyProcess,
  type SpawnOptions,
  spawnUntilReady,
  stopChild,
} from "@strata/process";
export { selfSignedCert } from "./self_signed_cert.ts";
export {
  nodeHttpClient,
  type NodeTls,
  nodeTls,
  tlsServeOptions,
} from "./node_tls.ts";
