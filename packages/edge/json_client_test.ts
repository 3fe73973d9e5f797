import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { selfSignedCert } from "./self_signed_cert.ts";
import { edgeGuard, requireRole, TokenAuth } from "./access_guard.ts";
import { EdgeError, isEdgeError } from "./edge_error.ts";
import { installErrorHandlers } from "./error_handler.ts";
import { serveHttp } from "./http_server.ts";
import { callJson, isUnreachable, tlsClient } from "./json_client.ts";
import { freePort } from "@strata/process";

const token = "t".repeat(24);

function app() {
  const a = new Hono();
  a.use(
    "*",
    edgeGuard({
      auth: new TokenAuth({ write: token }),
      hosts: ["127.0.0.1", "localhost"],
    }),
  );
  a.get("/ok", (c) => c.json({ n: 1 }));
  a.get("/wrong", (c) => c.json({ n: "one" }));
  a.get("/conflict", () => {
    throw new EdgeError("conflict", "taken", { holder: 3 });
  });
  a.post("/w", requireRole("write"), (c) => c.json({ n: 2 }));
  installErrorHandlers(a, { name: "test" });
  return a;
}

const N = z.object({ n: z.number() });

Deno.test("callJson checks answers against the schema and returns server errors as EdgeErrors", async () => {
  const l = await serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: app().fetch,
  });
  try {
    assert.deepEqual(await callJson(`${l.url}/ok`, N, { token }), { n: 1 });
    assert.deepEqual(await callJson(`${l.url}/w`, N, { token, body: {} }), {
      n: 2,
    });
    await assert.rejects(
      callJson(`${l.url}/ok`, N),
      (e) => isEdgeError(e, "unauthorized"),
    );
    await assert.rejects(
      callJson(`${l.url}/wrong`, N, { token }),
      (e) => isEdgeError(e, "bad_gateway"),
    );
    await assert.rejects(
      callJson(`${l.url}/conflict`, N, { token }),
      (e) =>
        isEdgeError(e, "conflict") && e.message === "taken" &&
        e.details?.holder === 3,
    );
  } finally {
    await l.server.shutdown();
  }
  const port = freePort();
  await assert.rejects(
    callJson(`http://127.0.0.1:${port}/ok`, N),
    (e) => isUnreachable(e),
  );
});

Deno.test("an HTTPS listener with a self-signed certificate serves a client that trusts it", async () => {
  const dir = await Deno.makeTempDir();
  const tls = await selfSignedCert(dir);
  const l = await serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: app().fetch,
    tls,
  });
  const client = await tlsClient(tls.certFile);
  try {
    assert.equal(l.scheme, "https");
    assert.deepEqual(await callJson(`${l.url}/ok`, N, { token, client }), {
      n: 1,
    });
    // Without trusting the certificate the call fails: TLS is really on.
    await assert.rejects(
      callJson(`${l.url}/ok`, N, { token }),
      (e) => isUnreachable(e),
    );
  } finally {
    client.close();
    await l.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
