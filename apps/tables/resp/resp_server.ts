/**
 * `resp_server.ts`: the RESP2 listener of a tablet server (`--resp`), so
 * `redis-cli`, `redis-benchmark` and Redis client libraries talk to the
 * tables cell. Keys are rows of one memory table (default `redis`): the
 * value is the newest cell of the table's first family with an empty
 * qualifier, and a key's expiry is the row's deadline.
 *
 * A command on a key this server serves goes straight to the in-memory
 * tablet (one map lookup; no HTTP, no JSON). A key served elsewhere is
 * forwarded to its owner over a persistent, pipelined peer connection
 * (`STRATA.LOCAL <command>`, allowed only after `AUTH <peer secret>`); a
 * multi-key command (MGET, MSET, DEL, EXISTS) is split by key. A peer that
 * no longer holds the key answers `-STRATAMISS`, and the router reads the
 * tablet map again and retries.
 *
 * Auth: every command but AUTH, HELLO, PING and QUIT needs `AUTH <token>`
 * first (the tables tokens: read for reads, write or admin for writes), as
 * the HTTP side needs a bearer token; off only with `--insecure-no-auth`
 * on loopback. A protocol error is answered `-ERR Protocol error: …` and
 * the connection closed, as Redis does; an unknown command is an error
 * reply and the connection stays.
 */
import { type Role, roleAllows, TokenAuth } from "@strata/edge";
import type { OpenTablet, TabletHost } from "../server/tablet_host.ts";
import type { PubSubPort } from "../shared/pubsub_port.ts";
import { fromLatin1, latin1, MemoryTablet } from "../cache/memory_tablet.ts";
import {
  type RespLimits,
  RespProtocolError,
  RespRequestParser,
  type RespValue,
  RespWriter,
} from "./resp_codec.ts";
import { globMatch } from "../shared/redis_glob.ts";
import { PeerConnection } from "./peer_connection.ts";
import {
  EVICTION_POLICIES,
  type EvictionPolicy,
  Evictor,
  parseMemorySize,
} from "../cache/eviction.ts";
import type { TabletMap } from "./tablet_map.ts";

/** Options of {@link startRespServer}. */
export interface RespServerOptions {
  hostname: string;
  port: number;
  /** This server's id (the tablet map names servers by id). */
  serverId: string;
  /** The tokens, or "off" (`--insecure-no-auth`). */
  auth: TokenAuth | "off";
  /** The cell's peer secret (forwarded commands). */
  peerSecret?: string;
  host: TabletHost;
  /** Whether this server's kv session lease is valid now. */
  serving(): boolean;
  /** Where the cache table's tablets are. */
  map: TabletMap;
  pubsub: PubSubPort;
  limits?: Partial<RespLimits>;
  /**
   * Serve TLS with this certificate and key (PEM text): the tables'
   * `--tls-cert`/`--tls-key`, so `redis-cli --tls --cacert …` connects.
   */
  tls?: { cert: string; key: string };
  /** PEM roots the peer links trust; given: the links are TLS. */
  peerCaCerts?: string[];
  /**
   * The memory bound of this server's tablets of the table and its policy
   * (`--resp-maxmemory`; `CONFIG SET maxmemory` changes it); default none.
   */
  evictor?: Evictor;
  log(line: string): void;
}

/** A running listener. */
export interface RespServer {
  /** `host:port` bound. */
  address: string;
  /** Stops accepting, closes every connection and peer link. */
  close(): Promise<void>;
}

type Reply = RespValue;
const OK: Reply = { type: "simple", value: "OK" };
const NIL: Reply = { type: "bulk", value: null };
const int = (n: number): Reply => ({ type: "integer", value: n });
const bulk = (b: Uint8Array | null): Reply => ({ type: "bulk", value: b });
const err = (m: string): Reply => ({ type: "error", value: m });
const MISS = "STRATAMISS";
const OK_BYTES = new TextEncoder().encode("+OK\r\n");
/** The head of a forwarded GET (`*3`) or SET (`*4`) frame. */
const LOCAL3 = new TextEncoder().encode("*3\r\n$12\r\nSTRATA.LOCAL\r\n");
const LOCAL4 = new TextEncoder().encode("*4\r\n$12\r\nSTRATA.LOCAL\r\n");
const GET_NAME = new TextEncoder().encode("GET");
const SET_NAME = new TextEncoder().encode("SET");
const MISS_BYTES = new TextEncoder().encode("-STRATAMISS");
/** Whether a raw reply is `-STRATAMISS…`. */
const isMiss = (r: Uint8Array) => {
  if (r.length < MISS_BYTES.length) return false;
  for (let i = 0; i < MISS_BYTES.length; i++) {
    if (r[i] !== MISS_BYTES[i]) return false;
  }
  return true;
};
const NIL_BYTES = new TextEncoder().encode("$-1\r\n");
/** Encoded once: a string argument costs an encode (an allocation) per command. */
const STRATA_LOCAL = new TextEncoder().encode("STRATA.LOCAL");
const enc = new TextEncoder();
const dec = new TextDecoder();
const str = (b: Uint8Array) => dec.decode(b);
const wrongArgs = (name: string) =>
  err(`ERR wrong number of arguments for '${name.toLowerCase()}' command`);
