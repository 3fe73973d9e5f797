import assert from "node:assert/strict";
import { findTakenPort, fixedPorts, parseStartFlags } from "./start_flags.ts";

Deno.test("no flags start on the documented defaults", () => {
  assert.deepEqual(parseStartFlags([]), {
    kind: "run",
    flags: {
      "data-dir": "./data/playground",
      port: 8080,
      listen: "127.0.0.1",
      "allowed-hosts": [],
      "raft-http-base": 2380,
      "no-index": false,
      tls: false,
    },
  });
});

Deno.test("TLS flags: --tls alone, or --tls-cert with --tls-key; mixed or half given is an error", () => {
  const own = parseStartFlags(["--tls"]);
  assert.equal(own.kind === "run" && own.flags.tls, true);
  const files = parseStartFlags(["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
  assert.equal(files.kind === "run" && files.flags["tls-key"], "k.pem");
  const half = parseStartFlags(["--tls-cert", "c.pem"]);
  assert.equal(half.kind, "error");
  assert.match((half as { message: string }).message, /go together/);
  const both = parseStartFlags([
    "--tls",
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
  ]);
  assert.equal(both.kind, "error");
});

Deno.test("flags are parsed and bad values are named with the flag", () => {
  const r = parseStartFlags([
    "--port",
    "0",
    "--index-limit",
    "300",
    "--no-index",
    "--data-dir",
    "/tmp/x",
  ]);
  assert.equal(r.kind, "run");
  if (r.kind === "run") {
    assert.equal(r.flags.port, 0);
    assert.equal(r.flags["index-limit"], 300);
    assert.equal(r.flags["no-index"], true);
  }
  const bad = parseStartFlags(["--port", "99999"]);
  assert.equal(bad.kind, "error");
  assert.match((bad as { message: string }).message, /^--port: /);
  const unknown = parseStartFlags(["--colour"]);
  assert.equal(unknown.kind, "error");
  assert.equal(parseStartFlags(["-h"]).kind, "help");
  const listen = parseStartFlags([
    "--listen",
    "0.0.0.0",
    "--allowed-hosts",
    "pg.example, 10.0.0.5",
  ]);
  assert.equal(listen.kind, "run");
  if (listen.kind === "run") {
    assert.equal(listen.flags.listen, "0.0.0.0");
    assert.deepEqual(listen.flags["allowed-hosts"], ["pg.example", "10.0.0.5"]);
  }
});

Deno.test("a taken port is named with the flag that moves it", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (l.addr as Deno.NetAddr).port;
  try {
    const r = parseStartFlags([
      "--port",
      "0",
      "--raft-http-base",
      String(taken - 1),
    ]);
    assert.equal(r.kind, "run");
    if (r.kind !== "run") return;
    const ports = fixedPorts(r.flags);
    assert.deepEqual(ports.map((p) => p.port), [taken - 1, taken, taken + 1]);
    const found = findTakenPort(ports.filter((p) => p.port === taken));
    assert.equal(found?.port.port, taken);
    assert.match(
      found!.message,
      new RegExp(`port ${taken} .*--raft-http-base`),
    );
  } finally {
    l.close();
  }
  assert.equal(findTakenPort([]), undefined);
});

Deno.test("port 0 for the dashboard and the raft nodes fixes no port", () => {
  const r = parseStartFlags(["--port", "0", "--raft-http-base", "0"]);
  assert.equal(r.kind, "run");
  if (r.kind === "run") assert.deepEqual(fixedPorts(r.flags), []);
});
