/**
 * `rooms_service.ts`: the pub/sub rooms of one tablet server, behind
 * {@link PubSubPort} (what the SSE routes and a RESP listener use).
 *
 * As a subscriber's server: the first local subscriber of a room makes
 * this server `join` the room at its home (the server serving the room's
 * key in `strata.rooms`), the last one leaving sends `leave`; messages come back
 * numbered and are released to local subscribers in order
 * ({@link RoomOrder}). Whenever the directory says a home changed (a
 * `strata.rooms` tablet moved, a server restarted), every room is joined again
 * at its new home, then the tablet is `sync`ed: the new home numbers no
 * publish until every live server has synced (or a timeout).
 *
 * As a home: it keeps the rooms of the `strata.rooms` tablets it serves
 * ({@link RoomHome}), numbers each publish and sends it once to each
 * server with subscribers, and once to each server with pattern
 * subscriptions (those get every publish of every room: pattern interest
 * is announced to every server, not per room).
 */
import type {
  ChannelListener,
  PatternListener,
  PubSubPort,
} from "../shared/pubsub_port.ts";
import type { OpenTablet } from "../server/tablet_host.ts";
import { homeKey, roomNameSchema, ROOMS_TABLE } from "./room_key.ts";
import { RoomHome, type TabletRooms } from "./room_home.ts";
import { type OrderStats, RoomOrder } from "./room_order.ts";
import { redisGlob } from "../shared/redis_glob.ts";
import { LinkError, PeerLink } from "./peer_link.ts";
import type { RoomsDirectory, ServerEntry } from "./rooms_directory.ts";
import { b64, fromB64 } from "../shared/wire.ts";
import {
  type BatchItem,
  type ItemResult,
  MAX_MESSAGE_BYTES,
} from "./rooms_wire.ts";

/** What the rooms need from their tablet server. */
export interface RoomsOptions {
  /** This server's id. */
  id: string;
  /** This server's URL (known once it listens). */
  url(): string;
  /** The server's open tablets (the `strata.rooms` ones make it a home). */
  host: {
    list(): OpenTablet[];
    find(table: string, key: Uint8Array): OpenTablet | undefined;
  };
  /** Whether the server's kv lease is valid (a home serves only then). */
  serving(): boolean;
  /** The server's current kv session (undefined while registering). */
  session(): number | undefined;
  directory: RoomsDirectory;
  /** The cluster's peer secret (internal calls). */
  peerToken?: string;
  /** The fetch client for calls to other servers (trusts the cell's TLS certificate). */
  httpClient?: Deno.HttpClient;
  log(line: string): void;
  /** How long a home waits for every server's sync before numbering anyway, ms (default 10 000). */
  syncTimeoutMs?: number;
  /** How long a gap in a room's numbers may hold later messages, ms (default 3000). */
  gapTimeoutMs?: number;
  /** How long publish tries to reach a room's home, ms (default 20 000). */
  publishTimeoutMs?: number;
}

/** Why a publish or subscribe was refused. */
export class RoomsError extends Error {
  /** `bad_request` (bad room or message), `unavailable` (no home now, or outcome unknown). */
  readonly code: "bad_request" | "too_large" | "unavailable";
  /** @param code why; @param message what happened. */
  constructor(code: RoomsError["code"], message: string) {
    super(message);
    this.name = "RoomsError";
    this.code = code;
  }
}

/** An unsubscribe function that also says when the subscription took effect. */
export type Subscription = (() => void) & {
  /** Resolves once the room's home counts this server in (messages published from then on arrive). */
  ready: Promise<void>;
};

interface LocalRoom {
  /** Its key in `strata.rooms`. */
  key: Uint8Array;
  listeners: Set<ChannelListener>;
  order: RoomOrder<Uint8Array>;
  /** `home@session/mine` of the join the home answered. */
  joinedAt?: string;
  /** The join on its way. */
  joining?: string;
  /** Until the first join is answered (then dropped: memory per room). */
  ready?: PromiseWithResolvers<void>;
}

interface PatternSub {
  match: (s: string) => boolean;
  listeners: Set<PatternListener>;
}

/** Counters shown by `GET /v1/rooms`. */
export interface RoomsCounters extends OrderStats {
  published: number;
  /** Messages this server received from homes. */
  received: number;
  /** Listener calls. */
  delivered: number;
}

