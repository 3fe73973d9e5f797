import assert from "node:assert/strict";
import { encodeFrame } from "@strata/codec";
import { Echo, type Messages, messages, Note, Slow } from "./_test_messages.ts";
import { FRAME_FLAGS } from "./control_frames.ts";
import { Handshake } from "./handshake.ts";
import type { Envelope } from "./message_kinds.ts";
import { RpcSession, type SessionOptions } from "./rpc_session.ts";
import { isTransportError } from "./transport_error.ts";
import type { Handlers } from "./transport.ts";
import { type CancelTimer, realTimers, type Timers } from "./scheduler.ts";

/** How {@link pair} wires its two sessions. */
interface Wiring {
  options?: SessionOptions;
  secrets?: [string?, string?];
  /** The client's timers (the server's are real). */
  clientTimers?: Timers;
  /** The server's answer (default: the request echoed). */
  onRequest?: Handlers<Messages>["onRequest"];
  /**
   * Hands a frame to the other end; default: on a later task, like a
   * socket would.
   */
  deliver?: (frame: Uint8Array, to: RpcSession<Messages>) => void;
}

/**
 * Two sessions wired back to back in memory, counting bytes each way and
 * keeping the one-way messages either received.
 */
function pair(w: Wiring = {}) {
  const received: Envelope<Messages>[] = [];
  const bytes = { ab: 0, ba: 0 };
  const ends: { a?: RpcSession<Messages>; b?: RpcSession<Messages> } = {};
  const deliver = w.deliver ??
    ((frame, to) => setTimeout(() => to.receive(frame), 0));
  const onRequest = w.onRequest ?? ((r: Envelope<Messages>) => r);
  const make = (role: "client" | "server", secret?: string) =>
    new RpcSession<Messages>({
      set: messages,
      peer: role === "client" ? "b" : "a",
      timers: role === "client" ? w.clientTimers ?? realTimers : realTimers,
      handlers: {
        onMessage: (m) => void received.push(m),
        onRequest,
      },
      handshake: new Handshake({
        role,
        fingerprint: messages.fingerprint,
        secret,
        nonce: crypto.getRandomValues(new Uint8Array(32)),
      }),
      options: w.options ?? {},
      link: {
        write(build) {
          const frame = build();
          if (role === "client") bytes.ab += frame.length;
          else bytes.ba += frame.length;
          deliver(frame, (role === "client" ? ends.b : ends.a)!);
          return Promise.resolve();
        },
        close() {},
      },
    });
  const a = ends.a = make("client", w.secrets?.[0]);
  const b = ends.b = make("server", w.secrets?.[1]);
  a.start();
  b.start();
  return { a, b, received, bytes };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.ok(cond());
};

Deno.test("repeated messages cost a fraction of the bytes with differential encoding", async () => {
  const sizes: number[] = [];
  for (const differential of [true, false]) {
    const { a, received, bytes } = pair({ options: { differential } });
    await a.ready;
    const start = bytes.ab;
    for (let i = 0; i < 100; i++) {
      await a.send(Note, { seq: 7, from: "node-1.eu-west", term: 12 });
    }
    await until(() => received.length === 100);
    assert.ok(
      received.every((m) =>
        JSON.stringify(m.message) ===
          JSON.stringify({ seq: 7, from: "node-1.eu-west", term: 12 })
      ),
    );
    sizes.push(bytes.ab - start);
    await a.close();
  }
  const [diffed, plain] = sizes as [number, number];
  assert.ok(diffed < plain * 0.65, `${diffed} vs ${plain} bytes`);
});

Deno.test("a fresh connection starts without bases, so the first message is whole", async () => {
  const note = { seq: 1, from: "x", term: 1 };
  const whole = messages.encodeFrame(Note, note).length;
  const costs: number[] = [];
  for (let conn = 0; conn < 2; conn++) {
    const { a, bytes, received } = pair();
    await a.ready;
    for (let i = 0; i < 2; i++) {
      const before = bytes.ab;
      await a.send(Note, note);
      costs.push(bytes.ab - before);
    }
    await until(() => received.length === 2);
    await a.close();
  }
  // Whole, diff; then on the new connection whole again, diff.
  assert.equal(costs[0], whole);
  assert.equal(costs[2], whole);
  assert.ok(costs[1]! < whole && costs[3] === costs[1]);
});

