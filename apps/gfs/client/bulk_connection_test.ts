import assert from "node:assert/strict";
import { BulkConn } from "./bulk_connection.ts";
import { isGfsError } from "../shared/gfs_error.ts";

/** A connected socket pair on loopback (the far end stays silent). */
async function pair() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [near, far] = await Promise.all([
    Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    }),
    listener.accept(),
  ]);
  listener.close();
  return { near, far };
}

Deno.test("bulk connection deadlines: a settled exchange is left alone; a shorter deadline after a longer one still fires", async () => {
  const { near, far } = await pair();
  const c = new BulkConn(near, "test");
  try {
    // Settled before its deadline: the lazily re-armed timer must not close it.
    c.deadline(100);
    c.settle();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.broken, false, "settled exchange left open");

    // A long deadline arms the timer; a later, shorter one must re-arm it.
    c.deadline(60_000);
    c.settle();
    c.deadline(200);
    const t0 = performance.now();
    await assert.rejects(c.reply(), (e) => isGfsError(e, "unavailable"));
    const took = performance.now() - t0;
    assert.ok(took < 10_000, `timed out after ${took.toFixed(0)} ms`);
    assert.equal(c.broken, true);
  } finally {
    c.close();
    far.close();
  }
});
