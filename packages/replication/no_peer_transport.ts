import type { Message } from "@strata/raft";
import type { PeerTransport } from "./replica_ports.ts";

/**
 * The transport of a one-member group started without a raft port
 * (`ReplicatedNodeConfig.listen` left out): it binds nothing and has no
 * one to send to. A sole voter commits an entry once it is durable on its
 * own disk, so raft never needs it; `ReplicatedNode` refuses to add a
 * member while it runs on this transport.
 */
export const noPeerTransport: PeerTransport = {
  listen: () => Promise.resolve(),
  send: (_m: Message, _address: string) => false,
  port: 0,
  close: () => Promise.resolve(),
};
