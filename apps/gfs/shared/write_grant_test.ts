import assert from "node:assert/strict";
import { isGfsError } from "./gfs_error.ts";
import {
  checkGrant,
  type GrantUse,
  signGrant,
  type WriteGrant,
  WriteGrantSchema,
} from "./write_grant.ts";

const SECRET = "cell-peer-secret";
const A = "http://127.0.0.1:1001", B = "http://127.0.0.1:1002";
const C = "http://127.0.0.1:1003";
const NOW = 1_000_000;

function grant(over: Partial<Omit<WriteGrant, "mac">> = {}): WriteGrant {
  return signGrant(SECRET, {
    handle: 7,
    version: 1,
    fileId: 3,
    primary: A,
    replicas: [A, B, C],
    expiresAt: NOW + 60_000,
    ...over,
  });
}

const atPrimary: GrantUse = {
  handle: 7,
  version: 1,
  self: A,
  chain: [B, C],
  primary: true,
  now: NOW,
};

function refused(
  fn: () => void,
  code: "forbidden" | "no_lease",
  match: RegExp,
): void {
  assert.throws(fn, (e) => {
    assert.ok(isGfsError(e, code), `${code}: ${e}`);
    assert.match((e as Error).message, match);
    return true;
  });
}

Deno.test("write grant: a genuine grant passes at the primary and down the chain", () => {
  const g = grant();
  assert.deepEqual(WriteGrantSchema.parse(JSON.parse(JSON.stringify(g))), g);
  checkGrant(SECRET, g, atPrimary);
  // The primary forwards to B with chain [C]; B forwards to C with [].
  checkGrant(SECRET, g, { ...atPrimary, self: B, chain: [C], primary: false });
  checkGrant(SECRET, g, { ...atPrimary, self: C, chain: [], primary: false });
});

Deno.test("write grant: forged (wrong secret, any field changed) is refused", () => {
  refused(
    () =>
      checkGrant(
        SECRET,
        signGrant("another-cell", { ...grant(), mac: undefined } as never),
        atPrimary,
      ),
    "forbidden",
    /not signed by this cell's master/,
  );
  const g = grant();
  // Each field is covered: a holder cannot stretch the lease, move the
  // grant to another chunk, version, file or replica set.
  for (
    const changed of [
      { expiresAt: g.expiresAt + 1 },
      { handle: 8 },
      { version: 2 },
      { fileId: 4 },
      { replicas: [A, B] },
      { primary: B, replicas: [B, A, C] },
    ]
  ) {
    const forged = { ...g, ...changed };
    const use = {
      ...atPrimary,
      handle: forged.handle,
      version: forged.version,
      self: forged.primary,
      chain: forged.replicas.slice(1),
    };
    refused(
      () => checkGrant(SECRET, forged, use),
      "forbidden",
      /not signed/,
    );
  }
  // A MAC that is not even hex of the right length fails the schema.
  assert.equal(
    WriteGrantSchema.safeParse({ ...g, mac: "zz" }).success,
    false,
  );
});

Deno.test("write grant: expired is refused as no_lease", () => {
  const g = grant({ expiresAt: NOW - 1 });
  refused(
    () => checkGrant(SECRET, g, atPrimary),
    "no_lease",
    /expired 1 ms ago/,
  );
  refused(
    () => checkGrant(SECRET, grant({ expiresAt: NOW }), atPrimary),
    "no_lease",
    /expired/,
  );
  // Once a server holds the chunk (an earlier piece), its lease governs.
  checkGrant(SECRET, g, { ...atPrimary, held: true });
  // Still only for its own chunk.
  refused(
    () => checkGrant(SECRET, g, { ...atPrimary, held: true, handle: 8 }),
    "forbidden",
    /not chunk 8/,
  );
});

Deno.test("write grant: replayed onto another chunk or version is refused", () => {
  const g = grant();
  refused(
    () => checkGrant(SECRET, g, { ...atPrimary, handle: 8 }),
    "forbidden",
    /for chunk 7 v1, not chunk 8 v1/,
  );
  refused(
    () => checkGrant(SECRET, g, { ...atPrimary, version: 2 }),
    "forbidden",
    /not chunk 7 v2/,
  );
});

Deno.test("write grant: another server, role or chain is refused", () => {
  const g = grant();
  // A server outside the replica set, a secondary posing as the primary,
  // the primary receiving a forward.
  refused(
    () =>
      checkGrant(SECRET, g, {
        ...atPrimary,
        self: "http://127.0.0.1:9",
      }),
    "forbidden",
    /does not name http:\/\/127.0.0.1:9 as its primary/,
  );
  refused(
    () => checkGrant(SECRET, g, { ...atPrimary, self: B, chain: [C] }),
    "forbidden",
    /as its primary/,
  );
  refused(
    () => checkGrant(SECRET, g, { ...atPrimary, primary: false, chain: [] }),
    "forbidden",
    /as its secondary/,
  );
  // A primary must forward to exactly the other replicas, in order.
  for (const chain of [[B], [C, B], [B, C, "http://127.0.0.1:9"], []]) {
    refused(
      () => checkGrant(SECRET, g, { ...atPrimary, chain }),
      "forbidden",
      /is not the grant's replicas/,
    );
  }
  // A secondary may forward only to the grant's other secondaries.
  refused(
    () =>
      checkGrant(SECRET, g, {
        ...atPrimary,
        self: B,
        chain: ["http://127.0.0.1:9"],
        primary: false,
      }),
    "forbidden",
    /is not the grant's replicas/,
  );
});
