import assert from "node:assert/strict";
import { GfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";
import { runScrubber } from "./chunkserver_scrubber.ts";

/** A stand-in service: three chunks, chunk 2 corrupt; counts verifies and reports. */
function fakeService(scrubEveryMs: number) {
  const verified: number[] = [];
  const reported: number[] = [];
  const closing = new AbortController();
  const cs = {
    cfg: { scrubPauseMs: 1, scrubEveryMs },
    closing,
    store: {
      list: () => [[1], [2], [3]],
      verify: (h: number) => {
        verified.push(h);
        if (h === 2) throw new GfsError("corrupt", "block 0 of chunk 2");
        return Promise.resolve();
      },
      maybeCompact: () => Promise.resolve(false),
    },
    reportCorrupt: (h: number) => {
      reported.push(h);
      return Promise.resolve();
    },
  } as unknown as ChunkserverService;
  return { cs, verified, reported, closing };
}

Deno.test("the scrubber verifies every chunk at once, reports the corrupt one, then waits scrubEveryMs before the next pass", async () => {
  const { cs, verified, reported, closing } = fakeService(5000);
  const loop = runScrubber(cs);
  // Passes used to follow each other a second apart: in 1.5 s, two.
  await new Promise((r) => setTimeout(r, 1500));
  closing.abort();
  await loop;
  assert.deepEqual(verified, [1, 2, 3]);
  assert.deepEqual(reported, [2]);
});

Deno.test("with a short scrubEveryMs the scrubber passes again", async () => {
  const { cs, verified, closing } = fakeService(0);
  const loop = runScrubber(cs);
  // Never closer than a second apart.
  await new Promise((r) => setTimeout(r, 1500));
  closing.abort();
  await loop;
  assert.deepEqual(verified, [1, 2, 3, 1, 2, 3]);
});
