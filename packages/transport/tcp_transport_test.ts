import assert from "node:assert/strict";
import { encodeFrame, isCodecError } from "@strata/codec";
import {
  Echo,
  type Messages,
  messages,
  Note,
  otherMessages,
  Slow,
} from "./_test_messages.ts";
import type { Envelope } from "./message_kinds.ts";
import {
  connectTcp,
  listenTcp,
  type TcpServerOptions,
} from "./tcp_transport.ts";
import type { TcpConnection } from "./tcp_transport.ts";
import { isTransportError, type TransportError } from "./transport_error.ts";
import { unconnectablePort, within } from "./_test_net.ts";

type M = Messages;

/** The seq of an Echo or Note reply (-1 for others). */
function seq(e: Envelope<M>): number {
  return "seq" in e.message ? e.message.seq : -1;
}

function echoServer(extra: Partial<TcpServerOptions<M>> = {}) {
  const notes: Envelope<M>[] = [];
  const server = listenTcp<M>({
    set: messages,
    handlers: {
      onMessage: (m) => void notes.push(m),
      async onRequest(req) {
        if (req.type === "Echo") {
          return {
            type: "Echo",
            message: { ...req.message, text: req.message.text.toUpperCase() },
          };
        }
        if (req.type === "Slow") {
          await new Promise((r) => setTimeout(r, req.message.ms));
          return { type: "Slow", message: req.message };
        }
        throw new Error("notes are not calls");
      },
    },
    ...extra,
  });
  return { server, notes };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("two nodes exchange calls and ordered one-way messages over TCP", async () => {
  const { server, notes } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    const reply = await client.call(Echo, { seq: 1, text: "hi" });
    assert.deepEqual(reply, { type: "Echo", message: { seq: 1, text: "HI" } });
    for (let i = 0; i < 200; i++) {
      await client.send(Note, { seq: i, from: "n1", term: 3 });
    }
    await until(() => notes.length === 200);
    assert.deepEqual(
      notes.map((n) => n.type === "Note" ? n.message.seq : -1),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.deepEqual(notes[199]!.message, { seq: 199, from: "n1", term: 3 });
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("many calls in flight each get their own reply", async () => {
  const { server } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    // Replies come back out of order: the slow ones finish last.
    const calls = Array.from(
      { length: 64 },
      (_, i) =>
        i % 8 === 0
          ? client.call(Slow, { ms: 50, blob: new Uint8Array([i]) })
          : client.call(Echo, { seq: i, text: `m${i}` }),
    );
    const replies = await Promise.all(calls);
    replies.forEach((r, i) => {
      if (i % 8 === 0) {
        assert.equal(r.type, "Slow");
        assert.deepEqual([...(r.message as { blob: Uint8Array }).blob], [i]);
      } else assert.deepEqual(r.message, { seq: i, text: `M${i}` });
    });
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("a call fails with timeout or cancelled, and a late reply is dropped", async () => {
  const { server } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    await assert.rejects(
      client.call(Slow, { ms: 300, blob: new Uint8Array() }, { timeoutMs: 30 }),
      (e) => isTransportError(e, "timeout"),
    );
    const ac = new AbortController();
    const p = client.call(Slow, { ms: 300, blob: new Uint8Array() }, {
      signal: ac.signal,
    });
    ac.abort();
    await assert.rejects(p, (e) => isTransportError(e, "cancelled"));
    await new Promise((r) => setTimeout(r, 350));
    // The connection is still fine after the late replies arrived.
    assert.equal(seq(await client.call(Echo, { seq: 5, text: "ok" })), 5);
    assert.equal(client.inFlight, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("a failing handler fails only that call, with remote_error", async () => {
  const { server } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    await assert.rejects(
      client.call(Note, { seq: 1, from: "x", term: 1 }),
      (e) =>
        isTransportError(e, "remote_error") &&
        /notes are not calls/.test(e.message),
    );
    assert.equal(seq(await client.call(Echo, { seq: 2, text: "a" })), 2);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("a different message set is rejected at the handshake on both sides", async () => {
  let serverSide: TcpConnection<M> | undefined;
  const { server } = echoServer({ onConnection: (c) => serverSide = c });
  try {
    await assert.rejects(
      connectTcp({ port: server.port }, { set: otherMessages }),
      (e) => isTransportError(e, "fingerprint_mismatch"),
    );
    await until(() => serverSide !== undefined);
    const why = await serverSide!.closed;
    assert.equal(why.code, "fingerprint_mismatch");
  } finally {
    await server.close();
  }
});

Deno.test("peers configured with different differential encoding are refused at the handshake", async () => {
  let serverSide: TcpConnection<M> | undefined;
  const { server } = echoServer({ onConnection: (c) => serverSide = c });
  try {
    await assert.rejects(
      connectTcp<M>({ port: server.port }, {
        set: messages,
        differential: false,
      }),
      (e) =>
        isTransportError(e, "handshake_failed") &&
        /differential encoding/.test(e.message),
    );
    await until(() => serverSide !== undefined);
    assert.equal((await serverSide!.closed).code, "handshake_failed");
  } finally {
    await server.close();
  }
});

Deno.test("a wrong or missing shared secret is rejected before any message", async () => {
  let served = 0;
  const { server } = echoServer({
    secret: "correct horse",
    handlers: {
      onMessage: () => served++,
      onRequest: () => {
        served++;
        return { type: "Echo", message: { seq: 0, text: "" } };
      },
    },
  });
  try {
    await assert.rejects(
      connectTcp<M>({ port: server.port }, { set: messages, secret: "wrong" }),
      (e) => isTransportError(e, "auth_failed"),
    );
    await assert.rejects(
      connectTcp<M>({ port: server.port }, { set: messages }),
      (e) => isTransportError(e, "auth_failed"),
    );
    const ok = await connectTcp<M>({ port: server.port }, {
      set: messages,
      secret: "correct horse",
    });
    await ok.call(Echo, { seq: 1, text: "x" });
    assert.equal(served, 1);
    await ok.close();
  } finally {
    await server.close();
  }
});

Deno.test("a raw peer that sends a message before the handshake is dropped unprocessed", async () => {
  let served = 0;
  let serverSide: TcpConnection<M> | undefined;
  const { server } = echoServer({
    handlers: { onMessage: () => served++ },
    onConnection: (c) => serverSide = c,
  });
  try {
    const raw = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    await raw.write(
      messages.encodeFrame(Note, { seq: 1, from: "evil", term: 1 }),
    );
    await until(() => serverSide !== undefined);
    const why = await serverSide!.closed;
    assert.equal(why.code, "protocol_error");
    assert.equal(served, 0);
    raw.close();
  } finally {
    await server.close();
  }
});

async function attack(
  bytes: Uint8Array,
  then: "close" | "hold",
  expect: (e: TransportError) => boolean,
): Promise<void> {
  const sessions: TcpConnection<M>[] = [];
  const { server } = echoServer({
    frameTimeoutMs: 300,
    maxFrameBytes: 4096,
    onConnection: (c) => sessions.push(c),
  });
  const good = await connectTcp<M>({ port: server.port }, { set: messages });
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await raw.write(bytes);
    if (then === "close") raw.closeWrite();
    await until(() => sessions.length === 2);
    const why = await sessions[1]!.closed;
    assert.ok(expect(why), `${why.code}: ${why.message}`);
    // The server keeps serving its other connection.
    const r = await good.call(Echo, { seq: 9, text: "still here" });
    assert.equal(seq(r), 9);
  } finally {
    raw.close();
    await good.close();
    await server.close();
  }
}

const codecCause = (code: string) => (e: TransportError) =>
  e.code === "frame_error" && isCodecError(e.cause) && e.cause.code === code;

Deno.test("garbage bytes close that connection with a frame error", () =>
  attack(
    new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
    "hold",
    codecCause("bad_magic"),
  ));

Deno.test("wrong magic closes that connection with a frame error", () => {
  const frame = encodeFrame({ type: 1, flags: 0, payload: new Uint8Array(4) });
  frame[1] = 0x00;
  return attack(frame, "hold", codecCause("bad_magic"));
});

Deno.test("an oversized length prefix is refused from the header alone", () => {
  const header = encodeFrame({ type: 1, flags: 0, payload: new Uint8Array(0) })
    .subarray(0, 10);
  new DataView(header.buffer, header.byteOffset).setUint32(6, 0xfffffff0, true);
  return attack(header, "hold", codecCause("too_large"));
});

Deno.test("a frame truncated by the end of the stream is a frame error", () => {
  const frame = encodeFrame({ type: 0, flags: 0, payload: new Uint8Array(40) });
  return attack(frame.subarray(0, 20), "close", codecCause("truncated"));
});

Deno.test("a corrupted frame fails its checksum", () => {
  const frame = encodeFrame({ type: 0, flags: 0, payload: new Uint8Array(40) });
  frame[15]! ^= 1;
  return attack(frame, "hold", codecCause("checksum_mismatch"));
});

Deno.test("a slow sender that never finishes a frame is timed out", () => {
  const frame = encodeFrame({ type: 0, flags: 0, payload: new Uint8Array(40) });
  return attack(frame.subarray(0, 25), "hold", (e) => e.code === "timeout");
});

Deno.test("a frame over the receiver's limit closes the connection; the sender learns why", async () => {
  const { server } = echoServer({ maxFrameBytes: 1024 });
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    await assert.rejects(
      client.call(Slow, { ms: 0, blob: new Uint8Array(5000) }),
      (e) => isTransportError(e, "frame_error"),
    );
    const why = await client.closed;
    assert.equal(why.code, "frame_error");
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("sending a frame over this side's limit fails that send only", async () => {
  const { server } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, {
    set: messages,
    maxFrameBytes: 1024,
  });
  try {
    await assert.rejects(
      client.send(Slow, { ms: 0, blob: new Uint8Array(5000) }),
      (e) => isTransportError(e, "frame_error"),
    );
    assert.equal(seq(await client.call(Echo, { seq: 3, text: "" })), 3);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("closing a connection fails its calls in flight with closed", async () => {
  const { server } = echoServer();
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    const p = client.call(Slow, { ms: 1000, blob: new Uint8Array() });
    await new Promise((r) => setTimeout(r, 20));
    await client.close();
    await assert.rejects(p, (e) => isTransportError(e, "closed"));
    await assert.rejects(
      client.send(Note, { seq: 1, from: "", term: 0 }),
      (e) => isTransportError(e, "closed"),
    );
  } finally {
    await server.close();
  }
});

Deno.test("a dial to a peer that never answers gives up after connectTimeoutMs", async () => {
  // Without a deadline the dial waits out the kernel's SYN resends (about
  // two minutes); `within` fails the test after 3 s instead.
  const peer = await unconnectablePort();
  try {
    const t0 = performance.now();
    await assert.rejects(
      within(
        connectTcp<M>({ port: peer.port }, {
          set: messages,
          connectTimeoutMs: 300,
        }),
        3_000,
        "the dial",
      ),
      (e) =>
        isTransportError(e) && e.code === "connection_lost" &&
        /within 300 ms/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 2_000);
  } finally {
    peer.close();
  }
});