Deno.test("a diff without a base closes the connection with a protocol error", async () => {
  const { a, b } = pair();
  await a.ready;
  await b.ready;
  // A diff frame for Note (bitmap: no field changed) that has no base on b.
  const diff = encodeFrame({
    type: messages.typeId(Note),
    flags: FRAME_FLAGS.differential,
    payload: new Uint8Array([0]),
  });
  b.receive(diff);
  const why = await b.closed;
  assert.equal(why.code, "protocol_error");
  await a.close();
});

Deno.test("the handshake with a shared secret lets matching peers talk", async () => {
  const { a, b } = pair({ secrets: ["s3cret", "s3cret"] });
  await Promise.all([a.ready, b.ready]);
  const r = await a.call(Echo, { seq: 4, text: "t" });
  assert.deepEqual(r.message, { seq: 4, text: "t" });
  await a.close();
});

Deno.test("per-kind settings keep a kind whole while others are diffed", async () => {
  const { a, received, bytes } = pair({
    options: { differential: { enabled: (name) => name !== "Note" } },
  });
  await a.ready;
  await a.send(Note, { seq: 1, from: "y", term: 2 });
  const one = bytes.ab;
  await a.send(Note, { seq: 1, from: "y", term: 2 });
  const two = bytes.ab - one;
  await until(() => received.length === 2);
  assert.equal(
    two,
    messages.encodeFrame(Note, { seq: 1, from: "y", term: 2 }).length,
  );
  await a.close();
});

Deno.test("onFrameSent reports wire bytes and the whole size a diff saved", async () => {
  const seen: Array<[string, number, number]> = [];
  const { a, received, bytes } = pair({
    options: {
      onFrameSent: (kind, wire, whole) => void seen.push([kind, wire, whole]),
    },
  });
  await a.ready;
  const start = bytes.ab;
  for (let i = 0; i < 10; i++) {
    await a.send(Note, { seq: 7, from: "node-1.eu-west", term: 12 });
  }
  await until(() => received.length === 10);
  assert.equal(seen.length, 10);
  assert.ok(seen.every(([kind]) => kind === Note.name));
  // Wire bytes add up to what the link carried; the first frame is whole.
  assert.equal(seen.reduce((n, [, wire]) => n + wire, 0), bytes.ab - start);
  assert.equal(seen[0]![1], seen[0]![2]);
  // Later frames are diffs: each would have been as large as the first.
  for (const [, wire, whole] of seen.slice(1)) {
    assert.ok(wire < whole);
    assert.equal(whole, seen[0]![2]);
  }
  await a.close();
});

Deno.test("call timeouts: each call fails at its own deadline, whatever the order, with one timer armed at a time and none once no call is left", async () => {
  let now = 0;
  const armed: Array<{ at: number; fn: () => void; live: boolean }> = [];
  const timers = {
    now: () => now,
    setTimer(ms: number, fn: () => void) {
      const t = { at: now + ms, fn, live: true };
      armed.push(t);
      return () => void (t.live = false);
    },
  };
  // Runs due timers in time order, letting each one's rejections land.
  const advance = async (to: number) => {
    for (;;) {
      const due = armed.filter((t) => t.live && t.at <= to)
        .sort((x, y) => x.at - y.at)[0];
      if (due === undefined) break;
      now = due.at;
      due.live = false;
      due.fn();
      await new Promise((r) => setTimeout(r, 0));
    }
    now = to;
  };
  // No handshake (ready at once) and a peer that never answers.
  const session = new RpcSession<Messages>({
    set: messages,
    peer: "silent",
    timers,
    link: { write: () => Promise.resolve(), close() {} },
  });
  session.start();
  const failedAt = new Map<string, number>();
  const call = (name: string, timeoutMs: number) =>
    session.call(Echo, { seq: 0, text: name }, { timeoutMs }).then(
      () => assert.fail(`${name} got a reply`),
      (e) => {
        assert.equal(e.code, "timeout", String(e));
        failedAt.set(name, now);
      },
    );
  const calls = [call("a", 1000), call("b", 300)];
  now = 100;
  calls.push(call("c", 1000), call("d", 50));
  const live = () => armed.filter((t) => t.live).length;
  assert.equal(live(), 1);
  await advance(2000);
  await Promise.all(calls);
  assert.deepEqual(
    Object.fromEntries(failedAt),
    { a: 1000, b: 300, c: 1100, d: 150 },
  );
  assert.equal(live(), 0, "nothing left to time out: no timer armed");
  // A call that ends otherwise (here: cancelled) leaves no timer behind.
  const ctl = new AbortController();
  const f = session.call(Echo, { seq: 0, text: "f" }, {
    timeoutMs: 500,
    signal: ctl.signal,
  });
  assert.equal(live(), 1);
  ctl.abort();
  await assert.rejects(f, (err: { code: string }) => err.code === "cancelled");
  assert.equal(live(), 0, "no call left: no timer armed");
  // A call after the sweeps is timed again; closing cancels its timer.
  const e = session.call(Echo, { seq: 0, text: "e" }, { timeoutMs: 500 });
  assert.equal(live(), 1);
  await session.close();
  await assert.rejects(e, (err: { code: string }) => err.code === "closed");
  assert.equal(live(), 0);
});

