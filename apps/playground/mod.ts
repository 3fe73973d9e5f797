/**
 * The strata playground: every cluster on loopback (raft-kv, GFS, search),
 * a live dashboard over them, simulation replay and the benchmark report.
 * `deno task start` runs {@link ./main.ts}; this module is for embedding the
 * pieces (tests start a playground, or serve the dashboard over a fake
 * backend).
 *
 * @example
 * ```ts
 * import { randomSecret } from "@strata/edge";
 * import {
 *   createDashboardApp,
 *   createSimApi,
 *   LiveBackend,
 *   startPlayground,
 * } from "@strata/playground";
 *
 * const pg = await startPlayground({ dataDir: "./data/playground", indexLimit: 500 });
 * const backend = new LiveBackend(pg);
 * await backend.start();
 * // A fresh token per run; the served page holds it for its actions.
 * const app = createDashboardApp({ backend, sim: createSimApi(), pageToken: randomSecret() });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, app.fetch);
 * // … later
 * await server.shutdown();
 * await backend.close();
 * await pg.stop();
 * ```
 *
 * @module
 */
export {
  type Playground,
  type PlaygroundGfs,
  type PlaygroundGfsProcess,
  type PlaygroundOptions,
  type PlaygroundRaft,
  type PlaygroundRaftNode,
  type PlaygroundSearch,
  type PlaygroundTables,
  type PlaygroundTablesProcess,
  startPlayground,
} from "./playground.ts";
export {
  createDashboardApp,
  type DashboardApp,
  type DashboardOptions,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
} from "./dashboard_server.ts";
export { LiveBackend, type LiveBackendOptions } from "./live_backend.ts";
export type {
  PlaygroundBackend,
  RowWriteResult,
  SearchResult,
  ShardTiming,
  SimApi,
  TablesKind,
  UploadResult,
  WriteResult,
} from "./playground_backend.ts";
export type {
  ChunkserverView,
  ClusterSnapshot,
  GfsFileView,
  GfsMasterRole,
  GfsMasterView,
  GfsView,
  ProcessState,
  RaftNodeView,
  RaftTraffic,
  RaftView,
  SearchReplicaView,
  SearchView,
} from "./cluster_snapshot.ts";
export {
  type AppliedOn,
  KeyFlow,
  type KeyFlowView,
  type KeyObservation,
  type KeyWrite,
} from "./key_flow.ts";
export {
  keyText,
  locateRow,
  RowFollow,
  type RowFollowView,
  serverViews,
  type TablesMasterInput,
  type TablesServerInput,
  type TablesServerView,
  type TablesView,
  tabletChanges,
  type TabletEvent,
  type TabletView,
  tabletViews,
  type TabletWire,
} from "./tables_view.ts";
export { createSimApi } from "./sim_api.ts";
export {
  isPlaygroundError,
  PlaygroundError,
  type PlaygroundErrorCode,
} from "./playground_error.ts";
export {
  findTakenPort,
  type FixedPort,
  fixedPorts,
  parseStartFlags,
  START_USAGE,
  type StartFlags,
  type StartFlagsResult,
} from "./start_flags.ts";
