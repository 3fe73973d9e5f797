import { fetchJson } from "../shared/http_json.ts";
import type { MasterService } from "./master_service.ts";
import { ClonedSchema } from "../shared/messages.ts";
import { PathLocks } from "./path_locks.ts";
import type { CloneTask } from "./replication_planner.ts";

/**
 * The maintenance loop of the serving master: every `tickMs` it detects
 * dead servers, proposes GC ops (purge, abandon), and runs the clones of
 * re-replication and rebalancing.
 * @returns a function that stops the loop and waits for it.
 */
export function startMaintenance(m: MasterService): () => Promise<void> {
  const runClone = async (t: CloneTask) => {
    const src = m.core.servers.get(t.source),
      dst = m.core.servers.get(t.target);
    const version = m.store.state.chunks.get(t.handle)?.version ?? 0;
    if (!src || !dst || version === 0) {
      await m.cloneFinished(t, false, version, 0, Date.now());
      return;
    }
    try {
      const r = await fetchJson(
        `${dst.url}/v1/chunks/${t.handle}/clone`,
        ClonedSchema,
        {
          body: { source: src.url, version },
          timeoutMs: 120_000,
          token: m.cfg.peerToken,
          client: m.cfg.httpClient,
        },
      );
      m.stats.clones++;
      await m.cloneFinished(t, true, version, r.length, Date.now());
    } catch {
      m.stats.cloneFailures++;
      await m.cloneFinished(t, false, version, 0, Date.now());
    }
  };

  let stopped = false;
  const tickLoop = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, m.cfg.tickMs));
      if (stopped) break;
      // Only the serving master plans; it gives chunkservers a chance to
      // report (after a start or a takeover) before judging anything lost.
      if (!m.store.serving()) continue;
      if (Date.now() - m.takeoverAt < Math.min(m.cfg.deadAfterMs, 3000)) {
        continue;
      }
      try {
        const plan = m.core.tick(Date.now());
        for (const op of plan.ops) {
          const path = op.t === "purge" || op.t === "abandon" ? op.path : "/";
          await m.locks.with(
            PathLocks.forPath(path, "write"),
            () => m.propose(op),
          )
            .catch(() => {});
        }
        for (const t of plan.clones) runClone(t);
        for (const mv of plan.moves) {
          runClone({ handle: mv.handle, source: mv.from, target: mv.to });
        }
      } catch {
        // a failed round is retried on the next tick
      }
    }
  })();
  return async () => {
    stopped = true;
    await tickLoop;
  };
}
