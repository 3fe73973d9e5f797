/**
 * A tablet server's presence in the kv service: a session kept alive on
 * the server's own schedule (so the send time of every acknowledged
 * keep-alive feeds the {@link SessionLease}), the lock
 * `tables/servers/<id>` (one process per server id) and the key
 * `tables/servers/<id>` with the server's URL, both bound to the session.
 */
import { type KvClient, KvClientError } from "@strata/kv";
import { serverKey, type ServerRecord } from "../shared/kv_layout.ts";
import { SessionLease } from "./session_lease.ts";

/** Options of {@link register}. */
export interface RegistrationOptions {
  kv: KvClient;
  id: string;
  url: string;
  /** `host:port` of its RESP listener, when it runs one. */
  resp?: string;
  ttlMs: number;
  /** Called once when the session is lost (kv expired it or keep-alives failed past the lease). */
  onLost: (why: string) => void;
  /** Log lines (stderr). */
  log: (line: string) => void;
}

/** A live registration. */
export interface Registration {
  session: number;
  lease: SessionLease;
  /** Stops the keep-alives and closes the session (its key and lock go). */
  close(): Promise<void>;
}

/**
 * Opens a session, takes the server's lock (waiting while a previous
 * process with the same id still holds it), writes the server key, and
 * keeps the session alive every ttl/4.
 * @throws KvClientError when kv cannot be reached.
 */
export async function register(o: RegistrationOptions): Promise<Registration> {
  const lease = new SessionLease(o.ttlMs);
  const sentAt = performance.now();
  // Our own keep-alives: their send times make the lease.
  const session = await o.kv.openSession(o.ttlMs, { keepAlive: false });
  lease.renewed(sentAt);
  let stopped = false;
  let lost = false;
  const loseOnce = (why: string) => {
    if (lost || stopped) return;
    lost = true;
    lease.revoke();
    o.onLost(why);
  };

  const keepAlive = async () => {
    while (!stopped && !lost) {
      const t = performance.now();
      try {
        await o.kv.keepAlive(session.id);
        lease.renewed(t);
      } catch (e) {
        if (e instanceof KvClientError && e.code === "not_found") {
          loseOnce(`kv session ${session.id} expired`);
          return;
        }
        if (!lease.valid) {
          loseOnce(
            `kv session ${session.id}: no keep-alive acknowledged within the lease (${
              e instanceof Error ? e.message : e
            })`,
          );
          return;
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(50, o.ttlMs / 4)));
      if (!lease.valid) {
        loseOnce(`kv session ${session.id}: the serving lease ran out`);
        return;
      }
    }
  };

  // Wait for the lock: after a kill -9, the old process's session holds
  // it until kv expires it.
  const deadline = performance.now() + 10 * o.ttlMs + 30_000;
  for (;;) {
    const lockSent = performance.now();
    const token = await o.kv.lock(
      serverKey(o.id),
      session.id,
      Math.min(5000, o.ttlMs),
    );
    lease.renewed(lockSent); // taking the lock proves the session alive
    if (token !== undefined) break;
    await o.kv.keepAlive(session.id);
    if (performance.now() > deadline) {
      throw new Error(
        `tablet server ${o.id}: another process holds tables/servers/${o.id}`,
      );
    }
  }
  const record: ServerRecord = {
    id: o.id,
    url: o.url,
    session: session.id,
    ...(o.resp ? { resp: o.resp } : {}),
  };
  await o.kv.put(serverKey(o.id), JSON.stringify(record), {
    session: session.id,
  });
  const loop = keepAlive();
  // A keep-alive can hang on a silent network (a partition) for the kv
  // client's whole retry budget, attempts × timeout, far beyond the TTL:
  // the session is given up the moment the lease runs out, not when that
  // call fails, so the tablets are closed (and, in a local directory,
  // unlocked for their new owner) within the TTL.
  //
  // The watchdog wakes when the lease would run out (and again at the new
  // end when a keep-alive renewed it meanwhile), not on a fixed period: a
  // 200–250 ms interval woke every idle server 4–5 times a second to find
  // the lease valid, and still saw it run out up to a period late.
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const watch = () => {
    watchdog = undefined;
    if (lost || stopped) return;
    const left = lease.remainingMs;
    if (left <= 0) {
      loseOnce(`kv session ${session.id}: the serving lease ran out`);
      return;
    }
    // + 1: a timer may fire a fraction of a millisecond early.
    watchdog = setTimeout(watch, left + 1);
  };
  watch();
  return {
    session: session.id,
    lease,
    async close() {
      stopped = true;
      clearTimeout(watchdog);
      await loop.catch(() => {});
      await session.close().catch(() => {});
    },
  };
}
