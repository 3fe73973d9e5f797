import assert from "node:assert/strict";
import { z } from "zod";
import { EDGE_FLAGS, hostFlag, parseFlags, tlsFiles } from "./flags.ts";

const schema = z.object({
  ...EDGE_FLAGS,
  port: z.coerce.number().int().min(0).max(65535).default(80),
  verbose: z.boolean().default(false),
});

Deno.test("flags parse with types, defaults and the edge flags", () => {
  const r = parseFlags(
    [
      "--port",
      "81",
      "--verbose",
      "--allowed-hosts",
      "a.example, b",
      "--insecure-no-auth",
    ],
    schema,
    "usage",
  );
  assert.equal(r.kind, "ok");
  if (r.kind !== "ok") return;
  assert.equal(r.flags.port, 81);
  assert.equal(r.flags.verbose, true);
  assert.equal(r.flags["insecure-no-auth"], true);
  assert.deepEqual(r.flags["allowed-hosts"], ["a.example", "b"]);
});

Deno.test("--help gives the usage; bad flags give a message naming the flag", () => {
  assert.deepEqual(parseFlags(["-h"], schema, "usage"), {
    kind: "help",
    text: "usage",
  });
  const bad = parseFlags(["--port", "x"], schema, "usage");
  assert.equal(bad.kind, "error");
  assert.match(bad.kind === "error" ? bad.message : "", /^--port: /);
  assert.equal(parseFlags(["--nope"], schema, "usage").kind, "error");
  assert.equal(parseFlags(["stray"], schema, "usage").kind, "error");
  const pos = parseFlags(["put", "--verbose", "k"], schema, "u", {
    positionals: true,
  });
  assert.deepEqual(pos.kind === "ok" ? pos.positionals : [], ["put", "k"]);
});

Deno.test("TLS files go in pairs", () => {
  assert.equal(tlsFiles({}), undefined);
  assert.deepEqual(tlsFiles({ "tls-cert": "c", "tls-key": "k" }), {
    certFile: "c",
    keyFile: "k",
  });
  assert.throws(() => tlsFiles({ "tls-cert": "c" }), /go together/);
});

Deno.test("--host takes an address or a name, refuses anything else", () => {
  const s = z.object({ host: hostFlag.default("127.0.0.1") });
  for (const h of ["127.0.0.2", "::1", "[::1]", "search.example"]) {
    const r = parseFlags(["--host", h], s, "u");
    assert.equal(r.kind === "ok" && r.flags.host, h);
  }
  const bad = parseFlags(["--host", "not a host"], s, "u");
  assert.equal(bad.kind, "error");
  assert.match(bad.kind === "error" ? bad.message : "", /^--host: /);
});
