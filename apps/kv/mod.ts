/**
 * @module
 * strata's replicated key-value service: a plain ordered map with
 * revisions, transactions, sessions and locks (kv_state_machine.ts), made
 * replicated by packages/raft, served over HTTP (http_api.ts), with a
 * TypeScript client; clients may also follow a key prefix as learners
 * (`KvClient.follow`, a local replica fed by any member's learner port).
 *
 * @example
 * ```ts
 * import { KvClient, readKvToken } from "@strata/kv";
 *
 * // The token `deno task kv` generated in ./data/kv (or STRATA_TOKEN).
 * const kv = new KvClient(["127.0.0.1:2380", "127.0.0.1:2381", "127.0.0.1:2382"], {
 *   token: await readKvToken(),
 * });
 * const revision = await kv.put("greeting", "hello");
 * console.log(revision, new TextDecoder().decode((await kv.get("greeting"))!.value));
 * ```
 */
export {
  KvClient,
  KvClientError,
  type KvClientOptions,
  type KvEntry,
  KvSession,
  type KvWatchEvent,
  readKvToken,
} from "./client.ts";
export {
  type Compare,
  type KvCommand,
  KvCommandMessage,
  kvCommandSchema,
  type TxnOp,
} from "./kv_commands.ts";
export {
  type KeyValue,
  type KvResult,
  KvStateMachine,
  LOCK_PREFIX,
  type Session,
  type WatchEvent,
} from "./kv_state_machine.ts";
export {
  type Consistency,
  type KvService,
  type MemberChange,
  type MemberInfo,
  ServiceError,
  type ServiceErrorCode,
  type ServiceStatus,
} from "./kv_service.ts";
export {
  createHttpApi,
  DEFAULT_LIMITS,
  type HttpAccess,
  type HttpLimits,
} from "./http_api.ts";
export { WatchError, WatchHub } from "./watch_hub.ts";
export {
  Follower,
  type FollowOptions,
  type ReplicaEntry,
  type ReplicaUpdate,
} from "./follower.ts";
export { FollowedReplica } from "./followed_replica.ts";
export {
  FollowGroup,
  GroupReplica,
  type GroupSubscription,
} from "./follow_group.ts";
export {
  LearnerServer,
  type LearnerServerOptions,
  type LearnerServerStats,
} from "./learner_server.ts";
export { Changes, learnerMessages } from "./learner_messages.ts";
