import { type ClusterSecrets, type Role, roleAllows } from "@strata/edge";
import { isStorageError } from "@strata/storage";
import { BulkConn, BulkPorts } from "../client/bulk_connection.ts";
import {
  BULK_MAGIC,
  bulkProof,
  type BulkRequest,
  BulkRequestSchema,
  BulkTrailerSchema,
  type ByteConn,
  encodeHeader,
  hasMagic,
  NONCE_BYTES,
  proofsEqual,
  ReadAhead,
  readExact,
  readHeader,
  writeAll,
} from "../shared/bulk_protocol.ts";
import { GfsError, gfsToEdgeError, isGfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";
import { BufferPool } from "./buffer_pool.ts";

/** How long a connection may take to prove its token. */
const HANDSHAKE_MS = 5_000;
/** How long one exchange (its bytes included) may take before the socket closes. */
const EXCHANGE_MS = 120_000;

/** Room before a read's bytes for its reply header (`{"ok":true,"length":N}`). */
const READ_HEADROOM = 64;

/** Options of {@link startBulkPort}. */
export interface BulkPortOptions {
  /** Interface to bind (the HTTP listener's). */
  host: string;
  /** Port (0: a free one). */
  port: number;
  /**
   * The cell's secrets: a client proves a user's token (its role is that
   * token's) or the peer secret (a primary forwarding; admin for the
   * rest). Undefined: auth is off (loopback only).
   */
  secrets?: ClusterSecrets;
}

/** A running bulk port. */
export interface BulkPortServer {
  readonly port: number;
  close(): Promise<void>;
}

type Write = Extract<BulkRequest, { op: "write" | "forward" }>;

/**
 * The chunkserver's bulk port: chunk reads and chunk writes as raw bytes
 * on a TCP socket (`shared/bulk_protocol.ts`), for uploads and large
 * downloads. A read writes the verified blocks straight to the socket; a
 * write (the client to the primary, or a `forward` from the previous
 * server of the chain) reads the bytes into one buffer and hands each
 * piece on to the next server as it arrives (the GFS paper's pipelined
 * push), then writes them locally (the primary numbers the mutation, the
 * others wait their number's turn) and answers once the bytes are durable
 * here, with the servers down the chain that made them durable too.
 *
 * A header that does not parse or validate gets an error reply and the
 * connection closes (its framing is lost); the server keeps serving.
 */
export function startBulkPort(
  cs: ChunkserverService,
  options: BulkPortOptions,
): BulkPortServer {
  const listener = Deno.listen({
    hostname: options.host,
    port: options.port,
    transport: "tcp",
  });
  const open = new Set<Deno.TcpConn>();
  // Three 16 MiB pieces in flight per upload, a few uploads at once.
  const buffers = new BufferPool(128 * 2 ** 20);
  // The next hop of a chain, proving the peer secret.
  const next = new BulkPorts({
    token: cs.peerToken,
    httpClient: cs.client,
  });
  const s = options.secrets;
  const candidates: [string, Role | "peer"][] = s === undefined ? [] : [
    [s.tokens.read, "read"],
    [s.tokens.write, "write"],
    [s.tokens.admin, "admin"],
    [s.peerSecret, "peer"],
  ];

  const serve = async (conn: Deno.TcpConn) => {
    open.add(conn);
    const c = new BulkConn(conn, "client");
    // Every read of this socket goes through `io`: a request header
    // arrives in one socket read (with a write's first bytes, if any).
    const io = new ReadAhead(conn, 16 * 1024);
    try {
      conn.setNoDelay(true);
      c.deadline(HANDSHAKE_MS);
      const role = await accept(io, candidates);
      c.settle();
      if (role === null) return;
      for (;;) {
        let req: BulkRequest | null;
        try {
          req = await readHeader(io, BulkRequestSchema);
        } catch (e) {
          // Framing lost: say why (if the socket still takes it), then close.
          if (isGfsError(e, "bad_request")) {
            await writeAll(io, encodeHeader({ error: refusal(e) })).catch(
              () => {},
            );
          }
          return;
        }
        if (req === null) return;
        c.deadline(EXCHANGE_MS);
        cs.stats.inflight++;
        cs.stats.bulkCalls++;
        try {
          if (req.op === "read") await read(io, req, role);
          else await write(io, req, role);
        } finally {
          cs.stats.inflight--;
        }
        c.settle();
      }
    } catch {
      // A lost or misbehaving peer: only its connection ends.
    } finally {
      c.close();
      open.delete(conn);
    }
  };

  const read = async (
    conn: ByteConn,
    m: Extract<BulkRequest, { op: "read" }>,
    role: Role | "peer",
  ) => {
    // The reply header and the bytes go out as one write from one kept
    // buffer: the verified blocks are copied into it (a copy into memory
    // already touched costs far less than fresh buffers' page faults, and
    // one socket write less than one per 64 KiB block).
    let buf: Uint8Array | null = null;
    let length: number;
    try {
      need(role, "read");
      if (m.length > cs.cfg.chunkBytes) {
        throw new GfsError("bad_request", "a read is at most one chunk");
      }
      buf = buffers.take(READ_HEADROOM + m.length);
      length = await cs.store.readInto(
        m.handle,
        m.offset,
        m.length,
        m.version ?? undefined,
        buf.subarray(READ_HEADROOM),
      );
    } catch (e) {
      if (buf !== null) buffers.give(buf);
      if (isCorrupt(e)) cs.reportCorrupt(m.handle);
      await writeAll(conn, encodeHeader({ error: refusal(e) }));
      return;
    }
    cs.stats.reads++;
    cs.stats.readBytes += length;
    const head = encodeHeader({ ok: true, length });
    buf.set(head, READ_HEADROOM - head.length);
    await writeAll(
      conn,
      buf.subarray(READ_HEADROOM - head.length, READ_HEADROOM + length),
    );
    buffers.give(buf);
  };

  const write = async (
    conn: ByteConn,
    m: Write,
    role: Role | "peer",
  ) => {
    let refused: unknown = null;
    try {
      if (m.op === "forward") needPeer(role);
      else need(role, "write");
      if (m.grant !== undefined) cs.checkGrant(m.grant, m, m.op === "write");
      if (m.offset + m.length > cs.cfg.chunkBytes) {
        throw new GfsError(
          "too_large",
          `write to ${
            m.offset + m.length
          } passes the chunk size ${cs.cfg.chunkBytes}`,
        );
      }
    } catch (e) {
      refused = e;
    }
    if (refused !== null) {
      // Refused at once, then the bytes (and a forward's trailer) are read
      // and dropped, so a sender still sending gets to read why (a hang-up
      // would reach it as a reset) and the connection serves on; the
      // exchange's deadline bounds a sender that never stops.
      await writeAll(conn, encodeHeader({ error: refusal(refused) }));
      const sink = new Uint8Array(64 * 1024);
      for (let left = m.length; left > 0;) {
        const n = await conn.read(
          sink.subarray(0, Math.min(sink.length, left)),
        );
        if (n === null) throw refused;
        left -= n;
      }
      if (m.op === "forward") await readHeader(conn, BulkTrailerSchema);
      return;
    }
    // The next hop: dialed while the bytes start arriving here.
    const hop = m.chain.length === 0 ? null : new Hop(next, cs, m);
    const data = buffers.take(m.length);
    let got = 0;
    try {
      while (got < data.length) {
        const n = await conn.read(data.subarray(got));
        if (n === null) {
          throw new GfsError("unavailable", "sender hung up mid-write");
        }
        hop?.pass(data.subarray(got, got + n));
        got += n;
      }
    } catch (e) {
      hop?.abandon();
      throw e;
    }
    let local: Promise<number>;
    try {
      // A chunk the master placed with a grant is created here now.
      if (m.grant !== undefined) await cs.admitGrant(m.grant, m.op === "write");
      if (m.op === "write") {
        // The primary numbers the mutation once it holds every byte, and
        // queues its own write in the same step: its order is the numbering.
        cs.checkLease(m.handle, m.version);
        const seq = cs.order.takeSeq(m.handle, m.version);
        local = cs.store.write(m.handle, m.version, m.offset, data);
        hop?.finish(seq);
      } else {
        const trailer = await readHeader(conn, BulkTrailerSchema);
        if (trailer === null) {
          throw new GfsError(
            "unavailable",
            "sender hung up before the trailer",
          );
        }
        hop?.finish(trailer.seq);
        local = cs.applyBytes(m.handle, { ...m, seq: trailer.seq }, data);
      }
    } catch (e) {
      hop?.abandon();
      local = Promise.reject(e);
    }
    const [mine, downstream] = await Promise.allSettled([
      local,
      hop?.result ?? Promise.resolve([]),
    ]);
    const below = downstream.status === "fulfilled" ? downstream.value : [];
    // The buffer is free once written here and sent on in full; after a
    // failure a send may still hold a view of it, so it is left to the GC.
    if (mine.status === "fulfilled" && (hop === null || hop.completed)) {
      buffers.give(data);
    }
    if (mine.status === "rejected" && m.op === "write") {
      await writeAll(conn, encodeHeader({ error: refusal(mine.reason) }));
      return;
    }
    if (m.op === "write") {
      cs.stats.writes++;
      cs.stats.writeBytes += data.length;
    }
    const servers = mine.status === "fulfilled" ? [cs.url, ...below] : below;
    await writeAll(
      conn,
      encodeHeader({
        ok: true,
        length: mine.status === "fulfilled" ? mine.value : 0,
        servers,
      }),
    );
  };

  const need = (role: Role | "peer", want: Role) => {
    const has: Role = role === "peer" ? "admin" : role;
    if (!roleAllows(has, want)) {
      throw new GfsError(
        "forbidden",
        `this needs the ${want} token (or a higher one)`,
      );
    }
  };
  // The peer routes' rule (`need.peer`): only the peer secret (auth on).
  const needPeer = (role: Role | "peer") => {
    if (s !== undefined && role !== "peer") {
      throw new GfsError("forbidden", "this needs the cell's peer secret");
    }
  };

  const accepting = (async () => {
    for await (const conn of listener) void serve(conn as Deno.TcpConn);
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
      await next.close();
    },
  };
}

/**
 * The next server of a chain: bytes are handed to it in arrival order
 * without waiting (the buffer they live in is the receiver's, so nothing
 * is copied); a failure there only drops it from the result.
 */
class Hop {
  readonly #pool: BulkPorts;
  #conn: BulkConn | null = null;
  #queue: Promise<void>;
  #failed = false;
  /** True once the next server answered (every byte was sent). */
  completed = false;
  readonly result: Promise<string[]>;
  #resolve!: (v: string[]) => void;

  constructor(pool: BulkPorts, cs: ChunkserverService, m: Write) {
    this.result = new Promise((r) => this.#resolve = r);
    this.#queue = (async () => {
      const [first, ...rest] = await cs.peers.origins(m.chain, "chain member");
      const conn = await pool.open(first!, 10_000);
      if (conn === null) {
        throw new GfsError("unavailable", `${first} has no bulk port`);
      }
      this.#conn = conn;
      conn.deadline(EXCHANGE_MS);
      await conn.sendHeader(
        {
          op: "forward",
          handle: m.handle,
          version: m.version,
          offset: m.offset,
          length: m.length,
          chain: rest,
          grant: m.grant,
        } satisfies BulkRequest,
      );
    })();
    this.#queue.catch(() => this.abandon());
    this.#pool = pool;
  }

  /** Hands `bytes` on (in order). */
  pass(bytes: Uint8Array): void {
    if (this.#failed) return;
    this.#queue = this.#queue.then(() => this.#conn!.send(bytes));
    this.#queue.catch(() => this.abandon());
  }

  /** Sends the trailer and waits for the next server's answer. */
  finish(seq: number): void {
    if (this.#failed) return;
    const done = this.#queue.then(async () => {
      const c = this.#conn!;
      await c.sendHeader({ seq });
      const r = await c.reply();
      this.completed = true;
      this.#pool.release(c);
      return r.servers ?? [];
    });
    done.then((v) => this.#resolve(v), () => this.abandon());
  }

  /** Gives up on the next server (its bytes are incomplete; it drops them). */
  abandon(): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#conn?.close();
    this.#resolve([]);
  }
}