const notServing = (why: string): ItemResult => ({
  error: { code: "not_serving", message: why },
});
const linkKind = (item: BatchItem) =>
  item.op === "deliver" || item.op === "pub" ? item.op : "ask";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The tick's period while something waits, ms. */
const TICK_MS = 250;
/** The tick's period with nothing waiting (only the prune of closed tablets), ms. */
const IDLE_TICK_MS = 5000;

/** The rooms of one server (see the module comment). */
export class RoomsPubSub implements PubSubPort {
  readonly counters: RoomsCounters = {
    published: 0,
    received: 0,
    delivered: 0,
    stale: 0,
    skipped: 0,
  };
  #home = new RoomHome();
  #local = new Map<string, LocalRoom>();
  #patterns = new Map<string, PatternSub>();
  /** Server id → `id@session/mine` our pattern interest was acknowledged at. */
  #patternsAt = new Map<string, string>();
  /** `strata.rooms` tablet id → `home@session/mine` it was synced at. */
  #syncedAt = new Map<string, string>();
  #links = new Map<string, PeerLink>();
  /** Rooms with messages held behind a gap. */
  #blocked = new Set<string>();
  /** Our items to ourselves, one chain per link kind (see #link). */
  #selfChains = new Map<string, Promise<unknown>>();
  /** Something to (re)send: a join, a sync, a pattern announcement. */
  #dirtyFlag = true;
  get #dirty(): boolean {
    return this.#dirtyFlag;
  }
  set #dirty(v: boolean) {
    this.#dirtyFlag = v;
    if (v) this.#wake();
  }
  /** The directory changed: every room's home may have. */
  #rejoinAll = true;
  /** Rooms not joined at their current home (on the way, failed, no home). */
  #unjoined = new Set<string>();
  /** The tick's timer, armed only when it has work (see #wake). */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerDue = Infinity;
  #closing = new AbortController();
  /** Aborted when the server stops (its event streams end). */
  readonly closing: AbortSignal = this.#closing.signal;

  /** @param o the server's id, host, lease, session, directory and secret. */
  constructor(private readonly o: RoomsOptions) {
    o.directory.onChange(() => this.#directoryChanged());
    this.#wake();
  }

  /**
   * Runs the tick within `ms`: 250 ms while something waits (a join or
   * sync to send, messages held behind a gap), else only every 5 s for the
   * prune. A 250 ms interval woke every idle tablet server four times a
   * second to find nothing to do.
   */
  #wake(ms = TICK_MS): void {
    if (this.#closing.signal.aborted) return;
    const due = performance.now() + ms;
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#tick();
    }, ms);
  }

  /** Stops the timers and fails what is queued. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closing.abort();
    for (const l of this.#links.values()) l.close("this server is stopping");
  }

  // ---------------------------------------------------------------- PubSubPort

  /**
   * Publishes through the room's home; resolves, once the home numbered it,
   * to the number of subscribers (every server's) that got it within 1 s.
   * @throws RoomsError `bad_request`/`too_large`, or `unavailable` when no
   * home took it within `publishTimeoutMs` or its outcome is unknown.
   */
  async publish(channel: string, message: Uint8Array): Promise<number> {
    return (await this.publishAt(channel, message)).delivered;
  }

  /**
   * {@link publish}, with the message's number in its room and the number
   * of servers the home sent it to.
   */
  async publishAt(
    channel: string,
    message: Uint8Array,
  ): Promise<{ seq: number; servers: number; delivered: number }> {
    this.#checkRoom(channel);
    if (message.length > MAX_MESSAGE_BYTES) {
      throw new RoomsError(
        "too_large",
        `a message is at most ${MAX_MESSAGE_BYTES} bytes`,
      );
    }
    this.o.directory.want();
    const deadline = performance.now() + (this.o.publishTimeoutMs ?? 20_000);
    const item: BatchItem = {
      op: "pub",
      room: channel,
      data: b64(message),
    };
    let why = "no home known for this room yet";
    while (performance.now() < deadline) {
      const home = this.o.directory.homeOf(channel);
      if (home) {
        try {
          const r = await this.#send(home, item);
          if ("ok" in r) {
            this.counters.published++;
            return {
              seq: r.seq ?? 0,
              servers: r.servers ?? 0,
              delivered: r.delivered ?? 0,
            };
          }
          why = r.error.message;
        } catch (e) {
          if (!(e instanceof LinkError) || !e.notSent) {
            throw new RoomsError(
              "unavailable",
              `the publish's outcome is unknown: ${
                e instanceof Error ? e.message : e
              }`,
            );
          }
          why = e.message;
        }
      }
      await sleep(100);
    }
    throw new RoomsError("unavailable", `not published: ${why}`);
  }

  /** Subscribes to a room; the result unsubscribes and has `ready`. */
  subscribe(channel: string, listener: ChannelListener): Subscription {
    this.#checkRoom(channel);
    this.o.directory.want();
    let r = this.#local.get(channel);
    if (!r) {
      r = {
        key: homeKey(channel),
        listeners: new Set(),
        order: new RoomOrder(this.counters),
        ready: Promise.withResolvers<void>(),
      };
      this.#local.set(channel, r);
      this.#join(channel, r);
    }
    const room = r;
    room.listeners.add(listener);
    const off = () => {
      room.listeners.delete(listener);
      if (room.listeners.size > 0 || this.#local.get(channel) !== room) return;
      this.#local.delete(channel);
      this.#blocked.delete(channel);
      this.#unjoined.delete(channel);
      room.ready?.resolve();
      const home = this.o.directory.homeOf(channel);
      if (home && room.joinedAt) {
        this.#send(home, { op: "leave", room: channel }).catch(() => {});
      }
    };
    return Object.assign(off, {
      ready: room.ready?.promise ?? Promise.resolve(),
    });
  }

  /** Subscribes to every room matching a Redis glob (see the module comment). */
  psubscribe(pattern: string, listener: PatternListener): Subscription {
    this.o.directory.want();
    let p = this.#patterns.get(pattern);
    if (!p) {
      p = { match: redisGlob(pattern), listeners: new Set() };
      this.#patterns.set(pattern, p);
    }
    const sub = p;
    sub.listeners.add(listener);
    const first = this.#patterns.size === 1 && sub.listeners.size === 1;
    if (first) this.#dirty = true;
    const ready = this.#patternsReady();
    const off = () => {
      sub.listeners.delete(listener);
      if (sub.listeners.size > 0 || this.#patterns.get(pattern) !== sub) return;
      this.#patterns.delete(pattern);
      if (this.#patterns.size === 0) this.#dirty = true;
    };
    return Object.assign(off, { ready });
  }

  // ------------------------------------------------------------ subscriber side

  #checkRoom(room: string): void {
    const r = roomNameSchema.safeParse(room);
    if (!r.success) {
      throw new RoomsError(
        "bad_request",
        `room: ${r.error.issues[0]?.message}`,
      );
    }
  }

  #mine(): number | undefined {
    return this.o.session();
  }

  /** Joins `room` at its current home unless already joined there. */
  #join(room: string, r: LocalRoom): void {
    const home = this.o.directory.homeAt(r.key);
    const mine = this.#mine();
    const key = home && `${home.id}@${home.session}/${mine}`;
    if (key !== undefined && r.joinedAt === key) {
      this.#unjoined.delete(room);
      return;
    }
    this.#unjoined.add(room);
    if (!home || mine === undefined) {
      this.#dirty = true;
      return;
    }
    if (r.joining === key) return;
    if (r.joinedAt !== undefined) r.order.restart();
    r.joinedAt = undefined;
    r.joining = key;
    this.#send(home, { op: "join", room }).then((res) => {
      if (this.#local.get(room) !== r || r.joining !== key) return;
      r.joining = undefined;
      if (!("ok" in res)) {
        this.#dirty = true;
        return;
      }
      r.joinedAt = key;
      this.#unjoined.delete(room);
      if (!this.#allSynced()) this.#dirty = true; // a tablet may be complete now
      this.#emit(room, r.order.start(res.epoch!, res.seq!, performance.now()));
      r.ready?.resolve();
      r.ready = undefined;
    }, () => {
      if (r.joining === key) r.joining = undefined;
      this.#dirty = true;
    });
  }

  /** A home's numbered message for our subscribers. */
  #deliver(room: string, epoch: number, seq: number, data: Uint8Array): number {
    this.counters.received++;
    const r = this.#local.get(room);
    if (!r) return this.#emit(room, [data]);
    const out = r.order.accept({ epoch, seq, value: data }, performance.now());
    if (r.order.held > 0) {
      this.#blocked.add(room);
      this.#wake();
    }
    return this.#emit(room, out);
  }

  /** Hands messages to the room's and the matching patterns' listeners. */
  #emit(room: string, messages: Uint8Array[]): number {
    if (messages.length === 0) return 0;
    const r = this.#local.get(room);
    const patterns = [...this.#patterns].filter(([, p]) => p.match(room));
    let n = 0;
    for (const m of messages) {
      for (const l of r?.listeners ?? []) {
        n++;
        try {
          l(room, m);
        } catch (e) {
          this.o.log(`rooms: a listener of ${room} threw: ${e}`);
        }
      }
      for (const [pattern, p] of patterns) {
        for (const l of p.listeners) {
          n++;
          try {
            l(pattern, room, m);
          } catch (e) {
            this.o.log(`rooms: a listener of ${pattern} threw: ${e}`);
          }
        }
      }
    }
    this.counters.delivered += n;
    return n;
  }

  #patternsReady(): Promise<void> {
    return (async () => {
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline && this.#patterns.size > 0) {
        const mine = this.#mine();
        const servers = [...this.o.directory.servers.values()];
        if (
          mine !== undefined && servers.length > 0 &&
          servers.every((s) =>
            this.#patternsAt.get(s.id) === `${s.id}@${s.session}/${mine}`
          )
        ) return;
        await sleep(50);
      }
    })();
  }

  /** Brings every join, sync and pattern announcement up to the directory. */
  #reconcile(): void {
    this.#dirty = false;
    const mine = this.#mine();
    if (mine === undefined) {
      this.#dirty = true;
      return;
    }
    // A tablet is synced once every local room in it is joined at its
    // home (a sync overtaking a join would let the home number too soon).
    const rooms = this.#rejoinAll ? [...this.#local.keys()] : [
      ...this.#unjoined,
    ];
    this.#rejoinAll = false;
    for (const room of rooms) {
      const r = this.#local.get(room);
      if (r) this.#join(room, r);
      else this.#unjoined.delete(room);
    }
    const unjoined = new Set<string>();
    for (const room of this.#unjoined) {
      const t = this.o.directory.tabletOf(this.#local.get(room)!.key);
      if (t) unjoined.add(t.id);
    }
    for (const t of this.o.directory.tablets) {
      const home = t.server
        ? this.o.directory.servers.get(t.server)
        : undefined;
      if (!home || unjoined.has(t.id)) continue;
      const key = `${home.id}@${home.session}/${mine}`;
      if (this.#syncedAt.get(t.id) === key) continue;
      this.#syncedAt.set(t.id, key);
      this.#send(home, { op: "sync", tablet: t.id }).then((res) => {
        if (!("ok" in res)) this.#retrySync(t.id, key);
      }, () => this.#retrySync(t.id, key));
    }
    const on = this.#patterns.size > 0;
    for (const s of this.o.directory.servers.values()) {
      const key = `${s.id}@${s.session}/${mine}`;
      const at = this.#patternsAt.get(s.id);
      if (on ? at === key : at === undefined) continue;
      if (!on) this.#patternsAt.delete(s.id);
      else this.#patternsAt.set(s.id, key);
      this.#send(s, { op: "patterns", on }).then((res) => {
        if (!("ok" in res)) this.#retryPatterns(s.id, key, on);
      }, () => this.#retryPatterns(s.id, key, on));
    }
  }

  #allSynced(): boolean {
    const d = this.o.directory;
    const mine = this.#mine();
    return d.tablets.every((t) => {
      const home = t.server ? d.servers.get(t.server) : undefined;
      return !home ||
        this.#syncedAt.get(t.id) === `${home.id}@${home.session}/${mine}`;
    });
  }

  #retrySync(tablet: string, key: string): void {
    if (this.#syncedAt.get(tablet) === key) this.#syncedAt.delete(tablet);
    this.#dirty = true;
  }

  /**
   * An announcement whose outcome is unknown (the server may have applied
   * it): marked unknown, so the next pass says whichever is true then,
   * on or off (forgetting it instead would leave a pattern bit at a home
   * for good when the patterns were dropped before the retry).
   */
  #retryPatterns(id: string, key: string, on: boolean): void {
    const at = this.#patternsAt.get(id);
    if (on ? at === key : at === undefined) this.#patternsAt.set(id, "?");
    this.#dirty = true;
  }

  #directoryChanged(): void {
    const d = this.o.directory;
    // Links to servers that are gone or restarted fail their items (the
    // callers re-route); a home forgets what they announced.
    for (const [name, l] of this.#links) {
      if (
        d.servers.get(l.id)?.session !== l.session && l.createdAt < d.readAt
      ) {
        l.close("no longer registered with this session");
        this.#links.delete(name);
      }
    }
    const live = new Map([...d.servers.values()].map((s) => [s.id, s.session]));
    for (const id of this.#home.reconcile(live, d.readAt)) {
      this.o.log(`rooms: server ${id} is gone: its subscriptions are dropped`);
    }
    this.#rejoinAll = true;
    this.#dirty = true;
  }

  #tick(): void {
    const now = performance.now();
    for (const room of this.#blocked) {
      const r = this.#local.get(room);
      if (r) this.#emit(room, r.order.expire(now, this.o.gapTimeoutMs ?? 3000));
      if (!r || r.order.held === 0) this.#blocked.delete(room);
    }
    this.#home.prune(new Set(this.o.host.list()));
    if (this.#dirty) this.#reconcile();
    this.#wake(this.#blocked.size > 0 ? TICK_MS : IDLE_TICK_MS);
  }

  // ------------------------------------------------------------------- links

  /**
   * The link to server `s` for `item`. Three per server, so that nothing
   * waits behind what waits for it: deliveries (never wait), publishes
   * (wait for their fan-out, and at a new home for every server's sync)
   * and announcements (join, leave, sync, patterns: what a new home waits
   * for). A room's publishes from one server share a link: they keep
   * their order.
   */
  #link(
    s: { id: string; session: number; url: string },
    item: BatchItem,
  ): PeerLink {
    const name = `${s.id}/${linkKind(item)}`;
    let l = this.#links.get(name);
    if (!l || l.session !== s.session || l.url !== s.url) {
      l?.close("restarted");
      l = new PeerLink(s.id, s.session, s.url, this.o.peerToken, () => {
        const session = this.#mine();
        return session === undefined
          ? undefined
          : { from: this.o.id, session, url: this.o.url() };
      }, this.o.httpClient);
      this.#links.set(name, l);
    }
    return l;
  }

  /** Sends to a server: over its link, or straight to ourselves (in order). */
  #send(to: ServerEntry, item: BatchItem): Promise<ItemResult> {
    if (to.id !== this.o.id) return this.#link(to, item).send(item);
    const mine = this.#mine();
    if (mine === undefined) {
      return Promise.reject(new LinkError("not registered", true));
    }
    // In order with our earlier items, but without waiting for the
    // deliveries of an earlier publish (the result is boxed: not awaited).
    const kind = linkKind(item);
    const chain = this.#selfChains.get(kind) ?? Promise.resolve();
    const p = chain.then(async () => {
      if (item.op === "pub") await this.#ready(item.room);
      return { r: this.#handleNow(this.o.id, mine, this.o.url(), item) };
    });
    this.#selfChains.set(kind, p.catch(() => {}));
    return p.then((x) => x.r);
  }

  // -------------------------------------------------------------- home side

  /**
   * Answers another server's batch, item by item in order: each publish
   * is numbered before the next item is looked at; the answers wait for
   * the deliveries together.
   */
  async handleBatch(
    from: string,
    session: number,
    url: string,
    items: BatchItem[],
  ): Promise<ItemResult[]> {
    // A home that had never followed kv starts now, and knows the live
    // servers before it decides whose sync a tablet waits for.
    this.o.directory.start();
    await this.o.directory.firstRead;
    const results: (ItemResult | Promise<ItemResult>)[] = [];
    for (const item of items) {
      if (item.op === "pub") await this.#ready(item.room);
      results.push(this.#handleNow(from, session, url, item));
    }
    return await Promise.all(results);
  }

  /** Waits until the room's tablet here may number publishes. */
  async #ready(room: string): Promise<void> {
    const timeout = this.o.syncTimeoutMs ?? 10_000;
    for (;;) {
      const t = this.o.host.find(ROOMS_TABLE, homeKey(room));
      if (!t) return; // #handleNow answers not_serving
      const now = performance.now();
      const rooms = this.#tabletRooms(t, now);
      if (rooms.ready(now, timeout)) {
        if (rooms.waitingFor.size > 0) {
          this.o.log(
            `rooms: ${t.record.id}: numbering without the sync of ${
              [...rooms.waitingFor].join(", ")
            } (waited ${timeout} ms)`,
          );
          rooms.waitingFor.clear();
        }
        return;
      }
      await sleep(20);
    }
  }

  #handleNow(
    from: string,
    session: number,
    url: string,
    item: BatchItem,
  ): ItemResult | Promise<ItemResult> {
    const now = performance.now();
    switch (item.op) {
      case "deliver":
        return {
          ok: true,
          delivered: this.#deliver(
            item.room,
            item.epoch,
            item.seq,
            fromB64(item.data),
          ),
        };
      case "patterns":
        this.#home.patterns(this.#admit(from, session, url, now), item.on);
        return { ok: true };
      case "sync": {
        const t = this.o.host.list().find((x) =>
          x.record.table === ROOMS_TABLE && x.record.id === item.tablet
        );
        if (!t || !this.o.serving()) {
          return notServing(`${this.o.id} does not serve ${item.tablet}`);
        }
        this.#admit(from, session, url, now);
        this.#tabletRooms(t, now).waitingFor.delete(`${from}@${session}`);
        return { ok: true };
      }
    }
    const t = this.o.host.find(ROOMS_TABLE, homeKey(item.room));
    if (!t || !this.o.serving()) {
      return notServing(`${this.o.id} is not the home of this room`);
    }
    const n = this.#admit(from, session, url, now);
    const rooms = this.#tabletRooms(t, now);
    switch (item.op) {
      case "join":
        return { ok: true, ...this.#home.join(rooms, item.room, n) };
      case "leave":
        this.#home.leave(rooms, item.room, n);
        return { ok: true };
      case "pub":
        return this.#fanOut(rooms, item.room, item.data);
    }
  }

  /** Numbers a publish and sends it once to each interested server. */
  async #fanOut(
    rooms: TabletRooms,
    room: string,
    data: string,
  ): Promise<ItemResult> {
    const s = this.#home.publish(rooms, room);
    let delivered = 0;
    const acks: Promise<number>[] = [];
    for (const target of s.to) {
      const to = this.#targets.get(this.#home.name(target));
      if (!to) continue;
      if (to.id === this.o.id) {
        delivered += this.#deliver(room, s.epoch, s.seq, fromB64(data));
        acks.push(Promise.resolve(0));
        continue;
      }
      const item: BatchItem = {
        op: "deliver",
        room,
        epoch: s.epoch,
        seq: s.seq,
        data,
      };
      acks.push(
        this.#link(to, item).send(item).then(
          (r) => "ok" in r ? r.delivered ?? 0 : 0,
          () => 0,
        ),
      );
    }
    // Count what arrived within 1 s; a slow or dead server does not hold
    // the publisher longer (its delivery still goes on).
    await Promise.race([
      Promise.all(acks.map((a) => a.then((k) => delivered += k))),
      sleep(1000),
    ]);
    return { ok: true, seq: s.seq, servers: acks.length, delivered };
  }

  /** Where each announcing server's incarnation is reached. */
  #targets = new Map<string, ServerEntry>();

  #admit(from: string, session: number, url: string, now: number): number {
    this.#targets.set(from, { id: from, session, url });
    return this.#home.admit(from, session, now);
  }

  #tabletRooms(t: OpenTablet, now: number) {
    return this.#home.tablet(
      t,
      () =>
        [...this.o.directory.servers.values()].map((s) =>
          `${s.id}@${s.session}`
        ),
      now,
    );
  }

  /** Counts for `GET /v1/rooms`. */
  stats(): Record<string, number> {
    let subscriptions = 0;
    for (const r of this.#local.values()) subscriptions += r.listeners.size;
    return {
      localRooms: this.#local.size,
      subscriptions,
      patterns: this.#patterns.size,
      homeRooms: this.#home.rooms,
      homeTablets: this.#home.tablets,
      ...this.counters,
    };
  }
}
