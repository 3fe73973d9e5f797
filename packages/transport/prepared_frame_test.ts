import assert from "node:assert/strict";
import {
  type Messages,
  messages,
  Note,
  otherMessages,
} from "./_test_messages.ts";
import type { Envelope } from "./message_kinds.ts";
import { prepareFrame } from "./prepared_frame.ts";
import { connectTcp, listenTcp } from "./tcp_transport.ts";
import { isTransportError } from "./transport_error.ts";

type M = Messages;

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) {
      throw new Error("condition not reached in time");
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("one prepared frame goes to many connections, between diffs of the same kind", async () => {
  const got = new Map<string, Envelope<M>[]>();
  const server = listenTcp<M>({ set: messages });
  const clients = await Promise.all(
    [0, 1, 2].map((i) =>
      connectTcp<M>({ port: server.port }, {
        set: messages,
        handlers: { onMessage: (m) => void got.get(`c${i}`)!.push(m) },
      })
    ),
  );
  for (let i = 0; i < 3; i++) got.set(`c${i}`, []);
  try {
    await until(() => server.connections.size === 3);
    const conns = [...server.connections];
    // A diff base first, then the shared frame, then diffs again: the
    // peers' differential state must follow the whole message.
    for (const c of conns) await c.send(Note, { seq: 1, from: "a", term: 1 });
    for (const c of conns) await c.send(Note, { seq: 2, from: "a", term: 1 });
    const shared = prepareFrame(messages, Note, { seq: 3, from: "b", term: 2 });
    await Promise.all(conns.map((c) => c.sendPrepared(shared)));
    // Against the base before the shared frame this is a diff (same
    // `from`); against the peer's base it would rebuild a wrong message.
    for (const c of conns) await c.send(Note, { seq: 4, from: "a", term: 2 });
    await until(() => [...got.values()].every((l) => l.length === 4));
    for (const l of got.values()) {
      assert.deepEqual(l.map((e) => e.message), [
        { seq: 1, from: "a", term: 1 },
        { seq: 2, from: "a", term: 1 },
        { seq: 3, from: "b", term: 2 },
        { seq: 4, from: "a", term: 2 },
      ]);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
});

Deno.test("a prepared frame of another message set or over the frame limit is refused", async () => {
  const server = listenTcp<M>({ set: messages, maxFrameBytes: 1024 });
  const client = await connectTcp<M>({ port: server.port }, { set: messages });
  try {
    await until(() => server.connections.size === 1);
    const [conn] = [...server.connections];
    const other = prepareFrame(otherMessages, Note, {
      seq: 1,
      from: "a",
      term: 1,
    });
    await assert.rejects(
      conn!.sendPrepared(other),
      (e) => isTransportError(e) && e.code === "protocol_error",
    );
    const big = prepareFrame(messages, Note, {
      seq: 1,
      from: "x".repeat(2000),
      term: 1,
    });
    await assert.rejects(
      conn!.sendPrepared(big),
      (e) => isTransportError(e) && e.code === "frame_error",
    );
  } finally {
    await client.close();
    await server.close();
  }
});
