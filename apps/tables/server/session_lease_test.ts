import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SessionLease } from "./session_lease.ts";

Deno.test("a lease is valid only until the send time of the last keep-alive plus the safe part of the TTL", () => {
  let now = 1000;
  const lease = new SessionLease(2000, 0.75, () => now);
  assertEquals(lease.valid, false, "no keep-alive yet");
  lease.renewed(1000);
  now = 2499;
  assertEquals(lease.valid, true);
  now = 2500;
  assertEquals(lease.valid, false, "1.5 s after the send, with no renewal");
  // A late answer to an old keep-alive does not move the deadline back.
  lease.renewed(3000);
  lease.renewed(2000);
  now = 4400;
  assertEquals(lease.valid, true);
  // A jump of the clock (a paused process) is seen at once.
  now = 10_000;
  assertEquals(lease.valid, false);
});

Deno.test("a revoked lease never becomes valid again", () => {
  let now = 0;
  const lease = new SessionLease(2000, 0.75, () => now);
  lease.renewed(0);
  lease.revoke();
  assertEquals(lease.valid, false);
  lease.renewed(now = 10);
  assertEquals(lease.valid, false);
});
