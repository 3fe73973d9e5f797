import assert from "node:assert/strict";
import { EdgeConfigError, resolveAccess } from "./access_config.ts";
import { loadOrCreateSecrets, tokenFile } from "./auth_secrets.ts";

Deno.test("secrets are generated once with mode 0600 and read back the same", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await loadOrCreateSecrets(`${dir}/auth`);
    const b = await loadOrCreateSecrets(`${dir}/auth`);
    assert.deepEqual(a, b);
    assert.notEqual(a.tokens.admin, a.tokens.read);
    assert.ok(a.peerSecret.length >= 32);
    for (
      const f of ["admin.token", "write.token", "read.token", "peer.secret"]
    ) {
      assert.equal(
        (await Deno.stat(`${dir}/auth/${f}`)).mode! & 0o777,
        0o600,
        f,
      );
    }
    assert.equal(
      (await Deno.readTextFile(tokenFile(`${dir}/auth`, "admin"))).trim(),
      a.tokens.admin,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth off is refused off loopback and granted on loopback only when asked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      resolveAccess({
        listenHost: "0.0.0.0",
        secretsDir: dir,
        insecureNoAuth: true,
      }),
      (e) =>
        e instanceof EdgeConfigError &&
        /refusing to listen on 0\.0\.0\.0 without auth/.test(e.message),
    );
    const off = await resolveAccess({
      listenHost: "127.0.0.1",
      secretsDir: dir,
      insecureNoAuth: true,
    });
    assert.equal(off.auth, "off");
    const on = await resolveAccess({ listenHost: "10.1.2.3", secretsDir: dir });
    assert.notEqual(on.auth, "off");
    assert.ok(on.secrets);
    assert.deepEqual([...on.hosts].sort(), [
      "10.1.2.3",
      "127.0.0.1",
      "::1",
      "localhost",
    ]);
    const wild = await resolveAccess({
      listenHost: "0.0.0.0",
      secretsDir: dir,
    });
    assert.equal(wild.hosts, "any");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