Deno.test("received byte strings keep their bytes while the read buffer is reused for later frames", async () => {
  // Frames arrive through one scratch buffer overwritten after each read,
  // as a socket's reader does (tcp_transport): what a message holds must be
  // the session's own bytes (its frames are not copied twice).
  const scratch = new Uint8Array(64 * 1024);
  // One-way messages and calls, in arrival order.
  const { a, b, received: got } = pair({
    options: { differential: false },
    onRequest: (r) => {
      got.push(r);
      return r;
    },
    deliver: (frame, to) =>
      setTimeout(() => {
        // In two reads, the second starting mid-frame.
        const cut = frame.length >> 1;
        for (const part of [frame.subarray(0, cut), frame.subarray(cut)]) {
          scratch.set(part);
          to.receive(scratch.subarray(0, part.length));
          scratch.fill(0xff);
        }
      }, 0),
  });
  await a.ready;
  const blobs = [1, 2, 3, 4].map((k) => new Uint8Array(700 * k).fill(k));
  const replies = [];
  for (const [k, blob] of blobs.entries()) {
    if (k % 2 === 0) await a.send(Slow, { ms: k, blob });
    else replies.push(await a.call(Slow, { ms: k, blob }));
  }
  await until(() => got.length === 4);
  for (const [k, m] of got.entries()) {
    assert.equal(m.type, "Slow");
    assert.deepEqual(
      new Uint8Array((m.message as { blob: Uint8Array }).blob),
      blobs[k],
    );
  }
  for (const [j, r] of replies.entries()) {
    assert.deepEqual(
      new Uint8Array((r.message as { blob: Uint8Array }).blob),
      blobs[2 * j + 1],
    );
  }
  await a.close();
  await b.close();
});

/** Real timers that count what the session asks of them. */
function countingTimers(withHold: boolean) {
  const n = { set: 0, cancel: 0, release: 0, hold: 0 };
  const timers: Timers = {
    now: realTimers.now,
    setTimer(ms, fn) {
      n.set++;
      const real = realTimers.setTimer(ms, fn);
      const cancel: CancelTimer = () => {
        n.cancel++;
        real();
      };
      if (withHold) {
        cancel.hold = (keep) => {
          if (keep) n.hold++;
          else n.release++;
          real.hold!(keep);
        };
      }
      return cancel;
    },
  };
  return { timers, n };
}

Deno.test("calls one at a time share one deadline timer, released while no call is pending", async () => {
  for (const withHold of [true, false]) {
    const { timers, n } = countingTimers(withHold);
    const { a, b } = pair({
      clientTimers: timers,
      // A Slow call is never answered.
      onRequest: (r) => r.type === "Slow" ? new Promise(() => {}) : r,
    });
    await a.ready;
    const before = { ...n }; // the handshake's timer apart
    for (let i = 0; i < 10; i++) {
      await a.call(Echo, { seq: i, text: "x" }, { timeoutMs: 60_000 });
    }
    if (withHold) {
      // One timer for the 10 calls, let go of after each and held again
      // by the next.
      assert.deepEqual({
        set: n.set - before.set,
        cancel: n.cancel - before.cancel,
        release: n.release,
        hold: n.hold,
      }, {
        set: 1,
        cancel: 0,
        release: 10,
        hold: 9,
      });
    } else {
      // Without hold (simulated time) each call arms and cancels its own.
      assert.equal(n.set - before.set, 10);
      assert.equal(n.cancel - before.cancel, 10);
    }
    // A call with an earlier deadline still times out on time.
    const t0 = performance.now();
    await assert.rejects(
      a.call(Slow, { ms: 0, blob: new Uint8Array(1) }, { timeoutMs: 40 }),
      (e) => isTransportError(e, "timeout"),
    );
    assert.ok(performance.now() - t0 < 2_000);
    await a.close();
    await b.close();
  }
});
