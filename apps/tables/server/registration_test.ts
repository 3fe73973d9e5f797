import { ok, strictEqual } from "node:assert/strict";
import { type KvClient, KvClientError } from "@strata/kv";
import { register } from "./registration.ts";

/**
 * A kv client whose session, lock and key calls succeed at once, whose first
 * `answered` keep-alives succeed, and whose later ones hang (a silent
 * partition) until `release()` fails them.
 */
function kvWithHangingKeepAlives(answered = 0) {
  const hanging: Array<(e: unknown) => void> = [];
  const state = { calls: 0, lastAnswered: 0 };
  const kv = {
    openSession: () =>
      Promise.resolve({ id: 7, close: () => Promise.resolve() }),
    lock: () => Promise.resolve(1),
    put: () => Promise.resolve(2),
    keepAlive: () => {
      if (state.calls++ < answered) {
        state.lastAnswered = performance.now();
        return Promise.resolve();
      }
      return new Promise<void>((_, reject) => {
        hanging.push(reject);
      });
    },
  } as unknown as KvClient;
  return {
    kv,
    state,
    release: () => {
      for (const reject of hanging) {
        reject(new KvClientError("timeout", "no answer"));
      }
    },
  };
}

Deno.test("a server whose keep-alive hangs loses its session when the lease runs out, not when the call gives up", async () => {
  const ttlMs = 2000;
  const { kv, release } = kvWithHangingKeepAlives();
  const lost = Promise.withResolvers<string>();
  const started = performance.now();
  const registration = await register({
    kv,
    id: "ts1",
    url: "http://127.0.0.1:1",
    ttlMs,
    onLost: (why) => lost.resolve(why),
    log: () => {},
  });
  const timeout = setTimeout(() => lost.reject(new Error("never lost")), 5000);
  try {
    const why = await lost.promise;
    const after = performance.now() - started;
    ok(why.includes("the serving lease ran out"), why);
    // The lease is 0.75 × TTL from the session's opening; the watchdog
    // wakes at its end. It must go well before kv could expire it.
    ok(after >= 0.75 * ttlMs - 1, `lost after ${after.toFixed(0)} ms`);
    ok(after < ttlMs, `lost only after ${after.toFixed(0)} ms`);
    strictEqual(registration.lease.valid, false);
  } finally {
    clearTimeout(timeout);
    release();
    await registration.close();
  }
});

Deno.test("a renewed lease moves the watchdog: the session is lost at the last renewal's lease end, not the first's", async () => {
  const ttlMs = 1200;
  // Keep-alives succeed for the first three calls, then hang.
  const { kv, state, release } = kvWithHangingKeepAlives(3);
  const lost = Promise.withResolvers<string>();
  const registration = await register({
    kv,
    id: "ts1",
    url: "http://127.0.0.1:1",
    ttlMs,
    onLost: (why) => lost.resolve(why),
    log: () => {},
  });
  const timeout = setTimeout(() => lost.reject(new Error("never lost")), 5000);
  try {
    const why = await lost.promise;
    const at = performance.now();
    ok(why.includes("the serving lease ran out"), why);
    strictEqual(state.calls, 4);
    // The third keep-alive (sent ~0.5 TTL in) set the lease's end; a
    // watchdog armed only once, at the opening's lease end, would fire
    // there and find the lease valid, and one that never looks again would
    // not see it run out at all.
    const lastSent = state.lastAnswered;
    ok(at >= lastSent + 0.75 * ttlMs - 1, `lost ${at - lastSent} ms after`);
    ok(at < lastSent + ttlMs, `lost only ${at - lastSent} ms after`);
  } finally {
    clearTimeout(timeout);
    release();
    await registration.close();
  }
});
