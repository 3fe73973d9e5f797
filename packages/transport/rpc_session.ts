import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrameOf,
  type Frame,
  FRAME_HEADER_BYTES,
  FRAME_TRAILER_BYTES,
  FrameDecoder,
  isCodecError,
  type MessageSet,
  readVarint,
} from "@strata/codec";
import {
  CONTROL_TYPE,
  controlFrame,
  decodeControl,
  FRAME_FLAGS,
  peerCode,
} from "./control_frames.ts";
import {
  DifferentialDecoder,
  DifferentialEncoder,
  type DifferentialOptions,
  differentialOptions,
} from "./differential_codec.ts";
import type { Handshake, Secret } from "./handshake.ts";
import type { PreparedFrame } from "./prepared_frame.ts";
import type { AnyMessageType, Envelope, MessageOf } from "./message_kinds.ts";
import type { CancelTimer, Timers } from "./scheduler.ts";
import type { CallOptions, Handlers, Transport } from "./transport.ts";
import { isTransportError, TransportError } from "./transport_error.ts";

/**
 * The byte pipe under a session. TCP queues and writes; the in-memory
 * network hands the frame to its scheduler.
 */
export interface Link {
  /**
   * Admits one frame, in call order: `build` runs when the frame gets its
   * place in the queue (so stateful encodings see frames in wire order) and
   * the promise settles once it is queued; it waits while the queue is full.
   * Rejects with what `build` threw, or when the link is closed.
   */
  write(build: () => Uint8Array): Promise<void>;
  /** Tears the link down, after trying to deliver `last` (a goodbye). */
  close(last?: Uint8Array): void;
}

/** Limits and behaviour of a connection; every field has a default. */
export interface SessionOptions {
  /** Largest frame payload sent or accepted, bytes (default 16 MiB). */
  maxFrameBytes?: number;
  /** A frame left incomplete this long closes the connection, ms (default 10 000). */
  frameTimeoutMs?: number;
  /** The handshake must finish within this, ms (default 10 000). */
  handshakeTimeoutMs?: number;
  /** Default per-call timeout, ms (default 5 000). */
  callTimeoutMs?: number;
  /**
   * Differential encoding: on for every kind (default, `true`), off
   * (`false`), or per kind. Both peers must configure it the same.
   */
  differential?: boolean | DifferentialOptions;
  /**
   * Told about every message frame written: its kind, its bytes on the
   * wire, and the bytes it would have taken as a whole message (equal
   * unless it went as a diff). For metrics; the whole size of a diff is
   * measured (one extra encode) only when this hook is set.
   */
  onFrameSent?(kind: string, wireBytes: number, wholeBytes: number): void;
}

/** Everything a {@link RpcSession} is built from. */
export interface SessionParts<T extends readonly AnyMessageType[]> {
  set: MessageSet<T>;
  peer: string;
  link: Link;
  timers: Timers;
  handlers?: Handlers<T>;
  /** Absent: the link is trusted and ready at once (in-memory network). */
  handshake?: Handshake;
  options?: SessionOptions;
}

interface Pending<T extends readonly AnyMessageType[]> {
  resolve(reply: Envelope<T>): void;
  reject(error: TransportError): void;
  /** When the call times out (the timers' clock, ms). */
  deadline: number;
  /** Fails the call as timed out. */
  expire(): void;
}

/**
 * The protocol of one connection, independent of how bytes move: handshake,
 * frames, differential encoding, correlation ids, call timeouts and
 * cancellation, slow-sender detection. The adapter feeds it bytes
 * (`receive`, `endOfStream`) and gives it a {@link Link} to write to.
 */
