import assert from "node:assert/strict";
import { connectWithin } from "./connect_within.ts";
import { isGfsError } from "../shared/gfs_error.ts";

/** A stand-in connection that counts its closes. */
class FakeConn {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

Deno.test("connectWithin answers the connection made in time", async () => {
  const conn = new FakeConn();
  assert.equal(await connectWithin(Promise.resolve(conn), 1000, "x"), conn);
  assert.equal(conn.closed, 0);
});

Deno.test("connectWithin gives up on a dial that never completes after its timeout, with unavailable", async () => {
  const started = performance.now();
  await assert.rejects(
    connectWithin(new Promise<FakeConn>(() => {}), 50, "the bulk port of cs1"),
    (e) =>
      isGfsError(e, "unavailable") &&
      /the bulk port of cs1: not connected within 50 ms/.test(e.message),
  );
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("connectWithin closes a connection that arrives after its deadline", async () => {
  const conn = new FakeConn();
  let arrive!: (c: FakeConn) => void;
  const late = connectWithin(new Promise<FakeConn>((r) => arrive = r), 20, "x");
  await assert.rejects(late, (e) => isGfsError(e, "unavailable"));
  arrive(conn);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(conn.closed, 1);
});

Deno.test("connectWithin passes a failed dial's own error on", async () => {
  const refused = new Error("connection refused");
  await assert.rejects(
    connectWithin(Promise.reject(refused), 1000, "x"),
    (e) => e === refused,
  );
});
