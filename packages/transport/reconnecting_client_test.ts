import assert from "node:assert/strict";
import {
  Echo,
  type Messages,
  messages,
  otherMessages,
  Slow,
} from "./_test_messages.ts";
import { backoffDelay } from "./backoff.ts";
import { ReconnectingClient } from "./reconnecting_client.ts";
import { listenTcp } from "./tcp_transport.ts";
import { isTransportError } from "./transport_error.ts";

const peerScript = new URL("./_test_peer_process.ts", import.meta.url).pathname;

/** Starts the peer process and waits for the port it listens on. */
async function startPeer(port = 0) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", peerScript, String(port)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/port (\d+)\n/.test(text)) {
    if (Date.now() > deadline) throw new Error("peer did not start");
    const { value, done } = await reader.read();
    if (done) throw new Error(`peer exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  await child.stdout.cancel();
  return { child, port: Number(/port (\d+)/.exec(text)![1]) };
}

function kill(child: Deno.ChildProcess): Promise<Deno.CommandStatus> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
  return child.status;
}

Deno.test("backoff grows exponentially to its cap and jitters down only", () => {
  const policy = { initialMs: 10, maxMs: 1000, multiplier: 2, jitter: 0.5 };
  assert.equal(backoffDelay(0, policy, () => 0), 10);
  assert.equal(backoffDelay(3, policy, () => 0), 80);
  assert.equal(backoffDelay(20, policy, () => 0), 1000);
  assert.equal(
    backoffDelay(20, policy, () => 0.999999),
    1000 * (1 - 0.4999995),
  );
  for (let a = 0; a < 30; a++) {
    const d = backoffDelay(a, policy, Math.random);
    assert.ok(d >= 5 && d <= 1000);
  }
});

Deno.test("killing the peer mid-stream fails calls in flight fast, and the client reconnects", async () => {
  let first = await startPeer();
  let second: Awaited<ReturnType<typeof startPeer>> | undefined;
  const client = new ReconnectingClient<Messages>({ port: first.port }, {
    set: messages,
    backoff: { initialMs: 20, maxMs: 200 },
    callTimeoutMs: 20_000,
  });
  try {
    await client.ready;
    const r = await client.call(Echo, { seq: 1, text: "a" });
    assert.deepEqual(r.message, { seq: 1, text: "a" });
    // Calls that would take 10 s each, in flight when the peer dies.
    const inFlight = Array.from(
      { length: 16 },
      (_, i) =>
        client.call(Slow, { ms: 10_000, blob: new Uint8Array([i]) }).then(
          () => "replied",
          (e) => e,
        ),
    );
    await new Promise((r) => setTimeout(r, 100));
    const killedAt = performance.now();
    await kill(first.child);
    const outcomes = await Promise.all(inFlight);
    const failedAfter = performance.now() - killedAt;
    for (const o of outcomes) {
      assert.ok(isTransportError(o, "connection_lost"), String(o));
    }
    assert.ok(
      failedAfter < 5_000,
      `in-flight calls took ${failedAfter} ms to fail`,
    );
    second = await startPeer(first.port);
    const again = await client.call(Echo, { seq: 2, text: "b" }, {
      timeoutMs: 20_000,
    });
    assert.deepEqual(again.message, { seq: 2, text: "b" });
    assert.equal(client.connections, 2);
  } finally {
    await client.close();
    await kill(first.child);
    if (second) await kill(second.child);
    first = undefined!;
  }
});

Deno.test("a client refused for its message set fails its waiting calls with that reason", async () => {
  const server = listenTcp({ set: messages });
  const client = new ReconnectingClient({ port: server.port }, {
    set: otherMessages,
    backoff: { initialMs: 20, maxMs: 50 },
  });
  try {
    await assert.rejects(
      client.ready,
      (e) => isTransportError(e, "fingerprint_mismatch"),
    );
    assert.equal(client.lastError?.code, "fingerprint_mismatch");
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("calls made while disconnected wait for the connection up to their timeout", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const client = new ReconnectingClient<Messages>({ port }, {
    set: messages,
    backoff: { initialMs: 10, maxMs: 40 },
  });
  try {
    await assert.rejects(
      client.call(Echo, { seq: 1, text: "" }, { timeoutMs: 150 }),
      (e) => isTransportError(e, "connection_lost"),
    );
    const pending = client.call(Echo, { seq: 2, text: "late" }, {
      timeoutMs: 10_000,
    });
    const server = listenTcp<Messages>({
      set: messages,
      port,
      handlers: { onRequest: (r) => r },
    });
    try {
      assert.deepEqual((await pending).message, { seq: 2, text: "late" });
    } finally {
      await client.close();
      await server.close();
    }
  } finally {
    await client.close();
  }
});
