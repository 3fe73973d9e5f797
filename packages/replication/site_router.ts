/**
 * Which appends a leader relays: a pure policy (no sockets, no timers; the
 * caller passes the monotonic time), kept beside the transport rather
 * than in the raft core, which knows nothing of sites. The transport asks
 * it, once per batch of outgoing messages, which go straight to their
 * follower and which travel to a remote site packed into one message for
 * that site's relay member.
 *
 * A relay is chosen per remote site among the followers that answered an
 * append recently, and kept while it stays healthy. Each relayed append
 * starts a clock for its follower (if none runs); any append response
 * from that follower stops it. A follower whose clock passes `timeoutMs`
 * is sent to directly for `directMs`. When that follower is the relay,
 * the relay alone is blamed: the site gets another relay at the next
 * batch (or none: everything direct), and its other followers' clocks
 * restart. So a slow or dead relay costs at most `timeoutMs` plus one
 * heartbeat before its site's appends go another way.
 */
import type { Message } from "@strata/raft";

/** Options of a {@link SiteRouter}. */
export interface SiteRouterOptions {
  /** This node's site. */
  site: string;
  /** A relayed append unanswered this long (ms) sends its follower direct (default 500). */
  timeoutMs?: number;
  /** How long (ms) a follower that timed out is sent to directly (default 5,000). */
  directMs?: number;
}

/** One outgoing message and the raft address it is bound for. */
export interface Outgoing {
  m: Message;
  address: string;
}

/** What to do with a batch of outgoing messages. */
export interface Routes {
  /** Send each to its address. */
  direct: Outgoing[];
  /** Send each group as one packed message to `relay` (its own message included). */
  relayed: { site: string; relay: Outgoing["address"]; items: Outgoing[] }[];
}

/** What {@link SiteRouter.status} shows of one remote site. */
export interface SiteRouteStatus {
  site: string;
  /** Members of that site this node has heard from. */
  members: number[];
  /** The member relaying this node's appends to it (absent: all direct). */
  relay?: number;
}

interface Peer {
  site?: string;
  address?: string;
  /** When this follower last answered an append (monotonic ms). */
  lastAppResp: number;
  /** When the oldest unanswered relayed append to it was sent. */
  pendingSince?: number;
  /** Sent to directly until this time. */
  directUntil: number;
}

/** The relay policy of one node (only a leader's decisions matter). */
export class SiteRouter {
  readonly site: string;
  readonly #timeoutMs: number;
  readonly #directMs: number;
  readonly #peers = new Map<number, Peer>();
  readonly #relays = new Map<string, number>();
  #fallbacks = 0;

  /** @param o this node's site and the timeouts. */
  constructor(o: SiteRouterOptions) {
    this.site = o.site;
    this.#timeoutMs = o.timeoutMs ?? 500;
    this.#directMs = o.directMs ?? 5_000;
  }

  /** Followers that timed out on a relayed append so far. */
  get fallbacks(): number {
    return this.#fallbacks;
  }

