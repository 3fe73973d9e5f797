/**
 * `peer_connection.ts`: one persistent RESP connection from a tablet
 * server to another (the router's forwarding link), authenticated with the
 * cell's peer secret. Commands are pipelined: each is queued in one write
 * buffer flushed once per microtask turn (so the commands of many clients
 * go out in one write), and replies are matched to commands in order.
 * A broken connection fails every command in flight (their outcome is
 * unknown) and is replaced by a new one on the next command. In a cell
 * serving TLS the link is TLS too, trusting the cell's CA roots.
 */
import { connectWithin } from "@strata/transport";
import {
  RespProtocolError,
  RespReplyParser,
  type RespValue,
  RespWriter,
} from "./resp_codec.ts";

/** Who waits for a reply: parsed (`call`) or as its bytes (`callRaw`). */
interface Waiter {
  resolve(v: RespValue | Uint8Array): void;
  reject(e: Error): void;
  raw: boolean;
  /** When it was queued (`performance.now()`), for the reply deadline. */
  since: number;
}

/** Deadlines of a {@link PeerConnection}. */
export interface PeerTimeouts {
  /** Give up a dial after this long (default 5,000 ms). */
  connectMs?: number;
  /**
   * A command with no reply after this long breaks the link (default
   * 10,000 ms): a peer that is paused or cut off must not hold its callers
   * forever (forwarded commands never block on the owner).
   */
  replyMs?: number;
}

/** A pipelined RESP client connection. */
export class PeerConnection {
  #conn: Deno.Conn | undefined;
  #connecting: Promise<Deno.Conn> | undefined;
  #out = new RespWriter();
  #flushing = false;
  /** In command order: who waits for each reply, parsed or as bytes. */
  #pending: Waiter[] = [];
  #closed = false;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  readonly #connectMs: number;
  readonly #replyMs: number;

  /**
   * @param address `host:port` of the peer's RESP listener.
   * @param secret the peer secret (sent with AUTH), or undefined when the
   *   cell runs without auth.
   * @param caCerts PEM roots: connect over TLS trusting them (a cell
   *   serving TLS); undefined: plain TCP.
   * @param timeouts dial and reply deadlines.
   */
  constructor(
    readonly address: string,
    private readonly secret: string | undefined,
    private readonly caCerts?: string[],
    timeouts: PeerTimeouts = {},
  ) {
    this.#connectMs = timeouts.connectMs ?? 5_000;
    this.#replyMs = timeouts.replyMs ?? 10_000;
  }

  /** Sends a command; resolves to its reply. @throws Error when the link breaks. */
  call(args: readonly (Uint8Array | string)[]): Promise<RespValue> {
    if (this.#closed) return Promise.reject(new Error("closed"));
    const p = Promise.withResolvers<RespValue>();
    if (!this.#conn && !this.#connecting) this.#connect();
    this.#out.command(args);
    this.#pending.push({
      resolve: p.resolve as (v: RespValue | Uint8Array) => void,
      reject: p.reject,
      raw: false,
      since: performance.now(),
    });
    this.#watch();
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    }
    return p.promise;
  }

  /**
   * Sends a command already encoded (`head` then `body`, written as they
   * are); resolves to its reply's bytes, unparsed (a forwarder copies them
   * to its client). @throws Error when the link breaks.
   */
  callRaw(head: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error("closed"));
    const p = Promise.withResolvers<Uint8Array>();
    if (!this.#conn && !this.#connecting) this.#connect();
    this.#out.raw(head).raw(body);
    this.#pending.push({
      resolve: p.resolve as (v: RespValue | Uint8Array) => void,
      reject: p.reject,
      raw: true,
      since: performance.now(),
    });
    this.#watch();
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    }
    return p.promise;
  }

  #connect(): void {
    const i = this.address.lastIndexOf(":");
    const to = {
      hostname: this.address.slice(0, i),
      port: Number(this.address.slice(i + 1)),
    };
    const ms = this.#connectMs;
    this.#connecting = connectWithin<Deno.Conn>(
      this.caCerts
        ? Deno.connectTls({ ...to, caCerts: this.caCerts })
        : Deno.connect(to),
      ms,
      () => new Error(`cannot connect to ${this.address} within ${ms} ms`),
    );
    this.#connecting.then((conn) => {
      // (A TLS connection has no setNoDelay in Deno.)
      if (!this.caCerts) (conn as Deno.TcpConn).setNoDelay(true);
      this.#conn = conn;
      this.#connecting = undefined;
      void this.#readLoop(conn);
    }, (e) => this.#fail(e));
    if (this.secret !== undefined) {
      // First in the buffer: the AUTH reply is consumed here.
      const auth = Promise.withResolvers<RespValue>();
      auth.promise.then((v) => {
        if (v.type === "error") this.#fail(new Error(`peer AUTH: ${v.value}`));
      }, () => {});
      this.#out.command(["AUTH", this.secret]);
      this.#pending.push({
        resolve: auth.resolve as (v: RespValue | Uint8Array) => void,
        reject: auth.reject,
        raw: false,
        since: performance.now(),
      });
    }
  }

  async #flush(): Promise<void> {
    try {
      const conn = this.#conn ?? await this.#connecting;
      if (!conn) return;
      while (this.#out.length > 0) {
        const data = this.#out.take();
        for (let off = 0; off < data.length;) {
          off += await conn.write(data.subarray(off));
        }
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#flushing = false;
      if (this.#out.length > 0 && !this.#closed && this.#conn) {
        this.#flushing = true;
        queueMicrotask(() => void this.#flush());
      }
    }
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    const parser = new RespReplyParser();
    const buf = new Uint8Array(64 << 10);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("the peer closed the connection");
        parser.push(buf.subarray(0, n));
        for (;;) {
          const w = this.#pending[0];
          if (!w) {
            if (parser.buffered > 0) {
              throw new RespProtocolError("a reply nobody asked for");
            }
            break;
          }
          const v = w.raw ? parser.nextRaw() : parser.next();
          if (v === undefined) break;
          this.#pending.shift();
          w.resolve(v);
          if (this.#pending.length === 0) this.#unwatch();
        }
      }
    } catch (e) {
      // Only if still current: a replaced connection fails nothing new.
      if (this.#conn === conn) this.#fail(e);
    }
  }

  /** Arms the reply deadline of the oldest command, if not armed. */
  #watch(): void {
    if (this.#watchdog !== undefined) return;
    const oldest = this.#pending[0];
    if (!oldest) return;
    const left = oldest.since + this.#replyMs - performance.now();
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      const first = this.#pending[0];
      if (!first) return;
      if (performance.now() - first.since >= this.#replyMs) {
        this.#fail(
          new Error(`no reply from ${this.address} within ${this.#replyMs} ms`),
        );
      } else this.#watch();
    }, Math.max(0, left));
    Deno.unrefTimer(this.#watchdog);
  }

  #unwatch(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
  }

  #fail(e: unknown): void {
    this.#unwatch();
    const err = e instanceof Error ? e : new Error(String(e));
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#conn = undefined;
    this.#connecting = undefined;
    this.#out.reset();
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.reject(err);
  }

  /** Closes the connection; commands in flight fail. */
  close(): void {
    this.#closed = true;
    this.#fail(new Error("closed"));
  }
}
