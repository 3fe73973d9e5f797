/**
 * @module
 * strata's transport: framed TCP RPC between nodes (handshake with schema
 * fingerprint and optional HMAC authentication, correlation ids, timeouts,
 * cancellation, backpressure, reconnect), a stateful differential message
 * encoding, multi-packet compression for fan-out with a {@link Relay}, and
 * an in-memory network with injectable faults for deterministic simulation.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineMessage, defineMessageSet } from "@strata/codec";
 * import { connectTcp, listenTcp } from "@strata/transport";
 *
 * const Ping = defineMessage("Ping", z.object({ seq: z.number().int() }));
 * const set = defineMessageSet([Ping]);
 * type Set = readonly [typeof Ping];
 *
 * const server = listenTcp<Set>({
 *   set,
 *   handlers: { onRequest: (req) => req }, // echo
 * });
 * const client = await connectTcp<Set>({ port: server.port }, { set });
 * console.log(await client.call(Ping, { seq: 1 })); // { type: "Ping", message: { seq: 1 } }
 * await client.close();
 * await server.close();
 * ```
 */
export {
  isTransportError,
  TransportError,
  type TransportErrorCode,
} from "./transport_error.ts";
export type { CallOptions, Handlers, Transport } from "./transport.ts";
export type { AnyMessageType, Envelope, MessageOf } from "./message_kinds.ts";
export {
  type CancelTimer,
  type RandomSource,
  realTimers,
  type Scheduler,
  schedulerTimers,
  type Timers,
} from "./scheduler.ts";
export {
  CONTROL_TYPE,
  FRAME_FLAGS,
  PROTOCOL_VERSION,
} from "./control_frames.ts";
export {
  Handshake,
  type HandshakeOptions,
  type HandshakeStep,
  type Role,
  type Secret,
} from "./handshake.ts";
export { type PreparedFrame, prepareFrame } from "./prepared_frame.ts";
export {
  type Link,
  RpcSession,
  type SessionOptions,
  type SessionParts,
} from "./rpc_session.ts";
export { TcpLink, type TcpLinkOptions } from "./tcp_link.ts";
export {
  connectTcp,
  listenTcp,
  type TcpAddress,
  type TcpClientOptions,
  type TcpClientTls,
  type TcpConnection,
  type TcpOptions,
  TcpServer,
  type TcpServerOptions,
  type TcpServerTls,
} from "./tcp_transport.ts";
export { backoffDelay, type BackoffPolicy } from "./backoff.ts";
export { connectWithin } from "./connect_within.ts";
export {
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./reconnecting_client.ts";
export {
  DifferentialDecoder,
  DifferentialEncoder,
  type DifferentialOptions,
  type EncodedBody,
} from "./differential_codec.ts";
export { wireEqual } from "./wire_equality.ts";
export {
  bitmapBytes,
  countBits,
  hasBit,
  onlyFirstBits,
  setBit,
} from "./presence_bitmap.ts";
export {
  MAX_PACKED_PACKETS,
  MAX_UNPACKED_BYTES,
  pack,
  PACK_VERSION,
  packedCount,
  packedSizeBound,
  unpack,
  unpackOne,
} from "./multi_packet.ts";
export { type Deliver, packForRelay, Relay, RelayBatch } from "./relay.ts";
export {
  type LinkFaults,
  MemoryNetwork,
  type MemoryNetworkOptions,
  MemoryNode,
  type NetworkStats,
} from "./memory_network.ts";
