/**
 * The production {@link PeerTransport}: transport's TCP RPC between
 * replicas, with the schema-fingerprint handshake (optional HMAC secret,
 * optional TLS), differential encoding and reconnect with backoff. A
 * message to a peer that is not connected right now is dropped, not
 * queued: raft retries.
 *
 * With a `site`, it also relays: the messages of one Ready (handed to
 * `send`, then `flush`) are routed together by a {@link SiteRouter}; the
 * appends bound for a remote site's followers leave as one
 * `RelayBatch` (packed with transport's multi-packet compression) to that
 * site's relay member, whose transport unpacks it and sends each append
 * on to its follower (or hands its own to raft). Replies go straight back.
 * The raft core never knows: it sees the same messages either way.
 */
import { type Message, type MessageOf, raftMessageTypes } from "@strata/raft";
import type { MessageType } from "@strata/codec";
import type { z } from "zod";
import {
  listenTcp,
  packForRelay,
  ReconnectingClient,
  Relay,
  RelayBatch,
  type TcpServer,
  type TransportError,
} from "@strata/transport";
import type { PeerTransport } from "./replica_ports.ts";
import type { ReplicationMetrics } from "./replication_metrics.ts";
import {
  peerMessageSet,
  type peerMessageTypes,
  PeerSite,
} from "./peer_messages.ts";
import {
  type Outgoing,
  SiteRouter,
  type SiteRouteStatus,
} from "./site_router.ts";

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
  /** This node's id (announced with its site). */
  id?: number;
  /** This node's raft address as peers dial it: announced to them. */
  advertise?: string;
  /** This node's site label: announced to peers; enables relaying. */
  site?: string;
  /**
   * Relay appends to remote sites (default true when `site` is set), and
   * the relay timeouts (see {@link SiteRouter}).
   */
  relay?: { enabled?: boolean; timeoutMs?: number; directMs?: number };
}

/** What {@link TcpPeerTransport.siteStatus} reports. */
export interface SiteStatus {
  /** This node's site. */
  site: string;
  /** Whether this node relays appends to remote sites when it leads. */
  relaying: boolean;
  /** Remote sites, their known members and current relay. */
  remote: SiteRouteStatus[];
  /** Appends this node forwarded as a relay. */
  forwarded: number;
  /** Followers sent to directly after a relayed append timed out. */
  fallbacks: number;
}

type PeerTypes = typeof peerMessageTypes;

const typeByName = new Map(
  raftMessageTypes.map((t) => [t.name.slice("raft.".length), t]),
);
/** Relayed packets are appends in the codec's CBOR (no frame: the batch has one). */
const AppMessage = typeByName.get("app")! as MessageType<
  string,
  z.ZodType<MessageOf<"app">>
>;

/** Raft messages over TCP. */
export class TcpPeerTransport implements PeerTransport {
  readonly #o: TcpPeerTransportOptions;
  #server: TcpServer<PeerTypes> | undefined;
  readonly #peers = new Map<string, ReconnectingClient<PeerTypes>>();
  readonly #router: SiteRouter | undefined;
  readonly #relaying: boolean;
  readonly #relay: Relay;
  /** Messages of this event-loop turn, routed together (sites only). */
  #batch: Outgoing[] = [];
  /** The member id last sent to at each address (for counting cross-site bytes). */
  readonly #ids = new Map<string, number>();
  #deliver: (m: Message) => void = () => {};
  #addressOf: (id: number) => string | undefined = () => undefined;
  #announced: (id: number, address: string) => void = () => {};
  /** When each kind of refusal (TLS, secret) of each remote host was last logged (ms, monotonic). */
  readonly #refusalLogged = new Map<string, number>();
  /** Peers whose refusal of our secret was logged (until they accept us). */
  readonly #authRefusedBy = new Set<string>();
  #closed = false;