/**
 * The server's side of the handshake (see `client/bulk_connection.ts`).
 * @returns the role of the secret the client proved (or "admin" with auth
 *   off), null when refused.
 */
async function accept(
  conn: ByteConn,
  candidates: [string, Role | "peer"][],
): Promise<Role | "peer" | null> {
  const auth = candidates.length > 0;
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const hello = new Uint8Array(BULK_MAGIC.length + NONCE_BYTES + 1);
  hello.set(BULK_MAGIC);
  hello.set(nonce, BULK_MAGIC.length);
  hello[hello.length - 1] = auth ? 1 : 0;
  await writeAll(conn, hello);
  const theirs = new Uint8Array(BULK_MAGIC.length + 2 * NONCE_BYTES);
  if (!await readExact(conn, theirs) || !hasMagic(theirs)) return null;
  const clientNonce = theirs.subarray(
    BULK_MAGIC.length,
    BULK_MAGIC.length + NONCE_BYTES,
  );
  const proof = theirs.subarray(BULK_MAGIC.length + NONCE_BYTES);
  const verdict = new Uint8Array(1 + NONCE_BYTES);
  if (!auth) {
    verdict[0] = 1;
    await writeAll(conn, verdict);
    return "admin";
  }
  let matched: [string, Role | "peer"] | undefined;
  // Every candidate is checked, so the time says nothing about which matched.
  for (const cand of candidates) {
    const ok = proofsEqual(
      proof,
      bulkProof(cand[0], "client", nonce, clientNonce),
    );
    if (ok && matched === undefined) matched = cand;
  }
  if (matched === undefined) {
    await writeAll(conn, verdict);
    return null;
  }
  verdict[0] = 1;
  verdict.set(bulkProof(matched[0], "server", clientNonce, nonce), 1);
  await writeAll(conn, verdict);
  return matched[1];
}

function isCorrupt(e: unknown): boolean {
  return isGfsError(e, "corrupt") ||
    (isStorageError(e) && e.code === "corrupt");
}

/**
 * What a failed exchange answers: the body the HTTP routes would send;
 * anything unknown is `internal`, its text logged, never sent.
 */
function refusal(e: unknown): { code: string; message: string } {
  const known = gfsToEdgeError(e);
  if (known !== undefined) {
    const { code, message } = known.toJSON().error;
    return { code, message: message.slice(0, 4096) };
  }
  console.error(
    `gfs chunkserver: bulk port exchange failed: ${
      e instanceof Error ? e.message : String(e)
    }`,
  );
  return { code: "internal", message: "internal error (see the server log)" };
}
