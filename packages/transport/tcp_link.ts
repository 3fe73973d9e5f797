import type { Link } from "./rpc_session.ts";
import { TransportError } from "./transport_error.ts";

/** Options of a {@link TcpLink}. */
export interface TcpLinkOptions {
  /** Bytes queued (not yet written) before writers wait (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Called once when a write fails (the peer is gone). */
  onBroken(error: unknown): void;
}

interface Waiter {
  build: () => Uint8Array;
  resolve: () => void;
  reject: (e: unknown) => void;
}

// Small frames written together: one syscall and one TCP segment for many.
const BATCH_BYTES = 64 * 1024;
// A goodbye that cannot be written in this long is given up on.
const CLOSE_GRACE_MS = 2_000;

/**
 * The write side of a TCP connection: a bounded FIFO queue of frames and one
 * writer that drains it, batching small frames. Writers wait (in order) when
 * the queue holds `maxQueuedBytes`, so memory stays bounded however fast
 * they produce.
 */
export class TcpLink implements Link {
  readonly #conn: Deno.Conn;
  readonly #max: number;
  readonly #onBroken: (error: unknown) => void;
  readonly #queue: Uint8Array[] = [];
  readonly #waiters: Waiter[] = [];
  #queuedBytes = 0;
  #writing = false;
  #closing = false;
  #last: Uint8Array | undefined;
  #shut = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;

  /** @param conn the socket; @param options limits and failure callback. */
  constructor(conn: Deno.Conn, options: TcpLinkOptions) {
    this.#conn = conn;
    this.#max = options.maxQueuedBytes ?? 1024 * 1024;
    this.#onBroken = options.onBroken;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** See {@link Link.write}. */
  write(build: () => Uint8Array): Promise<void> {
    if (this.#closing) return Promise.reject(closedError());
    if (this.#waiters.length === 0 && this.#queuedBytes < this.#max) {
      try {
        this.#enqueue(build());
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) =>
      this.#waiters.push({ build, resolve, reject })
    );
  }

  /** See {@link Link.close}: flushes what is queued, then `last`, then closes. */
  close(last?: Uint8Array): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#last = last;
    for (const w of this.#waiters.splice(0)) w.reject(closedError());
    this.#graceTimer = setTimeout(() => this.#shutdown(), CLOSE_GRACE_MS);
    if (!this.#writing) this.#pump();
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) this.#pump();
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#shut) {
        const batch = this.#takeBatch();
        await this.#writeAll(batch);
        this.#queuedBytes -= batch.length;
        this.#admitWaiters();
      }
      if (this.#closing && !this.#shut) {
        if (this.#last) await this.#writeAll(this.#last);
        this.#shutdown();
      }
    } catch (e) {
      this.#shutdown();
      this.#onBroken(e);
      for (const w of this.#waiters.splice(0)) w.reject(e);
    } finally {
      this.#writing = false;
    }
  }

  #takeBatch(): Uint8Array {
    const first = this.#queue.shift()!;
    if (this.#queue.length === 0 || first.length >= BATCH_BYTES) return first;
    let size = first.length;
    let count = 0;
    while (
      count < this.#queue.length &&
      size + this.#queue[count]!.length <= BATCH_BYTES
    ) size += this.#queue[count++]!.length;
    if (count === 0) return first;
    const out = new Uint8Array(size);
    out.set(first);
    let at = first.length;
    for (const b of this.#queue.splice(0, count)) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#queuedBytes < this.#max) {
      const w = this.#waiters.shift()!;
      try {
        const bytes = w.build();
        this.#queue.push(bytes);
        this.#queuedBytes += bytes.length;
        w.resolve();
      } catch (e) {
        w.reject(e);
      }
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  #shutdown(): void {
    clearTimeout(this.#graceTimer);
    if (this.#shut) return;
    this.#shut = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer or the runtime: nothing left to release.
    }
  }
}

function closedError(): TransportError {
  return new TransportError("closed", "the connection is closing");
}
