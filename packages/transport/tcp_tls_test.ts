import assert from "node:assert/strict";
import { selfSignedCert } from "@strata/edge";
import { Echo, type Messages, messages } from "./_test_messages.ts";
import { connectTcp, listenTcp, type TcpServerTls } from "./tcp_transport.ts";
import { isTransportError, type TransportError } from "./transport_error.ts";

type M = Messages;

async function certs(): Promise<
  { dir: string; server: TcpServerTls; ca: string; otherCa: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "strata-tcp-tls-" });
  await Deno.mkdir(`${dir}/a`);
  await Deno.mkdir(`${dir}/b`);
  const a = await selfSignedCert(`${dir}/a`);
  const b = await selfSignedCert(`${dir}/b`);
  return {
    dir,
    server: {
      cert: await Deno.readTextFile(a.certFile),
      key: await Deno.readTextFile(a.keyFile),
    },
    ca: await Deno.readTextFile(a.certFile),
    otherCa: await Deno.readTextFile(b.certFile),
  };
}

function tlsEchoServer(tls: TcpServerTls | undefined) {
  const refused: { peer: string; error: TransportError }[] = [];
  const closed: TransportError[] = [];
  const server = listenTcp<M>({
    onConnection: (conn) => void conn.closed.then((why) => closed.push(why)),
    set: messages,
    secret: "a shared secret of the test",
    tls,
    handshakeTimeoutMs: 5_000,
    onRefused: (peer, error) => refused.push({ peer, error }),
    handlers: {
      onRequest: (req) => ({
        type: "Echo",
        message: {
          seq: (req.message as { seq: number }).seq,
          text: "ok",
        },
      }),
    },
  });
  return { server, refused, closed };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("TLS: a client trusting the server's self-signed certificate calls it", async () => {
  const c = await certs();
  const { server } = tlsEchoServer(c.server);
  try {
    const client = await connectTcp<M>({ port: server.port }, {
      set: messages,
      secret: "a shared secret of the test",
      tls: { caCerts: [c.ca] },
    });
    const reply = await client.call(Echo, { seq: 7, text: "hello" });
    assert.deepEqual(reply.message, { seq: 7, text: "ok" });
    await client.close();
  } finally {
    await server.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("TLS: a plain client is refused by a TLS server (onRefused says TLS), and a TLS client by a plain server", async () => {
  const c = await certs();
  const tlsSide = tlsEchoServer(c.server);
  const plainSide = tlsEchoServer(undefined);
  try {
    await assert.rejects(
      connectTcp<M>({ port: tlsSide.server.port }, {
        set: messages,
        secret: "a shared secret of the test",
        handshakeTimeoutMs: 5_000,
      }),
      (e) => isTransportError(e, "tls_failed"),
    );
    await until(() => tlsSide.refused.length > 0);
    const r = tlsSide.refused[0]!;
    assert.equal(r.error.code, "tls_failed");
    assert.match(
      r.error.message,
      /^TLS handshake with 127\.0\.0\.1:\d+ failed/,
    );
    assert.equal(tlsSide.server.connections.size, 0);

    await assert.rejects(
      connectTcp<M>({ port: plainSide.server.port }, {
        set: messages,
        secret: "a shared secret of the test",
        tls: { caCerts: [c.ca] },
        handshakeTimeoutMs: 5_000,
      }),
      (e) => isTransportError(e, "tls_failed"),
    );
    // The plain server names the mismatch rather than "bad magic".
    await until(() => plainSide.closed.length > 0);
    assert.equal(plainSide.closed[0]!.code, "tls_failed");
    assert.match(
      plainSide.closed[0]!.message,
      /speaks TLS but this side of the connection does not/,
    );
  } finally {
    await tlsSide.server.close();
    await plainSide.server.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("TLS: a client that does not trust the server's certificate fails with tls_failed and the server logs the refusal", async () => {
  const c = await certs();
  const { server, refused } = tlsEchoServer(c.server);
  try {
    await assert.rejects(
      connectTcp<M>({ port: server.port }, {
        set: messages,
        secret: "a shared secret of the test",
        tls: { caCerts: [c.otherCa] },
      }),
      (e) =>
        isTransportError(e, "tls_failed") &&
        /certificate/i.test((e as Error).message),
    );
    await until(() => refused.length > 0);
    assert.equal(refused[0]!.error.code, "tls_failed");
    // A name the certificate does not carry is refused too.
    await assert.rejects(
      connectTcp<M>({ port: server.port }, {
        set: messages,
        tls: { caCerts: [c.ca], serverName: "elsewhere.example" },
      }),
      (e) => isTransportError(e, "tls_failed"),
    );
  } finally {
    await server.close();
    await Deno.remove(c.dir, { recursive: true });
  }
});