  #peer(id: number): Peer {
    let p = this.#peers.get(id);
    if (!p) {
      p = { lastAppResp: -Infinity, directUntil: -Infinity };
      this.#peers.set(id, p);
    }
    return p;
  }

  /** Records the site a peer announced. */
  learnSite(id: number, site: string): void {
    this.#peer(id).site = site;
  }

  /** The site of a peer, when it announced one. */
  siteOf(id: number): string | undefined {
    return this.#peers.get(id)?.site;
  }

  /** True when a message to `id` crosses to another site (as far as known). */
  crossesSites(id: number): boolean {
    const s = this.#peers.get(id)?.site;
    return s !== undefined && s !== this.site;
  }

  /** Notes a message received (an append response stops its sender's clock). */
  received(m: Message, now: number): void {
    if (m.type !== "appResp") return;
    const p = this.#peer(m.from);
    p.lastAppResp = now;
    p.pendingSince = undefined;
  }

  /** True when `id` may carry or receive relayed appends at `now`. */
  #healthy(id: number, now: number): boolean {
    const p = this.#peers.get(id);
    if (!p || p.address === undefined) return false;
    if (now < p.directUntil) return false;
    if (now - p.lastAppResp > this.#directMs) return false;
    return p.pendingSince === undefined ||
      now - p.pendingSince <= this.#timeoutMs;
  }

  /**
   * Starts direct sends to followers whose relayed appends went
   * unanswered. A silent relay is blamed alone: the other followers of its
   * site get a fresh start through the next relay instead.
   */
  #expire(now: number): void {
    const late = (p: Peer) =>
      p.pendingSince !== undefined && now - p.pendingSince > this.#timeoutMs;
    for (const [site, relay] of this.#relays) {
      const r = this.#peers.get(relay);
      if (!r || !late(r)) continue;
      this.#relays.delete(site);
      for (const p of this.#peers.values()) {
        if (p !== r && p.site === site) p.pendingSince = undefined;
      }
    }
    for (const p of this.#peers.values()) {
      if (late(p)) {
        p.pendingSince = undefined;
        p.directUntil = now + this.#directMs;
        this.#fallbacks++;
      }
    }
  }

  /** The relay of `site` at `now`, choosing a new one if needed. */
  #relayOf(site: string, now: number): number | undefined {
    const current = this.#relays.get(site);
    if (current !== undefined && this.#healthy(current, now)) return current;
    let best: number | undefined;
    for (const [id, p] of this.#peers) {
      if (p.site !== site || !this.#healthy(id, now)) continue;
      if (best === undefined || id < best) best = id;
    }
    if (best === undefined) this.#relays.delete(site);
    else this.#relays.set(site, best);
    return best;
  }

  /**
   * Splits a batch: appends to healthy followers of a remote site go
   * through the site's relay; the rest go direct. An append for one
   * follower alone is relayed too (no bytes saved) so that all of a
   * follower's appends take one path and arrive in order: an append sent
   * direct could overtake one still at the relay, and the follower would
   * reject it and make the leader resend. Only a batch holding nothing but
   * the relay's own append goes direct (the same connection either way).
   */
  route(batch: readonly Outgoing[], now: number): Routes {
    this.#expire(now);
    const direct: Outgoing[] = [];
    const bySite = new Map<string, Outgoing[]>();
    for (const o of batch) {
      const p = this.#peer(o.m.to);
      p.address = o.address;
      if (
        o.m.type !== "app" || p.site === undefined || p.site === this.site ||
        !this.#healthy(o.m.to, now)
      ) {
        direct.push(o);
        continue;
      }
      const list = bySite.get(p.site) ?? [];
      list.push(o);
      bySite.set(p.site, list);
    }
    const relayed: Routes["relayed"] = [];
    for (const [site, items] of bySite) {
      const relay = this.#relayOf(site, now);
      if (
        relay === undefined || (items.length === 1 && items[0]!.m.to === relay)
      ) {
        direct.push(...items);
        continue;
      }
      for (const o of items) {
        const p = this.#peer(o.m.to);
        p.pendingSince ??= now;
      }
      relayed.push({ site, relay: this.#peer(relay).address!, items });
    }
    return { direct, relayed };
  }

  /** The remote sites this node knows and their relays. */
  status(): SiteRouteStatus[] {
    const sites = new Map<string, number[]>();
    for (const [id, p] of this.#peers) {
      if (p.site === undefined || p.site === this.site) continue;
      sites.set(p.site, [...(sites.get(p.site) ?? []), id]);
    }
    return [...sites].sort(([a], [b]) => a < b ? -1 : 1).map((
      [site, members],
    ) => {
      const relay = this.#relays.get(site);
      return {
        site,
        members: members.sort((a, b) => a - b),
        ...(relay !== undefined ? { relay } : {}),
      };
    });
  }
}
