/**
 * `room_home.ts`: what a room's home keeps, in memory only: per room the
 * set of servers with subscribers (a {@link ServerBits} over small server
 * numbers this home hands out) and the room's message counter; the set of
 * servers with pattern subscriptions (they get every publish); and, per
 * `strata.rooms` tablet this server serves, whether every live server has
 * re-announced its rooms since the tablet came here (publishes wait for
 * that, so a moved or restarted home does not sequence a message before
 * it knows who listens). Pure: no I/O, the caller passes the clock.
 */
import {
  addServer,
  hasServer,
  NO_SERVERS,
  noServers,
  removeServer,
  type ServerBits,
  serversOf,
  unionServers,
} from "./server_bits.ts";

/** One room at its home. */
interface HomeRoom {
  /** Numbers this room's state: a room dropped and made again starts a new epoch. */
  epoch: number;
  /** Messages numbered so far. */
  seq: number;
  servers: ServerBits;
}

/** The rooms of one `strata.rooms` tablet while it is open here. */
export class TabletRooms {
  readonly rooms = new Map<string, HomeRoom>();
  /** Server incarnations (`id:session`) that must re-announce before publishes. */
  readonly waitingFor: Set<string>;

  /** @param needed the live servers when the tablet was found open here; @param since when. */
  constructor(needed: Iterable<string>, readonly since: number) {
    this.waitingFor = new Set(needed);
  }

  /** Whether publishes may be numbered: everyone re-announced, or the wait timed out. */
  ready(now: number, timeoutMs: number): boolean {
    return this.waitingFor.size === 0 || now - this.since >= timeoutMs;
  }
}

/** Where a publish goes. */
export interface Sequenced {
  epoch: number;
  seq: number;
  /** Server numbers to send it to (room subscribers ∪ pattern subscribers). */
  to: number[];
}

/** A home's state over every `strata.rooms` tablet it serves. */
export class RoomHome {
  #numbers = new Map<string, number>();
  #names: string[] = [];
  /** Server id → the kv session its announcements came from, and when first seen. */
  #incarnations = new Map<string, { session: number; at: number }>();
  #patterns: ServerBits = NO_SERVERS;
  #tablets = new Map<object, TabletRooms>();
  #nextEpoch = Math.floor(Math.random() * 2 ** 40);

  /** The small number of server `id` (handed out on first sight, kept for the process's life). */
  number(id: string): number {
    let n = this.#numbers.get(id);
    if (n === undefined) {
      n = this.#names.length;
      this.#names.push(id);
      this.#numbers.set(id, n);
    }
    return n;
  }

  /** The server id of number `n`. */
  name(n: number): string {
    return this.#names[n]!;
  }

  /**
   * Takes an announcement from `id` at kv session `session`: a new
   * session means the server restarted or re-registered, so what its
   * earlier session announced is dropped first.
   */
  admit(id: string, session: number, now: number): number {
    const n = this.number(id);
    const known = this.#incarnations.get(id);
    if (known?.session !== session) {
      if (known) this.drop(id);
      this.#incarnations.set(id, { session, at: now });
    }
    return n;
  }

  /**
   * Drops servers whose session is no longer the live one: `live` maps
   * server id → session as read from kv at `readAt`. Incarnations first
   * seen after that read are kept (the read may predate them).
   */
  reconcile(live: ReadonlyMap<string, number>, readAt: number): string[] {
    const dropped: string[] = [];
    for (const [id, inc] of this.#incarnations) {
      if (live.get(id) !== inc.session && inc.at < readAt) {
        this.drop(id);
        this.#incarnations.delete(id);
        dropped.push(id);
      }
    }
    return dropped;
  }

  /** Removes server `id` from every room and from the pattern set. */
  drop(id: string): void {
    const n = this.#numbers.get(id);
    if (n === undefined) return;
    this.#patterns = removeServer(this.#patterns, n);
    for (const t of this.#tablets.values()) {
      for (const [name, r] of t.rooms) {
        if (!hasServer(r.servers, n)) continue;
        r.servers = removeServer(r.servers, n);
        if (noServers(r.servers)) t.rooms.delete(name);
      }
    }
  }

  /** The state of an open tablet (`key`: its open-tablet object), made on first use. */
  tablet(
    key: object,
    needed: () => Iterable<string>,
    now: number,
  ): TabletRooms {
    let t = this.#tablets.get(key);
    if (!t) {
      t = new TabletRooms(needed(), now);
      this.#tablets.set(key, t);
    }
    return t;
  }

  /** Forgets tablets no longer open here (`open`: the open-tablet objects). */
  prune(open: ReadonlySet<object>): void {
    for (const k of this.#tablets.keys()) {
      if (!open.has(k)) this.#tablets.delete(k);
    }
  }

  /** Server `n` has subscribers in `room`: answers where its messages start. */
  join(
    t: TabletRooms,
    room: string,
    n: number,
  ): { epoch: number; seq: number } {
    let r = t.rooms.get(room);
    if (!r) {
      r = { epoch: this.#nextEpoch++, seq: 0, servers: NO_SERVERS };
      t.rooms.set(room, r);
    }
    r.servers = addServer(r.servers, n);
    return { epoch: r.epoch, seq: r.seq };
  }

  /** Server `n` has no subscriber left in `room`. */
  leave(t: TabletRooms, room: string, n: number): void {
    const r = t.rooms.get(room);
    if (!r) return;
    r.servers = removeServer(r.servers, n);
    if (noServers(r.servers)) t.rooms.delete(room);
  }

  /** Server `n` has (or no longer has) pattern subscriptions. */
  patterns(n: number, on: boolean): void {
    this.#patterns = on
      ? addServer(this.#patterns, n)
      : removeServer(this.#patterns, n);
  }

  /** Numbers a message of `room` and says which servers it goes to. */
  publish(t: TabletRooms, room: string): Sequenced {
    const r = t.rooms.get(room);
    if (!r) return { epoch: 0, seq: 0, to: serversOf(this.#patterns) };
    r.seq++;
    return {
      epoch: r.epoch,
      seq: r.seq,
      to: serversOf(unionServers(r.servers, this.#patterns)),
    };
  }

  /** Rooms held here (over every tablet). */
  get rooms(): number {
    let n = 0;
    for (const t of this.#tablets.values()) n += t.rooms.size;
    return n;
  }

  /** Tablets with state here. */
  get tablets(): number {
    return this.#tablets.size;
  }
}
