import {
  type RunningChunkserver,
  startChunkserver,
} from "./chunkserver/chunkserver.ts";
import { startMaster } from "./master/master_server.ts";
import { loadOrCreateSecrets } from "@strata/edge";
/** Deterministic bytes for tests (an LCG), as a plain ArrayBuffer view. */
export function pattern(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/**
 * Polls `fn` every `everyMs` (default 200) until true; a throw counts as
 * false (the last error is named in the timeout). Timed on the monotonic
 * clock. @throws Error after `timeoutMs`.
 */
export async function until(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs = 90_000,
  everyMs = 200,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  // A throwing check counts as "not yet" (a node may still be starting),
  // but its last error is kept so a timeout says what kept failing.
  let last: unknown;
  while (performance.now() < end) {
    const ok = await fn().catch((e) => {
      last = e;
      return false;
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const why = last === undefined
    ? ""
    : `; last error: ${last instanceof Error ? last.message : String(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/**
 * An in-process cell for tests: one master and `servers` chunkservers
 * under `dir` (200 ms ticks and heartbeats, no scrub pauses), sharing the
 * auth dir `<dir>/auth` (`secrets`: its tokens and peer secret). `stop()`
 * closes them all; a failed start closes what did start.
 */
export async function startTestCell(
  dir: string,
  options: { chunkBytes: number; replication: number; servers: number },
) {
  const secrets = await loadOrCreateSecrets(`${dir}/auth`);
  const master = await startMaster({
    dataDir: `${dir}/m`,
    authDir: secrets.dir,
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
          authDir: secrets.dir,
        }),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { master, servers, stop, secrets };
}

/** `fetch` that sends `token` as its bearer token (tests calling routes directly). */
export function fetchAs(token: string | undefined): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    if (token !== undefined && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${token}`);
    }
    return fetch(input, { ...init, headers });
  };
}