const NOT_INT = "ERR value is not an integer or out of range";
const SYNTAX = "ERR syntax error";
/** Redis' limit for an integer argument (a 64-bit signed range we keep exact). */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Parses a base-10 integer argument; undefined when not one. */
function parseInt64(b: Uint8Array): number | undefined {
  if (b.length === 0 || b.length > 20) return undefined;
  let i = 0;
  let neg = false;
  if (b[0] === 45) {
    neg = true;
    i = 1;
    if (b.length === 1) return undefined;
  }
  if (b[i] === 48 && b.length > i + 1) return undefined; // leading zero
  let n = 0;
  for (; i < b.length; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  if (n > MAX_SAFE) return undefined;
  return neg ? -n : n;
}

/** Uppercase ASCII of a command name. */
function upper(b: Uint8Array): string {
  // The hot pair without building a string.
  if (b.length === 3 && (b[1]! | 0x20) === 101 && (b[2]! | 0x20) === 116) {
    const c = b[0]! | 0x20;
    if (c === 103) return "GET";
    if (c === 115) return "SET";
  }
  let s = "";
  for (let i = 0; i < b.length && i < 32; i++) {
    const c = b[i]!;
    s += String.fromCharCode(c >= 97 && c <= 122 ? c - 32 : c);
  }
  return s;
}

/** Per-connection state. */
interface Client {
  role: Role | "peer" | undefined;
  channels: Map<string, () => void>;
  patterns: Map<string, () => void>;
  send(bytes: Uint8Array): void;
  closing: boolean;
}

/** Which role a command needs. */
const WRITES = new Set([
  "SET",
  "DEL",
  "EXPIRE",
  "PEXPIRE",
  "PERSIST",
  "INCR",
  "INCRBY",
  "DECR",
  "DECRBY",
  "MSET",
  "PUBLISH",
  "UNLINK",
]);
/** How long SUBSCRIBE waits for the rooms to count this server in before answering anyway. */
const SUBSCRIBE_WAIT_MS = 10_000;

/** Writes refused with -OOM over maxmemory when nothing can be evicted (Redis' denyoom). */
const DENY_OOM = new Set(["SET", "INCR", "INCRBY", "DECR", "DECRBY"]);
const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

/** Commands allowed before AUTH. */
const OPEN = new Set(["AUTH", "HELLO", "PING", "QUIT"]);
/** Commands allowed while subscribed. */
const SUBSCRIBED_OK = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "PING",
  "QUIT",
  "RESET",
]);
/** Single-key commands that can run on the key's owner. */
const KEY_COMMANDS = new Set([
  "GET",
  "SET",
  "DEL",
  "UNLINK",
  "EXISTS",
  "EXPIRE",
  "PEXPIRE",
  "TTL",
  "PTTL",
  "PERSIST",
  "INCR",
  "INCRBY",
  "DECR",
  "DECRBY",
]);

