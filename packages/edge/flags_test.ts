import assert from "node:assert/strict";
import { z } from "zod";
import { EDGE_FLAGS, parseFlags, tlsFiles } from "./flags.ts";

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
