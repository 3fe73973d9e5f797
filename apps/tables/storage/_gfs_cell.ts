import {
  type RunningChunkserver,
  startChunkserver,
  startMaster,
} from "@strata/gfs";

/**
 * An in-process GFS cell for the storage tests: one master and `servers`
 * chunkservers under `dir` (200 ms ticks and heartbeats). `stop()` closes
 * them all; a failed start closes what did start.
 */
export async function startGfsCell(
  dir: string,
  options: { chunkBytes: number; replication: number; servers: number },
) {
  const master = await startMaster({
    dataDir: `${dir}/m`,
    chunkBytes: options.chunkBytes,
    replication: options.replication,
    tickMs: 200,
  });
  const servers: RunningChunkserver[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await master.close().catch(() => {});
  };
  try {
    for (let i = 0; i < options.servers; i++) {
      servers.push(
        await startChunkserver({
          dataDir: `${dir}/cs${i}`,
          master: master.url,
          id: `cs${i}`,
          heartbeatMs: 200,
          scrubPauseMs: 0,
        }),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { master, servers, stop };
}