export class RpcSession<T extends readonly AnyMessageType[]>
  implements Transport<T> {
  readonly peer: string;
  readonly ready: Promise<void>;
  readonly closed: Promise<TransportError>;

  readonly #set: MessageSet<T>;
  readonly #link: Link;
  readonly #timers: Timers;
  readonly #handlers: Handlers<T>;
  readonly #handshake: Handshake | undefined;
  readonly #decoder: FrameDecoder;
  readonly #encoder: DifferentialEncoder;
  readonly #diffDecoder: DifferentialDecoder;
  readonly #maxFrameBytes: number;
  readonly #frameTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #callTimeoutMs: number;
  readonly #onFrameSent: SessionOptions["onFrameSent"];
  readonly #pending = new Map<number, Pending<T>>();
  /**
   * One timer for every call's timeout (a timer per call was a visible
   * share of a small call's CPU): armed for the earliest deadline it knows
   * of, it fails the calls that are due and re-arms for the next. When no
   * call is left it stops holding the process (an idle connection, e.g.
   * an unref'd pooled one, must not keep it alive) but stays armed, so
   * calls made one at a time share it too ({@link RpcSession.#idleSweep}).
   */
  #sweepAt: number | undefined;
  #cancelSweep: CancelTimer | undefined;
  /** The sweep is armed but no call is pending: it does not hold the process. */
  #sweepIdle = false;
  #nextId = 1;
  #isReady = false;
  #failure: TransportError | undefined;
  #resolveReady!: () => void;
  #rejectReady!: (e: TransportError) => void;
  #resolveClosed!: (e: TransportError) => void;
  #cancelFrameTimer: (() => void) | undefined;
  #cancelHandshakeTimer: (() => void) | undefined;

  /** Builds the session; call {@link start} to begin. */
  constructor(parts: SessionParts<T>) {
    const o = parts.options ?? {};
    this.peer = parts.peer;
    this.#set = parts.set;
    this.#link = parts.link;
    this.#timers = parts.timers;
    this.#handlers = parts.handlers ?? {};
    this.#handshake = parts.handshake;
    this.#maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#frameTimeoutMs = o.frameTimeoutMs ?? 10_000;
    this.#handshakeTimeoutMs = o.handshakeTimeoutMs ?? 10_000;
    this.#callTimeoutMs = o.callTimeoutMs ?? 5_000;
    this.#onFrameSent = o.onFrameSent;
    this.#decoder = new FrameDecoder({ maxFrameBytes: this.#maxFrameBytes });
    const diff = differentialOptions(o.differential);
    this.#encoder = new DifferentialEncoder(diff);
    this.#diffDecoder = new DifferentialDecoder(diff);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Nobody has to await `ready`; a failed handshake also shows in `closed`.
    this.ready.catch(() => {});
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  /** Why the session ended, once it has. */
  get failure(): TransportError | undefined {
    return this.#failure;
  }

  /**
   * The secret the peer proved in the handshake (undefined before it is
   * done, or without authentication); see {@link Handshake.provenSecret}.
   */
  get provenSecret(): Secret | undefined {
    return this.#handshake?.provenSecret;
  }

  /** Calls waiting for replies. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends the hello (or becomes ready at once without a handshake). */
  start(): void {
    if (!this.#handshake) {
      this.#becomeReady();
      return;
    }
    this.#cancelHandshakeTimer = this.#timers.setTimer(
      this.#handshakeTimeoutMs,
      () =>
        this.fail(
          new TransportError(
            "handshake_failed",
            `no handshake within ${this.#handshakeTimeoutMs} ms`,
          ),
          true,
        ),
    );
    const hello = this.#handshake.hello();
    this.#link.write(() => hello).catch(() => {});
  }

  /** Feeds bytes received from the peer, in any split. */
  receive(chunk: Uint8Array): void {
    if (this.#failure) return;
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.fail(asTransportError(e, "received bytes"), true);
      return;
    }
    for (const frame of frames) {
      try {
        this.#onFrame(frame);
      } catch (e) {
        this.fail(asTransportError(e, "received frame"), true);
      }
      if (this.#failure) return;
    }
    this.#watchIncompleteFrame();
  }

  /** The peer ended its stream. */
  endOfStream(): void {
    if (this.#failure) return;
    try {
      this.#decoder.finish();
      this.fail(
        new TransportError("connection_lost", `${this.peer} closed the stream`),
      );
    } catch (e) {
      this.fail(asTransportError(e, "end of stream"));
    }
  }

  /**
   * Ends the session with `error`: calls in flight reject with it, the link
   * closes (after a goodbye telling the peer why, when `tellPeer`).
   */
  fail(error: TransportError, tellPeer = false): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#cancelFrameTimer?.();
    this.#cancelHandshakeTimer?.();
    this.#cancelSweep?.();
    this.#cancelSweep = this.#sweepAt = undefined;
    this.#sweepIdle = false;
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
    this.#rejectReady(error);
    this.#resolveClosed(error);
    const goodbye = tellPeer
      ? controlFrame([3, error.code, error.message.slice(0, 1024)])
      : undefined;
    this.#link.close(goodbye);
  }

  /** Closes on purpose; calls in flight fail with `closed`. */
  close(): Promise<void> {
    this.fail(
      new TransportError("closed", `connection to ${this.peer} was closed`),
      true,
    );
    return Promise.resolve();
  }

  /** See {@link Transport.send}. */
  send<M extends T[number]>(type: M, message: MessageOf<M>): Promise<void> {
    // Synchronous once ready: a simulator that runs events in a plain loop
    // sees the frame leave at the virtual time it was sent.
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#isReady) return this.#write(type, message, 0, undefined);
    return this.ready.then(() => this.#write(type, message, 0, undefined));
  }

  /**
   * Writes a frame encoded once for many connections (`prepareFrame`)
   * as a plain message. It goes whole, so the kind's differential base on
   * this connection is dropped (the next message of the kind goes whole
   * too, and the peer's base follows). Resolves once queued, like `send`.
   * @throws TransportError `protocol_error` when it was prepared for another
   *   message set, `frame_error` when it exceeds this side's frame limit.
   */
  sendPrepared(prepared: PreparedFrame): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (prepared.fingerprint !== this.#set.fingerprint) {
      return Promise.reject(
        new TransportError(
          "protocol_error",
          `${prepared.typeName} was prepared for another message set`,
        ),
      );
    }
    const payloadBytes = prepared.frame.length - FRAME_HEADER_BYTES -
      FRAME_TRAILER_BYTES;
    if (payloadBytes > this.#maxFrameBytes) {
      return Promise.reject(
        new TransportError(
          "frame_error",
          `${prepared.typeName} frame payload of ${payloadBytes} bytes exceeds ${this.#maxFrameBytes}`,
        ),
      );
    }
    const write = () =>
      this.#link.write(() => {
        if (this.#failure) throw this.#failure;
        this.#encoder.forget(prepared.typeId);
        const n = prepared.frame.length;
        this.#onFrameSent?.(prepared.typeName, n, n);
        return prepared.frame;
      });
    if (this.#isReady) return write();
    return this.ready.then(write);
  }

  /** See {@link Transport.call}. */
  async call<M extends T[number]>(
    type: M,
    message: MessageOf<M>,
    options: CallOptions = {},
  ): Promise<Envelope<T>> {
    const signal = options.signal;
    if (signal?.aborted) throw cancelled();
    const timeoutMs = options.timeoutMs ?? this.#callTimeoutMs;
    const id = this.#nextId++;
    let settled = false;
    const onAbort = () => finish(() => reject(cancelled()));
    let resolve!: (r: Envelope<T>) => void;
    let reject!: (e: TransportError) => void;
    const result = new Promise<Envelope<T>>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      this.#pending.delete(id);
      if (this.#pending.size === 0 && this.#cancelSweep !== undefined) {
        this.#idleSweep();
      }
      signal?.removeEventListener("abort", onAbort);
      action();
    };
    const deadline = this.#timers.now() + timeoutMs;
    this.#pending.set(id, {
      resolve: (r) => finish(() => resolve(r)),
      reject: (e) => finish(() => reject(e)),
      deadline,
      expire: () =>
        finish(() =>
          reject(
            new TransportError(
              "timeout",
              `${type.name} call to ${this.peer} got no reply in ${timeoutMs} ms`,
            ),
          )
        ),
    });
    if (!this.#failure) this.#armSweep(deadline);
    signal?.addEventListener("abort", onAbort, { once: true });
    const fail = (e: unknown) =>
      finish(() => reject(asTransportError(e, "call")));
    const write = () => {
      if (!settled) {
        this.#write(type, message, FRAME_FLAGS.request, id).catch(fail);
      }
    };
    if (this.#failure) fail(this.#failure);
    else if (this.#isReady) write();
    else this.ready.then(write, fail);
    return await result;
  }

  #write(
    type: AnyMessageType,
    message: unknown,
    flags: number,
    id: number | undefined,
  ): Promise<void> {
    let typeId: number;
    try {
      typeId = this.#set.typeId(type);
    } catch (e) {
      return Promise.reject(asTransportError(e, "send"));
    }
    return this.#link.write(() => {
      if (this.#failure) throw this.#failure;
      const body = this.#encoder.encode(typeId, type, message);
      let frame: Uint8Array;
      try {
        // The id and the body go straight into the frame: a large message
        // (a record-append batch) is copied once, not twice.
        frame = encodeFrameOf(
          typeId,
          flags | (body.differential ? FRAME_FLAGS.differential : 0),
          id,
          body.bytes,
          this.#maxFrameBytes,
        );
      } catch (e) {
        throw asTransportError(e, `${type.name} frame`);
      }
      body.commit();
      const onSent = this.#onFrameSent;
      if (onSent) {
        const whole = body.differential
          ? frame.length - body.bytes.length + type.encode(message).length
          : frame.length;
        onSent(type.name, frame.length, whole);
      }
      return frame;
    });
  }

  /** Makes sure the sweep runs by `deadline`. */
  #armSweep(deadline: number): void {
    if (this.#sweepAt !== undefined && this.#sweepAt <= deadline) {
      if (this.#sweepIdle) {
        this.#cancelSweep!.hold!(true);
        this.#sweepIdle = false;
      }
      return;
    }
    if (!Number.isFinite(deadline)) return;
    this.#cancelSweep?.();
    this.#sweepAt = deadline;
    this.#sweepIdle = false;
    this.#cancelSweep = this.#timers.setTimer(
      Math.max(0, deadline - this.#timers.now()),
      () => this.#sweep(),
    );
  }

  /**
   * No call is pending. A timer that can stop holding the process stays
   * armed (the next call's deadline is later: it needs no timer of its
   * own), so a connection whose calls come one at a time — a commit log's
   * appends — does not arm and cancel a timer per call (a `setTimeout` and
   * `clearTimeout` cost several µs); others are cancelled.
   */
  #idleSweep(): void {
    const cancel = this.#cancelSweep!;
    if (cancel.hold === undefined) {
      cancel();
      this.#cancelSweep = this.#sweepAt = undefined;
    } else if (!this.#sweepIdle) {
      cancel.hold(false);
      this.#sweepIdle = true;
    }
  }

  /** Fails the calls that are due; re-arms for the earliest one left. */
  #sweep(): void {
    this.#cancelSweep = this.#sweepAt = undefined;
    this.#sweepIdle = false;
    const now = this.#timers.now();
    let next = Infinity;
    for (const p of [...this.#pending.values()]) {
      if (p.deadline <= now) p.expire();
      else if (p.deadline < next) next = p.deadline;
    }
    if (next !== Infinity && !this.#failure) this.#armSweep(next);
  }

  #becomeReady(): void {
    this.#isReady = true;
    this.#cancelHandshakeTimer?.();
    this.#resolveReady();
  }

  #watchIncompleteFrame(): void {
    if (this.#decoder.buffered === 0) {
      this.#cancelFrameTimer?.();
      this.#cancelFrameTimer = undefined;
    } else if (!this.#cancelFrameTimer) {
      // The clock starts when a frame starts, so a trickle does not reset it.
      this.#cancelFrameTimer = this.#timers.setTimer(
        this.#frameTimeoutMs,
        () =>
          this.fail(
            new TransportError(
              "timeout",
              `${this.peer} left a frame incomplete for ${this.#frameTimeoutMs} ms`,
            ),
            true,
          ),
      );
    }
  }

  #onFrame(frame: Frame): void {
    if (frame.type === CONTROL_TYPE) {
      const control = decodeControl(frame.payload);
      if (control[0] === 3) {
        const code = peerCode(control[1]);
        throw new TransportError(
          code === "closed" ? "connection_lost" : code,
          `${this.peer} closed the connection: ${control[2]}`,
        );
      }
      if (!this.#isReady && this.#handshake) {
        const step = this.#handshake.receive(control);
        for (const bytes of step.send) {
          this.#link.write(() => bytes).catch(() => {});
        }
        if (step.done) this.#becomeReady();
        return;
      }
      if (control[0] === 4 && frame.flags & FRAME_FLAGS.response) {
        const [, id, code, text] = control;
        this.#pending.get(id)?.reject(
          new TransportError(peerCode(code), `${this.peer}: ${text}`),
        );
        return;
      }
      throw new TransportError(
        "protocol_error",
        `unexpected control message ${control[0]}`,
      );
    }
    if (!this.#isReady) {
      throw new TransportError(
        "protocol_error",
        "a message arrived before the handshake finished",
      );
    }
    const kind = this.#set.byId(frame.type);
    if (!kind) {
      throw new TransportError(
        "protocol_error",
        `message type ${frame.type} is unknown to this side's message set`,
      );
    }
    const isRequest = (frame.flags & FRAME_FLAGS.request) !== 0;
    const isResponse = (frame.flags & FRAME_FLAGS.response) !== 0;
    if (isRequest && isResponse) {
      throw new TransportError(
        "protocol_error",
        "a frame flagged as both request and response",
      );
    }
    let id = 0;
    let at = 0;
    if (isRequest || isResponse) {
      try {
        ({ value: id, next: at } = readVarint(frame.payload, 0));
      } catch (e) {
        throw asTransportError(e, "call id");
      }
    }
    // Decoded even when nobody waits (a late reply): the diff state must
    // follow every frame of the kind.
    const message = this.#diffDecoder.decode(
      frame.type,
      kind,
      frame.payload.subarray(at),
      (frame.flags & FRAME_FLAGS.differential) !== 0,
      // The frame decoder's payload is a copy of its own: not copied again.
      true,
    );
    const envelope = { type: kind.name, message } as Envelope<T>;
    if (isResponse) this.#pending.get(id)?.resolve(envelope);
    else if (isRequest) this.#serve(id, envelope);
    else {
      try {
        this.#handlers.onMessage?.(envelope, this);
      } catch (e) {
        this.#handlers.onError?.(e, this);
      }
    }
  }

  #serve(id: number, request: Envelope<T>): void {
    const handler = this.#handlers.onRequest;
    const replyError = (code: string, text: string) => {
      if (this.#failure) return;
      const bytes = controlFrame(
        [4, id, code, text.slice(0, 4096)],
        FRAME_FLAGS.response | FRAME_FLAGS.error,
      );
      this.#link.write(() => bytes).catch(() => {});
    };
    if (!handler) {
      replyError("remote_error", `${this.peer}'s peer serves no requests`);
      return;
    }
    const onError = (e: unknown) => {
      if (isTransportError(e)) replyError(e.code, e.message);
      else {
        replyError(
          "remote_error",
          `${request.type} handler failed: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      }
    };
    const answer = (reply: Envelope<T>) => {
      if (this.#failure) return;
      const type = this.#set.byId(this.#set.typeId(reply.type))!;
      this.#write(type, reply.message, FRAME_FLAGS.response, id).catch(
        onError,
      );
    };
    // A synchronous handler answers synchronously (see send).
    try {
      const reply = handler(request, this);
      if (reply instanceof Promise) {
        reply.then((r) => {
          try {
            answer(r);
          } catch (e) {
            onError(e);
          }
        }, onError);
      } else answer(reply);
    } catch (e) {
      onError(e);
    }
  }
}

function cancelled(): TransportError {
  return new TransportError("cancelled", "the call was aborted");
}

/** Wraps anything thrown into a TransportError (codec failures keep their cause). */
export function asTransportError(e: unknown, context: string): TransportError {
  if (e instanceof TransportError) return e;
  if (isCodecError(e)) return TransportError.fromCodec(e, context);
  return new TransportError(
    "protocol_error",
    `${context}: ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}
