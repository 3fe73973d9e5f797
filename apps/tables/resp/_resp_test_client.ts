/**
 * A small RESP client for tests: commands, raw bytes, and the replies and
 * pub/sub pushes in arrival order.
 */
import {
  encodeCommand,
  RespReplyParser,
  type RespValue,
} from "./resp_codec.ts";

const dec = new TextDecoder();

/** One test connection. */
export class RespTestClient {
  #queue: RespValue[] = [];
  #waiters: ((v: RespValue | undefined) => void)[] = [];
  #ended = false;
  readonly done: Promise<void>;

  private constructor(private readonly conn: Deno.Conn) {
    this.done = this.#read();
  }

  /** Connects to `host:port` (over TLS trusting `caCerts` when given). */
  static async connect(
    address: string,
    caCerts?: string[],
  ): Promise<RespTestClient> {
    const i = address.lastIndexOf(":");
    const to = {
      hostname: address.slice(0, i),
      port: Number(address.slice(i + 1)),
    };
    return new RespTestClient(
      caCerts
        ? await Deno.connectTls({ ...to, caCerts })
        : await Deno.connect(to),
    );
  }

  async #read(): Promise<void> {
    const p = new RespReplyParser();
    const buf = new Uint8Array(64 << 10);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        p.push(buf.subarray(0, n));
        for (let v = p.next(); v; v = p.next()) {
          const w = this.#waiters.shift();
          if (w) w(v);
          else this.#queue.push(v);
        }
      }
    } catch { /* reset */ }
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  /** Whether the server closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Writes raw bytes. */
  async raw(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) {
      off += await this.conn.write(bytes.subarray(off));
    }
  }

  /** The next reply or push (undefined: the connection ended or timed out). */
  next(timeoutMs = 10_000): Promise<RespValue | undefined> {
    const v = this.#queue.shift();
    if (v) return Promise.resolve(v);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(undefined);
      }, timeoutMs);
      const done = (x: RespValue | undefined) => {
        clearTimeout(timer);
        resolve(x);
      };
      this.#waiters.push(done);
    });
  }

  /** Sends a command and waits for its reply. */
  async call(...args: (string | Uint8Array)[]): Promise<RespValue> {
    await this.raw(encodeCommand(args));
    const v = await this.next();
    if (!v) throw new Error(`no reply to ${args[0]}`);
    return v;
  }

  /** A reply as plain JS: strings, numbers, null, arrays; errors as {error}. */
  async js(...args: (string | Uint8Array)[]): Promise<unknown> {
    return plain(await this.call(...args));
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** A reply as plain JS values. */
export function plain(v: RespValue): unknown {
  switch (v.type) {
    case "simple":
    case "integer":
      return v.value;
    case "error":
      return { error: v.value };
    case "bulk":
      return v.value === null ? null : dec.decode(v.value);
    case "array":
      return v.value === null ? null : v.value.map(plain);
  }
}
