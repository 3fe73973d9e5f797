/**
 * The production {@link PeerTransport}: transport's TCP RPC between
 * replicas, with the schema-fingerprint handshake (optional HMAC secret,
 * optional TLS), differential encoding and reconnect with backoff. A
 * message to a peer that is not connected right now is dropped, not
 * queued: raft retries.
 */
import { type Message, raftMessageSet, raftMessageTypes } from "@strata/raft";
import {
  listenTcp,
  ReconnectingClient,
  type TcpServer,
  type TransportError,
} from "@strata/transport";
import type { PeerTransport } from "./replica_ports.ts";
import type { ReplicationMetrics } from "./replication_metrics.ts";

/** Options of a {@link TcpPeerTransport}. */
export interface TcpPeerTransportOptions {
  /** Host and port to bind. */
  listen: { hostname: string; port: number };
  /** Shared secret (HMAC in the handshake). */
  secret?: string;
  /** TLS both ways (see `ReplicatedNodeConfig.tls`). */
  tls?: { cert: string; key: string; caCerts: string[] };
  /** Counts bytes sent and saved by differential encoding. */
  metrics: ReplicationMetrics;
  /** Name used in log lines. */
  name: string;
}

const typeByName = new Map(
  raftMessageTypes.map((t) => [t.name.slice("raft.".length), t]),
);

/** Raft messages over TCP. */
export class TcpPeerTransport implements PeerTransport {
  readonly #o: TcpPeerTransportOptions;
  #server: TcpServer<typeof raftMessageTypes> | undefined;
  readonly #peers = new Map<
    string,
    ReconnectingClient<typeof raftMessageTypes>
  >();
  /** When each kind of refusal (TLS, secret) of each remote host was last logged (ms, monotonic). */
  readonly #refusalLogged = new Map<string, number>();
  /** Peers whose refusal of our secret was logged (until they accept us). */
  readonly #authRefusedBy = new Set<string>();
  #closed = false;

  /** @param options where to listen, credentials, metrics. */
  constructor(options: TcpPeerTransportOptions) {
    this.#o = options;
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  async listen(deliver: (m: Message) => void): Promise<void> {
    const o = this.#o;
    // A refused peer redials every second: one line per host per 30 s.
    const logRefusal = (peer: string, why: TransportError) => {
      if (this.#closed) return;
      const key = `${why.code} ${peer.slice(0, peer.lastIndexOf(":"))}`;
      const now = performance.now();
      if (now - (this.#refusalLogged.get(key) ?? -Infinity) < 30_000) {
        return;
      }
      this.#refusalLogged.set(key, now);
      const hint = why.code === "auth_failed"
        ? "check that every node has the same peer secret"
        : "every node needs TLS with a certificate its peers trust";
      console.error(
        `${o.name}: refused a raft peer connection from ${peer}: ${why.message} (${hint})`,
      );
    };
    this.#server = listenTcp({
      set: raftMessageSet,
      hostname: o.listen.hostname,
      port: o.listen.port,
      secret: o.secret,
      tls: o.tls ? { cert: o.tls.cert, key: o.tls.key } : undefined,
      onRefused: (peer, why) => logRefusal(peer, why),
      // A peer with the wrong secret is cut off in the handshake, before
      // any message; say so (naming the address only), rate-limited like
      // TLS refusals since the peer keeps redialing.
      onConnection: (conn) => {
        conn.closed.then((why) => {
          if (why.code === "tls_failed" || why.code === "auth_failed") {
            logRefusal(conn.peer, why);
          }
        });
      },
      handlers: {
        onMessage: (env) => {
          if (!this.#closed) deliver(env.message as Message);
        },
        onError: () => {},
      },
    });
    await Promise.resolve();
  }

  send(m: Message, address: string): boolean {
    let client = this.#peers.get(address);
    if (!client) {
      const [hostname, port] = splitHostPort(address);
      const o = this.#o;
      client = new ReconnectingClient({ hostname, port }, {
        set: raftMessageSet,
        secret: o.secret,
        tls: o.tls ? { caCerts: o.tls.caCerts } : undefined,
        backoff: { initialMs: 50, maxMs: 1000 },
        onDisconnect: (why) => {
          // Once per peer until it accepts us again, not on every retry.
          const tls = why.code === "tls_failed";
          if (!tls && why.code !== "auth_failed") return;
          if (this.#authRefusedBy.has(address) || this.#closed) return;
          this.#authRefusedBy.add(address);
          console.error(
            tls
              ? `${o.name}: raft peer ${m.to} (${address}): ${why.message} (every node needs TLS with a certificate its peers trust)`
              : `${o.name}: raft peer ${m.to} (${address}) refused this node: ${why.message} (check that every node has the same peer secret)`,
          );
        },
        onConnect: () => this.#authRefusedBy.delete(address),
        onFrameSent: (kind, wire, whole) => {
          const type = kind.slice("raft.".length);
          o.metrics.bytesSent.inc({ type }, wire);
          if (whole > wire) {
            o.metrics.bytesSaved.inc({ type }, whole - wire);
          }
        },
      });
      this.#peers.set(address, client);
    }
    const conn = client.current;
    // Raft tolerates loss: while a peer is unreachable its messages are dropped, not queued.
    if (!conn) return false;
    const type = typeByName.get(m.type)!;
    // deno-lint-ignore no-explicit-any
    conn.send(type, m as any).catch(() => {});
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#peers.values()) await p.close().catch(() => {});
    await this.#server?.close().catch(() => {});
  }
}

/** Splits "host:port" (the last colon separates the port). */
export function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}
