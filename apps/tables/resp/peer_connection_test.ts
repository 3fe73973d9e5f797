import assert from "node:assert/strict";
import {
  unconnectablePort,
  within,
} from "../../../packages/transport/_test_net.ts";
import { PeerConnection } from "./peer_connection.ts";

/** A TCP server that accepts and reads, and answers `+OK` only if `answer`. */
function fakePeer(answer: boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const served = (async () => {
    for await (const c of listener) {
      conns.push(c);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (;;) {
            const n = await c.read(buf);
            if (n === null) return;
            // One command per read is enough here: PING is sent alone.
            if (answer) await c.write(new TextEncoder().encode("+OK\r\n"));
          }
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await served;
    },
  };
}

Deno.test("a peer that cannot be dialed fails the command after the connect deadline", async () => {
  // Without one, the dial waits out the kernel's SYN resends (~2 min).
  const peer = await unconnectablePort();
  const link = new PeerConnection(
    `127.0.0.1:${peer.port}`,
    undefined,
    undefined,
    {
      connectMs: 300,
    },
  );
  try {
    await assert.rejects(within(link.call(["PING"]), 3_000, "the command"), {
      message: `cannot connect to 127.0.0.1:${peer.port} within 300 ms`,
    });
  } finally {
    link.close();
    peer.close();
  }
});

Deno.test("a peer that takes a command and never answers breaks the link after the reply deadline", async () => {
  const peer = fakePeer(false);
  const link = new PeerConnection(peer.address, undefined, undefined, {
    replyMs: 300,
  });
  try {
    const t0 = performance.now();
    await assert.rejects(within(link.call(["PING"]), 3_000, "the command"), {
      message: `no reply from ${peer.address} within 300 ms`,
    });
    assert.ok(performance.now() - t0 >= 290);
  } finally {
    link.close();
    await peer.close();
  }
});

Deno.test("answered commands keep the link past the reply deadline's span", async () => {
  const peer = fakePeer(true);
  const link = new PeerConnection(peer.address, undefined, undefined, {
    replyMs: 150,
  });
  try {
    // Ten commands over ~500 ms: each answered at once, none timed out.
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(await within(link.call(["PING"]), 2_000, "PING"), {
        type: "simple",
        value: "OK",
      });
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    link.close();
    await peer.close();
  }
});
