import assert from "node:assert/strict";
import { FrameDecoder } from "@strata/codec";
import { type ControlMessage, decodeControl } from "./control_frames.ts";
import { Handshake, type Role, type Secret } from "./handshake.ts";
import { isTransportError } from "./transport_error.ts";

const fingerprint = "f".repeat(64);

function side(role: Role, secret?: Secret | readonly Secret[]) {
  return new Handshake({
    role,
    fingerprint,
    secret,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
  });
}

function control(frame: Uint8Array): ControlMessage {
  const [f] = new FrameDecoder().push(frame);
  return decodeControl(f!.payload);
}

Deno.test("two sides with the same secret accept each other", () => {
  const c = side("client", "k");
  const s = side("server", "k");
  const cProof = c.receive(control(s.hello()));
  const sProof = s.receive(control(c.hello()));
  assert.equal(cProof.done, false);
  assert.equal(s.receive(control(cProof.send[0]!)).done, true);
  assert.equal(c.receive(control(sProof.send[0]!)).done, true);
});

Deno.test("a proof recorded on one connection is useless on the next", () => {
  const c1 = side("client", "k");
  const s1 = side("server", "k");
  const recorded = c1.receive(control(s1.hello())).send[0]!;
  const s2 = side("server", "k");
  s2.receive(control(c1.hello())); // the attacker replays the old hello too
  assert.throws(
    () => s2.receive(control(recorded)),
    (e) => isTransportError(e, "auth_failed"),
  );
});

Deno.test("a server's own proof reflected back is rejected", () => {
  const s = side("server", "k");
  // The attacker echoes the server's hello as its own, then its proof.
  const proof = s.receive(control(s.hello())).send[0]!;
  assert.throws(
    () => s.receive(control(proof)),
    (e) => isTransportError(e, "auth_failed"),
  );
});

Deno.test("a wrong secret, a missing secret and a different fingerprint are refused", () => {
  const c = side("client", "a");
  const s = side("server", "b");
  const proof = c.receive(control(s.hello())).send[0]!;
  s.receive(control(c.hello()));
  assert.throws(
    () => s.receive(control(proof)),
    (e) => isTransportError(e, "auth_failed"),
  );
  assert.throws(
    () => side("server", "k").receive(control(side("client").hello())),
    (e) => isTransportError(e, "auth_failed"),
  );
  const other = new Handshake({
    role: "client",
    fingerprint: "0".repeat(64),
    nonce: new Uint8Array(32),
  });
  assert.throws(
    () => side("server").receive(control(other.hello())),
    (e) => isTransportError(e, "fingerprint_mismatch"),
  );
});

Deno.test("control messages out of order are protocol errors", () => {
  const s = side("server", "k");
  assert.throws(
    () => s.receive([2, new Uint8Array(32)]),
    (e) => isTransportError(e, "protocol_error"),
  );
  s.receive(control(side("client", "k").hello()));
  assert.throws(
    () => s.receive(control(side("client", "k").hello())),
    (e) => isTransportError(e, "protocol_error"),
  );
});

Deno.test("a server with several accepted secrets admits a client holding any one, and proves that one", () => {
  for (const held of ["read", "write", "admin"]) {
    const c = side("client", held);
    const s = side("server", ["read", "write", "admin"]);
    // The server sends no proof before it knows which secret the client holds.
    assert.equal(s.receive(control(c.hello())).send.length, 0);
    const cProof = c.receive(control(s.hello()));
    assert.equal(s.provenSecret, undefined);
    const sReply = s.receive(control(cProof.send[0]!));
    assert.equal(sReply.done, true);
    // The server can tell which one the client proved (to give it a role).
    assert.equal(s.provenSecret, held);
    assert.equal(sReply.send.length, 1);
    assert.equal(c.receive(control(sReply.send[0]!)).done, true);
  }
});

Deno.test("a client holding none of a server's accepted secrets is refused", () => {
  const c = side("client", "guess");
  const s = side("server", ["read", "write"]);
  s.receive(control(c.hello()));
  const cProof = c.receive(control(s.hello()));
  assert.throws(
    () => s.receive(control(cProof.send[0]!)),
    (e) => isTransportError(e, "auth_failed"),
  );
  // And a client without any secret fails at the hello.
  const bare = side("client");
  assert.throws(
    () => side("server", ["read"]).receive(control(bare.hello())),
    (e) => isTransportError(e, "auth_failed"),
  );
});

Deno.test("a list of secrets is refused on the dialing side and when empty", () => {
  assert.throws(() => side("client", ["a", "b"]), TypeError);
  assert.throws(() => side("server", []), TypeError);
});

Deno.test("peers that diff different kinds are refused at the hello, naming both settings", () => {
  const hello = (differential?: string) =>
    new Handshake({
      role: "client",
      fingerprint,
      differential,
      nonce: new Uint8Array(32),
    });
  const server = (differential?: string) =>
    new Handshake({
      role: "server",
      fingerprint,
      differential,
      nonce: new Uint8Array(32),
    });
  assert.throws(
    () => server("*").receive(control(hello("-").hello())),
    (e) =>
      isTransportError(e, "handshake_failed") &&
      /differential encoding \(-\) differs from this side's \(\*\)/.test(
        (e as Error).message,
      ),
  );
  assert.equal(server("*").receive(control(hello("*").hello())).done, true);
  // A side that does not say (an older peer, a test double) is not judged.
  assert.equal(server("*").receive(control(hello().hello())).done, true);
});