  /** @param options where to listen, credentials, metrics. */
  constructor(options: TcpPeerTransportOptions) {
    // The label travels in PeerSite, whose schema allows 1-64 characters.
    const n = options.site?.length;
    if (n !== undefined && (n < 1 || n > 64)) {
      throw new RangeError(
        `site label must be 1-64 characters, got ${n}`,
      );
    }
    this.#o = options;
    this.#router = options.site !== undefined
      ? new SiteRouter({
        site: options.site,
        timeoutMs: options.relay?.timeoutMs,
        directMs: options.relay?.directMs,
      })
      : undefined;
    this.#relaying = this.#router !== undefined &&
      options.relay?.enabled !== false;
    // A relay's own append goes to its raft; the others on to their
    // follower, which must be a member this node knows. A packet that is
    // not a valid append for its receiver is dropped (raft retries).
    this.#relay = new Relay((to, packet) => {
      const m = AppMessage.decode(packet);
      const address = m.to === this.#o.id ? undefined : this.#addressOf(m.to);
      if (String(m.to) !== to || (m.to !== this.#o.id && !address)) {
        throw new Error(`cannot pass an append on to ${to}`);
      }
      if (address) this.#sendNow(m, address);
      else this.#deliver(m);
      this.#o.metrics.relayForwarded.inc();
    });
  }

  /** This node's site, its remote sites and their relays (undefined without a site). */
  siteStatus(): SiteStatus | undefined {
    const r = this.#router;
    return r && {
      site: r.site,
      relaying: this.#relaying,
      remote: r.status(),
      forwarded: this.#relay.forwarded,
      fallbacks: r.fallbacks,
    };
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  async listen(
    deliver: (m: Message) => void,
    addressOf: (id: number) => string | undefined = () => undefined,
    announced: (id: number, address: string) => void = () => {},
  ): Promise<void> {
    const o = this.#o;
    this.#deliver = deliver;
    this.#addressOf = addressOf;
    this.#announced = announced;
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
      set: peerMessageSet,
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
          if (this.#closed) return;
          if (env.type === "replication.peerSite") {
            const p = env.message as {
              id: number;
              site?: string;
              peer?: string;
            };
            if (p.site !== undefined) this.#router?.learnSite(p.id, p.site);
            if (p.peer !== undefined) this.#announced(p.id, p.peer);
          } else if (env.type === "RelayBatch") {
            this.#forward(env.message as RelayBatch);
          } else {
            const m = env.message as Message;
            this.#router?.received(m, performance.now());
            deliver(m);
          }
        },
        onError: () => {},
      },
    });
    await Promise.resolve();
  }

  send(m: Message, address: string): boolean {
    if (!this.#relaying) return this.#sendNow(m, address);
    this.#ids.set(address, m.to);
    // Route a Ready's messages together (the node calls flush after
    // handing them over; the microtask covers a caller that does not).
    if (this.#batch.length === 0) queueMicrotask(() => this.flush());
    this.#batch.push({ m, address });
    return this.#client(address).current !== undefined;
  }

  /** Routes and sends the messages queued since the last flush. */
  flush(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    if (this.#closed) return;
    const router = this.#router!;
    const before = router.fallbacks;
    const routes = router.route(batch, performance.now());
    this.#o.metrics.relayFallbacks.inc(router.fallbacks - before);
    for (const o of routes.direct) this.#sendNow(o.m, o.address);
    for (const g of routes.relayed) {
      const conn = this.#client(g.relay).current;
      if (!conn) {
        // Not connected to the relay: these go direct this time.
        for (const o of g.items) this.#sendNow(o.m, o.address);
        continue;
      }
      // Receivers by id: the relay looks their addresses up itself.
      const batch = packForRelay(g.items.map((o) => ({
        to: String(o.m.to),
        packet: AppMessage.encode(o.m as MessageOf<"app">),
      })));
      conn.send(RelayBatch, batch).catch(() => {});
      this.#o.metrics.relayBatches.inc();
    }
  }

  /** Unpacks a relayed batch and sends each append on (a bad blob is dropped: raft retries). */
  #forward(batch: RelayBatch): void {
    this.#relay.forward(batch).catch(() => {});
  }

  #client(address: string): ReconnectingClient<PeerTypes> {
    let client = this.#peers.get(address);
    if (!client) {
      const [hostname, port] = splitHostPort(address);
      const o = this.#o;
      client = new ReconnectingClient({ hostname, port }, {
        set: peerMessageSet,
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
              ? `${o.name}: raft peer ${address}: ${why.message} (every node needs TLS with a certificate its peers trust)`
              : `${o.name}: raft peer ${address} refused this node: ${why.message} (check that every node has the same peer secret)`,
          );
        },
        onConnect: (conn) => {
          this.#authRefusedBy.delete(address);
          // First on the connection, so the peer knows this node's site
          // and address before its replies: a leader learns its followers'
          // sites so, and a replica that missed the change adding this
          // node learns where to answer it.
          if (
            o.id !== undefined &&
            (o.site !== undefined || o.advertise !== undefined)
          ) {
            conn.send(PeerSite, {
              id: o.id,
              ...(o.site !== undefined ? { site: o.site } : {}),
              ...(o.advertise !== undefined ? { peer: o.advertise } : {}),
            }).catch(() => {});
          }
        },
        onFrameSent: (kind, wire, whole) => {
          const type = kind.startsWith("raft.")
            ? kind.slice("raft.".length)
            : kind;
          o.metrics.bytesSent.inc({ type }, wire);
          const id = this.#ids.get(address);
          if (id !== undefined && this.#router?.crossesSites(id)) {
            o.metrics.crossSiteBytes.inc({ type }, wire);
          }
          if (whole > wire) {
            o.metrics.bytesSaved.inc({ type }, whole - wire);
          }
        },
      });
      this.#peers.set(address, client);
    }
    return client;
  }

  #sendNow(m: Message, address: string): boolean {
    this.#ids.set(address, m.to);
    const conn = this.#client(address).current;
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
