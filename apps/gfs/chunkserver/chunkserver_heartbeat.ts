import { isGfsError } from "../shared/gfs_error.ts";
import { HeartbeatReplySchema } from "../shared/messages.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";
import { sleepUnless } from "./sleep.ts";

/**
 * A primary asks the master to extend a lease only while the chunk was
 * mutated this recently: an idle chunk's lease then lapses soon, and a
 * leased chunk is not re-replicated (see chunk_master.ts).
 */
const EXTEND_IF_MUTATED_WITHIN_MS = 10_000;
/** Pushed data never applied is dropped after this long. */
const STAGING_TTL_MS = 120_000;

/**
 * Heartbeats, every `heartbeatMs` until the chunkserver closes: report
 * every chunk (handle, version, length), space, load and the leases to
 * extend; from the reply, learn the registered chunkservers (the peer
 * set), delete the chunks the master calls orphaned or stale, and extend
 * leases. A refusal (another cell's chunk size or peer secret) is said
 * once on stderr; an unreachable master is routine.
 * @returns the loop, which ends once `cs.closing` is aborted.
 */
export async function runHeartbeats(cs: ChunkserverService): Promise<void> {
  const stop = cs.closing.signal;
  // Chunks whose deletion (asked by the master) is queued.
  const deleting = new Set<number>();
  let refused = "";
  while (!stop.aborted) {
    await heartbeat(cs, deleting).then(() => refused = "", (e) => {
      // `unauthorized`: another cell's peer secret, i.e. another --auth-dir.
      const refusal = isGfsError(e, "conflict") ||
        isGfsError(e, "unauthorized");
      if (refusal && e.message !== refused) {
        refused = e.message;
        console.error(
          `chunkserver ${cs.id}: the master refuses it: ${e.message}${
            isGfsError(e, "unauthorized")
              ? " (this chunkserver's peer secret is not the cell's: start every process of the cell with the same --auth-dir)"
              : ""
          }`,
        );
      }
    });
    await sleepUnless(cs.cfg.heartbeatMs, stop);
  }
}

async function heartbeat(
  cs: ChunkserverService,
  deleting: Set<number>,
): Promise<void> {
  const { store, cfg, leases } = cs;
  const now = Date.now();
  const extend: number[] = [];
  for (const [h, l] of leases) {
    if (l.expiresAt <= now) {
      leases.delete(h);
      continue;
    }
    const last = cs.lastMutation.get(h) ?? 0;
    if (last > now - EXTEND_IF_MUTATED_WITHIN_MS) extend.push(h);
  }
  const reply = await cs.masters.call(
    `/v1/heartbeat`,
    HeartbeatReplySchema,
    {
      body: {
        id: cs.id,
        url: cs.url,
        rack: cfg.rack,
        capacityBytes: cfg.capacityBytes,
        usedBytes: store.usedBytes,
        load: cs.stats.inflight,
        chunks: store.list(),
        extend,
        chunkBytes: cfg.chunkBytes,
      },
      timeoutMs: Math.max(2000, cfg.heartbeatMs * 3),
      signal: cs.closing.signal,
    },
  );
  if (reply.peers !== undefined) cs.peers.set(reply.peers);
  for (const h of reply.delete) {
    cs.forget(h);
    // Not awaited: the chunk's queue may hold a mutation waiting on a
    // partitioned peer for up to a minute, and a heartbeat loop stuck
    // behind it would get this server declared dead (found by
    // gfs_partition_test.ts). Asked again meanwhile, it is queued once.
    if (deleting.has(h)) continue;
    deleting.add(h);
    cs.serial(h, () => store.delete(h)).catch(() => {}).finally(() =>
      deleting.delete(h)
    );
  }
  for (const l of reply.leases) {
    // The reply may predate a newer grant (version bump) made meanwhile:
    // only extend the lease it was about.
    const cur = leases.get(l.handle);
    if (cur !== undefined && cur.version === l.version) {
      cur.expiresAt = Math.max(cur.expiresAt, l.expiresAt);
    }
  }
  for (const [k, s] of cs.staging) {
    if (s.at < now - STAGING_TTL_MS) cs.staging.delete(k);
  }
}
