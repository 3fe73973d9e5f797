import { isGfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";
import { sleepUnless } from "./sleep.ts";

/**
 * The background scrubber, until the chunkserver closes: verifies every
 * chunk's block checksums (pausing `scrubPauseMs` between chunks), reports
 * a corrupt replica (deleted here; the master re-replicates it from a good
 * one), and compacts the needle volume when it is mostly dead space; a
 * pass starts at most every `scrubEveryMs`.
 */
export async function runScrubber(cs: ChunkserverService): Promise<void> {
  const { store, cfg } = cs;
  const stop = cs.closing.signal;
  while (!stop.aborted) {
    const started = performance.now();
    for (const [h] of store.list()) {
      if (stop.aborted) break;
      try {
        await store.verify(h);
      } catch (e) {
        if (isGfsError(e, "corrupt")) await cs.reportCorrupt(h);
      }
      await sleepUnless(cfg.scrubPauseMs, stop);
    }
    await store.maybeCompact().catch(() => false);
    await sleepUnless(
      Math.max(
        cfg.scrubPauseMs,
        1000,
        (cfg.scrubEveryMs ?? 600_000) - (performance.now() - started),
      ),
      stop,
    );
  }
}
