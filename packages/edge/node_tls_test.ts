import assert from "node:assert/strict";
import { EdgeConfigError } from "./access_config.ts";
import { nodeHttpClient, nodeTls } from "./node_tls.ts";
import { selfSignedCert } from "./self_signed_cert.ts";

Deno.test("nodeTls: what a node serves and trusts, from --tls-cert/--tls-key/--ca-cert", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-node-tls-" });
  try {
    const { certFile, keyFile } = await selfSignedCert(dir);
    const cert = await Deno.readTextFile(certFile);
    assert.deepEqual(await nodeTls({}), {});
    assert.equal(nodeHttpClient({}), undefined);
    // Serving: trusts its own certificate by default.
    const both = await nodeTls({ "tls-cert": certFile, "tls-key": keyFile });
    assert.equal(both.serve?.cert, cert);
    assert.deepEqual(both.caCerts, [cert]);
    nodeHttpClient(both)!.close();
    // A CA alone: a plain-HTTP node that calls TLS nodes.
    const caOnly = await nodeTls({ "ca-cert": certFile });
    assert.equal(caOnly.serve, undefined);
    assert.deepEqual(caOnly.caCerts, [cert]);
    await assert.rejects(
      nodeTls({ "tls-cert": certFile }),
      (e) => e instanceof EdgeConfigError && /go together/.test(e.message),
    );
    await assert.rejects(
      nodeTls({ "tls-cert": certFile, "tls-key": keyFile, "ca-cert": "/nope" }),
      (e) => e instanceof EdgeConfigError && /--ca-cert \/nope/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