/** Starts the listener. */
export function startRespServer(o: RespServerOptions): RespServer {
  const listener: Deno.Listener = o.tls
    ? Deno.listenTls({
      hostname: o.hostname,
      port: o.port,
      cert: o.tls.cert,
      key: o.tls.key,
    })
    : Deno.listen({ hostname: o.hostname, port: o.port });
  const addr = listener.addr as Deno.NetAddr;
  const address = `${addr.hostname}:${addr.port}`;
  const peerAuth = o.peerSecret !== undefined && o.auth !== "off"
    ? new TokenAuth({ admin: o.peerSecret })
    : undefined;
  const peers = new Map<string, PeerConnection>();
  const conns = new Set<Deno.Conn>();
  /** SCAN cursors: id → the key to resume at (bounded). */
  const cursors = new Map<number, Uint8Array>();
  let nextCursor = 1;
  let closed = false;

  /**
   * Whether the lease is valid, read once per batch of commands (and
   * before each retry): a batch runs in microseconds, the lease's margin
   * is a quarter of the session TTL.
   */
  let servingNow = false;
  const evictor = o.evictor ??
    new Evictor({ maxBytes: 0, policy: "noeviction" });
  /** This server's open memory tablets of the table (per batch, for maxmemory). */
  let memTablets: MemoryTablet[] | null = null;
  /** The table's open tablets here, in the host's order (per batch). */
  let tableTablets: OpenTablet[] | null = null;
  const checkServing = () => {
    servingNow = o.serving();
    memTablets = null;
    tableTablets = null;
  };

  /**
   * The open memory tablet serving the key `len` bytes of `b` at `off`
   * here (the same tablet as {@link localTablet} finds), or undefined when
   * the general path must decide (not serving, frozen, elsewhere, disk).
   */
  const tabletAt = (
    b: Uint8Array,
    off: number,
    len: number,
  ): MemoryTablet | undefined => {
    if (!servingNow) return undefined;
    const list = tableTablets ??= o.host.list().filter((t) =>
      t.record.table === o.map.table
    );
    for (let i = 0; i < list.length; i++) {
      const t = list[i]!;
      const m = t.tablet;
      if (!(m instanceof MemoryTablet)) return undefined;
      if (m.holdsAt(b, off, len)) {
        return t.frozen || m.closed ? undefined : m;
      }
    }
    return undefined;
  };
  const ownTablets = (): MemoryTablet[] =>
    memTablets ??= o.host.list().flatMap((t) =>
      t.record.table === o.map.table && t.tablet instanceof MemoryTablet &&
        !t.frozen && !t.tablet.closed
        ? [t.tablet]
        : []
    );

  /** The open memory tablet holding `key` here, or why not. */
  const localTablet = (
    key: Uint8Array,
  ): MemoryTablet | "frozen" | "disk" | undefined => {
    if (!servingNow) return undefined;
    const t = o.host.find(o.map.table, key);
    if (!t) return undefined;
    if (!(t.tablet instanceof MemoryTablet) || t.tablet.closed) {
      return t.tablet instanceof MemoryTablet ? undefined : "disk";
    }
    return t.frozen ? "frozen" : t.tablet;
  };

  /**
   * Runs a single-key command here; undefined when this server does not
   * serve the key now. `args[1]` is the key.
   */
  const runKey = (name: string, args: Uint8Array[]): Reply | undefined => {
    const key = args[1]!;
    if (key.length === 0) return err("ERR empty keys are not supported");
    if (key.length > 4096) return err("ERR key longer than 4096 bytes");
    const t = localTablet(key);
    if (t === undefined || t === "frozen") return undefined;
    if (t === "disk") {
      return err(
        `ERR table ${o.map.table} is not a memory table (create it with storage "memory" or "write-behind")`,
      );
    }
    if (
      evictor.maxBytes > 0 && DENY_OOM.has(name) &&
      !evictor.makeRoom(ownTablets())
    ) return err(OOM);
    const k = latin1(key);
    const now = Date.now();
    switch (name) {
      case "GET": {
        if (args.length !== 2) return wrongArgs(name);
        const v = t.getValue(k, now);
        return v === undefined ? NIL : bulk(v);
      }
      case "SET":
        return set(t, k, args, now);
      case "DEL":
      case "UNLINK":
        return int(t.deleteKey(k, now) ? 1 : 0);
      case "EXISTS":
        return int(t.hasKey(k, now) ? 1 : 0);
      case "EXPIRE":
      case "PEXPIRE": {
        if (args.length !== 3) return wrongArgs(name);
        const n = parseInt64(args[2]!);
        if (n === undefined) return err(NOT_INT);
        const ms = name === "EXPIRE" ? n * 1000 : n;
        if (!Number.isSafeInteger(now + ms)) {
          return err(
            `ERR invalid expire time in '${name.toLowerCase()}' command`,
          );
        }
        // A deadline at or before now deletes the key, as in Redis.
        return int(
          t.setDeadline(k, now + ms <= now ? now : now + ms, now) ? 1 : 0,
        );
      }
      case "PERSIST": {
        const d = t.deadlineOf(k, now);
        if (!d) return int(0);
        t.setDeadline(k, 0, now);
        return int(1);
      }
      case "TTL":
      case "PTTL": {
        if (args.length !== 2) return wrongArgs(name);
        const d = t.deadlineOf(k, now);
        if (d === undefined) return int(-2);
        if (d === 0) return int(-1);
        const ms = d - now;
        return int(name === "TTL" ? Math.round(ms / 1000) : ms);
      }
      case "INCR":
      case "DECR":
      case "INCRBY":
      case "DECRBY": {
        const by = name === "INCR" ? 1 : name === "DECR" ? -1 : (() => {
          const n = parseInt64(args[2]!);
          return n === undefined ? undefined : name === "DECRBY" ? -n : n;
        })();
        if (by === undefined) return err(NOT_INT);
        const cur = t.getValue(k, now);
        const n = cur === undefined ? 0 : parseInt64(cur);
        if (n === undefined) return err(NOT_INT);
        const next = n + by;
        if (!Number.isSafeInteger(next)) {
          return err("ERR increment or decrement would overflow");
        }
        t.setValue(
          k,
          enc.encode(String(next)),
          t.deadlineOf(k, now) ?? 0,
        );
        return int(next);
      }
    }
    return err(`ERR unknown command '${name.toLowerCase()}'`);
  };

  /** SET key value [NX|XX] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL] [GET]. */
  const set = (
    t: MemoryTablet,
    k: string,
    args: Uint8Array[],
    now: number,
  ): Reply => {
    if (args.length < 3) return wrongArgs("SET");
    let nx = false;
    let xx = false;
    let get = false;
    let keep = false;
    let deadline = 0;
    let expirySet = false;
    for (let i = 3; i < args.length; i++) {
      const opt = upper(args[i]!);
      if (opt === "NX" && !xx) nx = true;
      else if (opt === "XX" && !nx) xx = true;
      else if (opt === "GET") get = true;
      else if (opt === "KEEPTTL" && !expirySet) keep = true;
      else if (
        (opt === "EX" || opt === "PX" || opt === "EXAT" || opt === "PXAT") &&
        !expirySet && !keep && i + 1 < args.length
      ) {
        const n = parseInt64(args[++i]!);
        if (n === undefined) return err(NOT_INT);
        if (n <= 0) return err("ERR invalid expire time in 'set' command");
        deadline = opt === "EX"
          ? now + n * 1000
          : opt === "PX"
          ? now + n
          : opt === "EXAT"
          ? n * 1000
          : n;
        if (!Number.isSafeInteger(deadline)) {
          return err("ERR invalid expire time in 'set' command");
        }
        expirySet = true;
      } else return err(SYNTAX);
    }
    const old = get || nx || xx || keep ? t.getValue(k, now) : undefined;
    const exists = nx || xx || keep ? t.hasKey(k, now) : false;
    if ((nx && exists) || (xx && !exists)) return get ? bulk(old ?? null) : NIL;
    if (keep) deadline = t.deadlineOf(k, now) ?? 0;
    if (expirySet && deadline <= now) {
      t.deleteKey(k, now);
    } else if (get) t.setValue(k, args[2]!.slice(), deadline);
    else t.writeValue(k, args[2]!, deadline);
    return get ? bulk(old ?? null) : OK;
  };

  const peerFor = (address: string) => {
    let p = peers.get(address);
    if (!p) {
      p = new PeerConnection(
        address,
        peerAuth ? o.peerSecret : undefined,
        o.peerCaCerts,
      );
      peers.set(address, p);
    }
    return p;
  };

  /**
   * Runs a single-key command wherever its key is served: here, or on the
   * owner through the peer link; re-reads the map after a miss.
   */
  const routeKey = async (name: string, args: Uint8Array[]): Promise<Reply> => {
    const started = performance.now();
    for (let attempt = 0;; attempt++) {
      checkServing();
      const here = runKey(name, args);
      if (here) return here;
      if (attempt > 0 || !o.map.known) {
        // kv unreachable: keep trying until the deadline below.
        await o.map.refresh().catch(() => {});
      }
      const e = o.map.lookup(args[1]!);
      if (e && e.server && e.server !== o.serverId && e.resp) {
        let r: Reply;
        try {
          r = await peerFor(e.resp).call([STRATA_LOCAL, ...args]);
        } catch (x) {
          return err(
            `ERR forwarding to ${e.server} failed (${
              x instanceof Error ? x.message : x
            }); the command's outcome is unknown`,
          );
        }
        if (r.type !== "error" || !r.value.startsWith(MISS)) return r;
      } else if (!e && o.map.known === false && attempt > 2) {
        return err(
          `ERR no table ${o.map.table}: create it (deno task tables creates it; storage "memory")`,
        );
      }
      if (performance.now() - started > 10_000) {
        return err(
          "TRYAGAIN the key's tablet is moving or being split, or its server is down; try again",
        );
      }
      await new Promise((r) =>
        setTimeout(r, Math.min(20 * (attempt + 1), 200))
      );
    }
  };

  /**
   * Forwards a GET or SET frame that {@link RespRequestParser.fast} found
   * (a key this server does not serve) to the key's owner as it is, behind
   * `STRATA.LOCAL`, and resolves to the owner's reply bytes, unparsed;
   * undefined when the map names no other owner now (the general path
   * then waits and retries). A `-STRATAMISS` answer (the tablet moved)
   * goes the general way, which re-reads the map. The frame is a view into
   * the parser's buffer: the connection awaits every reply of a batch
   * before it reads again.
   */
  const forwardFrame = (
    kind: number,
    b: Uint8Array,
    p: RespRequestParser,
  ): Promise<Uint8Array> | undefined => {
    if (!o.map.known) return undefined;
    const key = b.subarray(p.fastKey, p.fastKey + p.fastKeyLength);
    const e = o.map.lookup(key);
    if (!e || !e.server || e.server === o.serverId || !e.resp) return undefined;
    const server = e.server;
    const value = kind === 2
      ? b.subarray(p.fastValue, p.fastValue + p.fastValueLength)
      : undefined;
    // After the frame's own "*2\r\n" or "*3\r\n".
    const body = b.subarray(p.fastStart + 4, p.fastEnd);
    const general = async () => {
      const args = value ? [SET_NAME, key, value] : [GET_NAME, key];
      return new RespWriter().value(
        await routeKey(value ? "SET" : "GET", args),
      ).take();
    };
    return peerFor(e.resp).callRaw(kind === 1 ? LOCAL3 : LOCAL4, body).then(
      (r) => isMiss(r) ? general() : r,
      (x) =>
        new RespWriter().error(
          `ERR forwarding to ${server} failed (${
            x instanceof Error ? x.message : x
          }); the command's outcome is unknown`,
        ).take(),
    );
  };

  /**
   * Runs a key command, synchronously when the key is here. The arguments
   * are views into the connection's parser buffer, not copied for the
   * forwarding: the connection awaits every reply of a batch before it
   * reads (and the parser reuses its buffer) again.
   */
  const keyCommand = (
    name: string,
    args: Uint8Array[],
  ): Reply | Promise<Reply> => runKey(name, args) ?? routeKey(name, args);

  /** One SCAN step from `start` here: keys and where to go on. */
  const scanHere = (
    start: Uint8Array,
    count: number,
  ): { keys: Uint8Array[]; next: Uint8Array | null } | undefined => {
    checkServing();
    const t = localTablet(start.length ? start : new Uint8Array([0]));
    const open = start.length === 0
      ? o.host.list().find((x) =>
        x.record.table === o.map.table && x.range.start.length === 0
      )
      : undefined;
    const tablet = open
      ? (open.tablet instanceof MemoryTablet && !open.frozen && o.serving()
        ? open.tablet
        : undefined)
      : t instanceof MemoryTablet
      ? t
      : undefined;
    if (!tablet) return undefined;
    const r = tablet.scanKeys(latin1(start), count, Date.now());
    return {
      keys: r.keys.map(fromLatin1),
      next: r.next !== null ? fromLatin1(r.next) : tablet.range.end,
    };
  };

  const scan = async (args: Uint8Array[]): Promise<Reply> => {
    const c = parseInt64(args[1]!);
    if (c === undefined || c < 0) return err("ERR invalid cursor");
    let count = 10;
    let match: string | undefined;
    for (let i = 2; i < args.length; i++) {
      const opt = upper(args[i]!);
      if (opt === "COUNT" && i + 1 < args.length) {
        const n = parseInt64(args[++i]!);
        if (n === undefined) return err(NOT_INT);
        if (n < 1) return err(SYNTAX);
        count = Math.min(n, 100_000);
      } else if (opt === "MATCH" && i + 1 < args.length) {
        match = latin1(args[++i]!);
      } else if (opt === "TYPE" && i + 1 < args.length) {
        if (upper(args[++i]!) !== "STRING") {
          return {
            type: "array",
            value: [bulk(enc.encode("0")), { type: "array", value: [] }],
          };
        }
      } else return err(SYNTAX);
    }
    let start: Uint8Array;
    if (c === 0) start = new Uint8Array(0);
    else {
      const s = cursors.get(c);
      if (!s) return err("ERR invalid cursor");
      start = s;
    }
    let step = scanHere(start, count);
    for (let attempt = 0; !step && attempt < 50; attempt++) {
      await o.map.refresh().catch(() => {});
      const e = start.length
        ? o.map.lookup(start)
        : o.map.lookup(new Uint8Array([0]));
      if (e && e.server && e.server !== o.serverId && e.resp) {
        try {
          const r = await peerFor(e.resp).call([
            "STRATA.SCAN",
            start,
            String(count),
          ]);
          if (r.type === "array" && r.value) {
            const [next, ...keys] = r.value;
            step = {
              keys: keys.map((k) => (k as { value: Uint8Array }).value),
              next: next?.type === "bulk" ? next.value : null,
            };
            break;
          }
        } catch { /* the owner is gone: the map will say */ }
      }
      step = scanHere(start, count);
      if (!step) await new Promise((r) => setTimeout(r, 50));
    }
    if (!step) return err("TRYAGAIN the tablet to scan is not served now");
    let id = 0;
    if (step.next !== null) {
      id = nextCursor++;
      cursors.set(id, step.next);
      if (cursors.size > 10_000) cursors.delete(cursors.keys().next().value!);
    }
    const keys = match === undefined
      ? step.keys
      : step.keys.filter((k) => globMatch(match!, latin1(k)));
    return {
      type: "array",
      value: [
        bulk(enc.encode(String(id))),
        { type: "array", value: keys.map(bulk) },
      ],
    };
  };

  const subscribeReply = (kind: string, name: Uint8Array | null, n: number) =>
    new RespWriter().array(3).bulk(kind).bulk(name).integer(n).take();

  /** Runs one command; a Promise when it waits for a peer. */
  const run = (
    cl: Client,
    args: Uint8Array[],
  ): Reply | Promise<Reply | Uint8Array> | Uint8Array | undefined => {
    const name = upper(args[0]!);
    if (cl.role === undefined && !OPEN.has(name)) {
      return err("NOAUTH Authentication required.");
    }
    if (
      (cl.channels.size > 0 || cl.patterns.size > 0) && !SUBSCRIBED_OK.has(name)
    ) {
      return err(
        `ERR Can't execute '${name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
      );
    }
    if (
      WRITES.has(name) && cl.role !== "peer" && cl.role !== undefined &&
      !roleAllows(cl.role, "write")
    ) {
      return err(
        "NOPERM this token may only read: AUTH with the write token for writes",
      );
    }
    if (KEY_COMMANDS.has(name)) {
      if (args.length < 2) return wrongArgs(name);
      if (
        (name === "DEL" || name === "UNLINK" || name === "EXISTS") &&
        args.length > 2
      ) {
        return sumOver(name, args.slice(1));
      }
      if (
        (name === "INCRBY" || name === "DECRBY") && args.length !== 3 ||
        (name === "INCR" || name === "DECR" || name === "PERSIST") &&
          args.length !== 2
      ) return wrongArgs(name);
      return keyCommand(name, args);
    }
    switch (name) {
      case "PING":
        if (args.length > 2) return wrongArgs(name);
        if (cl.channels.size > 0 || cl.patterns.size > 0) {
          return new RespWriter().array(2).bulk("pong").bulk(args[1] ?? "")
            .take();
        }
        return args.length === 2
          ? bulk(args[1]!)
          : { type: "simple", value: "PONG" };
      case "ECHO":
        return args.length === 2 ? bulk(args[1]!) : wrongArgs(name);
      case "QUIT":
        cl.closing = true;
        return OK;
      case "AUTH": {
        if (args.length < 2 || args.length > 3) return wrongArgs(name);
        return auth(cl, str(args[args.length - 1]!));
      }
      case "HELLO": {
        let i = 1;
        if (args.length > 1) {
          const v = parseInt64(args[1]!);
          if (v === undefined) {
            return err(
              "ERR Protocol version is not an integer or out of range",
            );
          }
          if (v !== 2) return err("NOPROTO unsupported protocol version");
          i = 2;
        }
        for (; i < args.length; i++) {
          const opt = upper(args[i]!);
          if (opt === "AUTH" && i + 2 < args.length) {
            const r = auth(cl, str(args[i + 2]!));
            if (r.type === "error") return r;
            i += 2;
          } else if (opt === "SETNAME" && i + 1 < args.length) i++;
          else return err(SYNTAX);
        }
        if (cl.role === undefined) {
          return err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
          );
        }
        const fields: [string, Reply][] = [
          ["server", bulk(enc.encode("strata-tables"))],
          ["version", bulk(enc.encode("7.0.0"))],
          ["proto", int(2)],
          ["id", int(1)],
          ["mode", bulk(enc.encode("standalone"))],
          ["role", bulk(enc.encode("master"))],
          ["modules", { type: "array", value: [] }],
        ];
        return {
          type: "array",
          value: fields.flatMap(([k, v]) => [bulk(enc.encode(k)), v]),
        };
      }
      case "SELECT":
        if (args.length !== 2) return wrongArgs(name);
        return parseInt64(args[1]!) === 0
          ? OK
          : err("ERR DB index is out of range");
      case "CONFIG": {
        const sub = args[1] ? upper(args[1]) : "";
        if (sub === "SET") return configSet(cl, args.slice(2));
        if (sub !== "GET" || args.length < 3) {
          return err(
            `ERR CONFIG ${sub.toLowerCase()} is not supported by the tables RESP listener`,
          );
        }
        const known: Record<string, string> = {
          save: "",
          appendonly: "no",
          databases: "1",
          maxmemory: String(evictor.maxBytes),
          "maxmemory-policy": evictor.policy,
          "maxmemory-samples": String(evictor.samples),
        };
        const out: Reply[] = [];
        for (const p of args.slice(2)) {
          const pat = latin1(p).toLowerCase();
          for (const [k, v] of Object.entries(known)) {
            if (globMatch(pat, k)) {
              out.push(bulk(enc.encode(k)), bulk(enc.encode(v)));
            }
          }
        }
        return { type: "array", value: out };
      }
      case "COMMAND": {
        const sub = args[1] ? upper(args[1]) : "";
        if (sub === "COUNT") return int(KEY_COMMANDS.size + 20);
        // No command table: clients (redis-cli's hints) cope with none.
        return { type: "array", value: [] };
      }
      case "CLIENT": {
        const sub = args[1] ? upper(args[1]) : "";
        if (sub === "SETNAME" || sub === "SETINFO") return OK;
        if (sub === "GETNAME") return NIL;
        if (sub === "ID") return int(1);
        return err(`ERR CLIENT ${sub.toLowerCase()} is not supported`);
      }
      case "INFO":
        return bulk(enc.encode(
          `# Server\r\nredis_version:7.0.0\r\nstrata_server:${o.serverId}\r\nredis_mode:standalone\r\n\r\n# Memory\r\nused_memory:${
            Evictor.used(ownTablets())
          }\r\nmaxmemory:${evictor.maxBytes}\r\nmaxmemory_policy:${evictor.policy}\r\n\r\n# Stats\r\nevicted_keys:${evictor.evicted}\r\n`,
        ));
      case "RESET":
        for (const u of cl.channels.values()) u();
        for (const u of cl.patterns.values()) u();
        cl.channels.clear();
        cl.patterns.clear();
        return { type: "simple", value: "RESET" };
      case "MGET":
        if (args.length < 2) return wrongArgs(name);
        return mget(args.slice(1));
      case "MSET":
        if (args.length < 3 || args.length % 2 === 0) return wrongArgs(name);
        return mset(args.slice(1));
      case "SCAN":
        if (args.length < 2) return wrongArgs(name);
        return scan(args);
      case "PUBLISH":
        if (args.length !== 3) return wrongArgs(name);
        return o.pubsub.publish(latin1(args[1]!), args[2]!.slice()).then(
          int,
          (e) =>
            err(`ERR publish failed: ${e instanceof Error ? e.message : e}`),
        );
      case "SUBSCRIBE":
      case "PSUBSCRIBE": {
        if (args.length < 2) return wrongArgs(name);
        const w = new RespWriter();
        // Confirmed only once the pub/sub says later publishes will arrive
        // (with rooms: once each room's home counts this server in).
        const ready: Promise<void>[] = [];
        for (const a of args.slice(1)) {
          const ch = latin1(a);
          const map = name === "SUBSCRIBE" ? cl.channels : cl.patterns;
          if (!map.has(ch)) {
            let sub;
            try {
              sub = name === "SUBSCRIBE"
                ? o.pubsub.subscribe(ch, (c, m) =>
                  cl.send(
                    new RespWriter().array(3).bulk("message").bulk(
                      fromLatin1(c),
                    )
                      .bulk(m).take(),
                  ))
                : o.pubsub.psubscribe(ch, (p, c, m) =>
                  cl.send(
                    new RespWriter().array(4).bulk("pmessage").bulk(
                      fromLatin1(p),
                    )
                      .bulk(fromLatin1(c)).bulk(m).take(),
                  ));
            } catch (e) {
              return err(
                `ERR ${name.toLowerCase()} failed: ${
                  e instanceof Error ? e.message : e
                }`,
              );
            }
            map.set(ch, sub);
            if (sub.ready) ready.push(sub.ready);
          }
          w.raw(
            subscribeReply(
              name.toLowerCase(),
              a,
              cl.channels.size + cl.patterns.size,
            ),
          );
        }
        if (ready.length === 0) return w.take();
        // Bounded: a home that cannot be reached must not hang the
        // connection; the subscription stays and joins when it can.
        let timer: ReturnType<typeof setTimeout> | undefined;
        return Promise.race([
          Promise.all(ready).catch(() => {}),
          new Promise<void>((r) => timer = setTimeout(r, SUBSCRIBE_WAIT_MS)),
        ]).then(() => {
          clearTimeout(timer);
          return w.take();
        });
      }
      case "UNSUBSCRIBE":
      case "PUNSUBSCRIBE": {
        const map = name === "UNSUBSCRIBE" ? cl.channels : cl.patterns;
        const names = args.length > 1
          ? args.slice(1).map(latin1)
          : [...map.keys()];
        const w = new RespWriter();
        if (names.length === 0) {
          w.raw(
            subscribeReply(
              name.toLowerCase(),
              null,
              cl.channels.size + cl.patterns.size,
            ),
          );
        }
        for (const ch of names) {
          map.get(ch)?.();
          map.delete(ch);
          w.raw(
            subscribeReply(
              name.toLowerCase(),
              fromLatin1(ch),
              cl.channels.size + cl.patterns.size,
            ),
          );
        }
        return w.take();
      }
      case "STRATA.LOCAL": {
        if (cl.role !== "peer" && !(o.auth === "off")) {
          return err(
            "NOPERM STRATA.LOCAL is internal to the cell (peer secret)",
          );
        }
        const inner = args.slice(1);
        if (inner.length < 2) return wrongArgs(name);
        const n = upper(inner[0]!);
        if (!KEY_COMMANDS.has(n)) {
          return err(`ERR STRATA.LOCAL ${n} is not a key command`);
        }
        return runKey(n, inner) ??
          err(`${MISS} ${o.serverId} does not serve this key now`);
      }
      case "STRATA.SCAN": {
        if (cl.role !== "peer" && !(o.auth === "off")) {
          return err(
            "NOPERM STRATA.SCAN is internal to the cell (peer secret)",
          );
        }
        if (args.length !== 3) return wrongArgs(name);
        const count = parseInt64(args[2]!);
        if (count === undefined || count < 1) return err(NOT_INT);
        const s = scanHere(args[1]!, Math.min(count, 100_000));
        if (!s) {
          return err(`${MISS} ${o.serverId} does not serve this range now`);
        }
        return { type: "array", value: [bulk(s.next), ...s.keys.map(bulk)] };
      }
    }
    return err(
      `ERR unknown command '${
        latin1(args[0]!.subarray(0, 64))
      }', with args beginning with: ${
        args.slice(1, 4).map((a) => `'${latin1(a.subarray(0, 64))}'`).join(" ")
      }`,
    );
  };

  /**
   * CONFIG SET of the eviction settings (admin token), on this server
   * only, until it restarts (the flags set them at start).
   */
  const configSet = (cl: Client, pairs: Uint8Array[]): Reply => {
    if (cl.role !== "admin") {
      return err("NOPERM CONFIG SET needs the admin token");
    }
    if (pairs.length === 0 || pairs.length % 2 !== 0) {
      return wrongArgs("config|set");
    }
    // Checked first, then applied: all or nothing, as Redis does.
    const apply: (() => void)[] = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const name = latin1(pairs[i]!).toLowerCase();
      const value = latin1(pairs[i + 1]!);
      const bad = err(
        `ERR CONFIG SET failed (possibly related to argument '${name}') - argument couldn't be parsed into an integer`,
      );
      if (name === "maxmemory") {
        const n = parseMemorySize(value);
        if (n === undefined) return bad;
        apply.push(() => evictor.maxBytes = n);
      } else if (name === "maxmemory-policy") {
        const p = value.toLowerCase() as EvictionPolicy;
        if (!EVICTION_POLICIES.includes(p)) {
          return err(
            `ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: ${
              EVICTION_POLICIES.join(", ")
            }`,
          );
        }
        apply.push(() => evictor.policy = p);
      } else if (name === "maxmemory-samples") {
        const n = parseInt64(pairs[i + 1]!);
        if (n === undefined || n < 1 || n > 64) return bad;
        apply.push(() => evictor.samples = n);
      } else {
        return err(
          `ERR Unknown option or number of arguments for CONFIG SET - '${name}' (the tables RESP listener sets maxmemory, maxmemory-policy, maxmemory-samples)`,
        );
      }
    }
    for (const f of apply) f();
    return OK;
  };

  const auth = (cl: Client, token: string): Reply => {
    if (o.auth === "off") return OK;
    if (peerAuth?.roleOf(token)) {
      cl.role = "peer";
      return OK;
    }
    const role = o.auth.roleOf(token);
    if (!role) {
      return err(
        "WRONGPASS invalid username-password pair or user is disabled.",
      );
    }
    cl.role = role;
    return OK;
  };

  const mget = async (keys: Uint8Array[]): Promise<Reply> => {
    const parts = keys.map((k) => keyCommand("GET", [enc.encode("GET"), k]));
    const values = await Promise.all(parts);
    return {
      type: "array",
      value: values.map((v) => v.type === "bulk" ? v : NIL),
    };
  };

  const mset = async (kv: Uint8Array[]): Promise<Reply> => {
    const parts: (Reply | Promise<Reply>)[] = [];
    for (let i = 0; i < kv.length; i += 2) {
      parts.push(keyCommand("SET", [enc.encode("SET"), kv[i]!, kv[i + 1]!]));
    }
    const rs = await Promise.all(parts);
    return rs.find((r) => r.type === "error") ?? OK;
  };

  const sumOver = async (name: string, keys: Uint8Array[]): Promise<Reply> => {
    const cmd = enc.encode(name);
    const rs = await Promise.all(keys.map((k) => keyCommand(name, [cmd, k])));
    const bad = rs.find((r) => r.type === "error");
    if (bad) return bad;
    return int(
      rs.reduce((n, r) => n + (r.type === "integer" ? r.value : 0), 0),
    );
  };

  /** Active expiry, as Redis: sample keys with a deadline 10 times a second. */
  const expiry = setInterval(() => {
    const started = performance.now();
    const now = Date.now();
    for (const t of o.host.list()) {
      if (!(t.tablet instanceof MemoryTablet) || t.frozen) continue;
      // Again while over a quarter of the sample had expired, ≤ 5 ms.
      for (;;) {
        const [seen, dropped] = t.tablet.expireSome(now, 20);
        if (seen === 0 || dropped * 4 < seen) break;
        if (performance.now() - started > 5) return;
      }
    }
  }, 100);

  const serveConn = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      if (!o.tls) (conn as Deno.TcpConn).setNoDelay(true);
    } catch { /* not TCP */ }
    const parser = new RespRequestParser(o.limits);
    const out = new RespWriter();
    const buf = new Uint8Array(64 << 10);
    let writing: Promise<void> = Promise.resolve();
    let queued = 0;
    const writeAll = async (data: Uint8Array) => {
      for (let off = 0; off < data.length;) {
        off += await conn.write(data.subarray(off));
      }
    };
    const cl: Client = {
      role: o.auth === "off" ? "admin" : undefined,
      channels: new Map(),
      patterns: new Map(),
      closing: false,
      send(bytes) {
        // A subscriber too slow to read 32 MiB behind is dropped (Redis'
        // client-output-buffer-limit for pub/sub).
        queued += bytes.length;
        if (queued > 32 << 20) {
          cl.closing = true;
          try {
            conn.close();
          } catch { /* closed */ }
          return;
        }
        writing = writing.then(() => writeAll(bytes)).then(
          () => void (queued -= bytes.length),
          () => {},
        );
      },
    };
    try {
      while (!cl.closing && !closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        parser.push(buf.subarray(0, n));
        checkServing();
        const items: (Uint8Array | Promise<Reply | Uint8Array>)[] = [];
        // The hot path: GET and SET of a key served here run straight from
        // the parser's buffer (no arguments array, no views, no key string,
        // no reply object), for a client allowed to and not subscribed.
        // Decided again after any other command (AUTH, SUBSCRIBE, CONFIG SET
        // change them).
        let fastGet = false;
        let fastSet = false;
        let role = cl.role;
        const decideFast = () => {
          role = cl.role;
          fastGet = role !== undefined && cl.channels.size === 0 &&
            cl.patterns.size === 0;
          fastSet = role !== undefined && fastGet &&
            evictor.maxBytes === 0 &&
            (role === "peer" || roleAllows(role, "write"));
        };
        decideFast();
        const now = Date.now();
        try {
          for (;;) {
            const kind = fastGet ? parser.fast() : 0;
            if (
              kind !== 0 && (kind === 1 || fastSet) &&
              (!parser.fastLocal || role === "peer" || o.auth === "off")
            ) {
              const b = parser.bytes;
              const t = tabletAt(b, parser.fastKey, parser.fastKeyLength);
              if (t === undefined && !parser.fastLocal) {
                // Served elsewhere: the frame goes to the owner as it is.
                const f = forwardFrame(kind, b, parser);
                if (f !== undefined) {
                  if (out.length) items.push(out.take());
                  items.push(f);
                  parser.skipFast();
                  continue;
                }
              }
              if (t !== undefined) {
                if (kind === 1) {
                  const v = t.getValueAt(
                    b,
                    parser.fastKey,
                    parser.fastKeyLength,
                    now,
                  );
                  if (v === undefined) out.raw(NIL_BYTES);
                  else out.bulk(v);
                } else {
                  t.writeValueAt(
                    b,
                    parser.fastKey,
                    parser.fastKeyLength,
                    parser.fastValue,
                    parser.fastValueLength,
                    now,
                  );
                  out.raw(OK_BYTES);
                }
                parser.skipFast();
                continue;
              }
            }
            const args = parser.next();
            if (!args) break;
            const r = run(cl, args);
            decideFast();
            if (r === undefined) continue;
            if (r instanceof Uint8Array) out.raw(r);
            else if (r instanceof Promise) {
              if (out.length) items.push(out.take());
              items.push(r);
            } else out.value(r);
            if (cl.closing) break;
          }
        } catch (e) {
          if (!(e instanceof RespProtocolError)) throw e;
          out.error(`ERR ${e.message}`);
          cl.closing = true;
        }
        if (items.length > 0) {
          if (out.length) items.push(out.take());
          for (const it of items) {
            const v = it instanceof Uint8Array ? it : await it;
            if (v instanceof Uint8Array) out.raw(v);
            else out.value(v);
          }
        }
        if (out.length === 0) continue;
        if (queued === 0) {
          // Nothing queued (no pub/sub message in flight): write from the
          // writer's buffer, no copy, and read on once it is written (in a
          // profile run, GET -P 16 went from 81k-110k to 135k-159k ops/s).
          const n = out.length;
          queued += n;
          const done = writeAll(out.view());
          writing = done.then(() => void (queued -= n), () => {});
          await done;
          out.reset();
        } else cl.send(out.take());
      }
      await writing;
    } catch (e) {
      if (
        !(e instanceof Deno.errors.ConnectionReset) &&
        !(e instanceof Deno.errors.BrokenPipe) &&
        !(e instanceof Deno.errors.BadResource) &&
        !(e instanceof Deno.errors.Interrupted) &&
        // A client that is not speaking TLS to a TLS listener, or hangs
        // up in the handshake: its problem, one line.
        !(e instanceof Deno.errors.InvalidData) &&
        !(e instanceof Deno.errors.UnexpectedEof)
      ) {
        o.log(`RESP connection failed: ${e instanceof Error ? e.stack : e}`);
      }
    } finally {
      for (const u of cl.channels.values()) u();
      for (const u of cl.patterns.values()) u();
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        if (closed) return;
        continue;
      }
      void serveConn(conn);
    }
  })();

  return {
    address,
    async close() {
      closed = true;
      clearInterval(expiry);
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      for (const p of peers.values()) p.close();
    },
  };
}
