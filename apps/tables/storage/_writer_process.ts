import assert from "node:assert/strict";
import type { LsmStore } from "@strata/lsm";

const DENO = new URL("../../../node_modules/deno/deno", import.meta.url)
  .pathname;
const CHILD = new URL("./_writer_child.ts", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Runs the writer child (`_writer_child.ts`) with GFS token `token`;
 * `acked[w]` is writer w's last acknowledged n.
 */
export function spawnWriter(master: string, dir: string, token?: string) {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", CHILD, master, dir],
    env: token ? { STRATA_GFS_TOKEN: token } : {},
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const acked = new Array<number>(8).fill(-1);
  let total = 0;
  let ready = false;
  let stderr = "";
  const out = (async () => {
    let buf = "";
    for await (
      const part of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buf += part;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith("ready")) ready = true;
        const m = /^(\d) (\d+)$/.exec(l);
        if (m) {
          acked[Number(m[1])] = Number(m[2]);
          total++;
        }
      }
    }
  })();
  const err = (async () => {
    for await (
      const part of child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      stderr += part;
    }
  })();
  return {
    acked,
    get total() {
      return total;
    },
    get ready() {
      return ready;
    },
    get stderr() {
      return stderr;
    },
    signal(sig: Deno.Signal) {
      child.kill(sig);
    },
    status: child.status,
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await Promise.allSettled([out, err]);
    },
  };
}

/**
 * Every acknowledged write of each writer is readable: the newest
 * acknowledged value of each key, or the writer's one write in flight at
 * the kill (it may or may not be there).
 */
export async function checkAcknowledged(
  store: LsmStore,
  acked: readonly number[],
): Promise<void> {
  for (let wi = 0; wi < 8; wi++) {
    const last = acked[wi]!;
    assert.ok(last >= 0, `writer ${wi} wrote nothing`);
    for (let k = 0; k < 100 && k <= last; k++) {
      // The newest acknowledged write of key k, or the one write of
      // this writer in flight at the kill (it may or may not be there).
      const n = last - ((last - k) % 100 + 100) % 100;
      const got = await store.get(enc.encode(`w${wi}-k${k}`));
      assert.ok(got, `w${wi}-k${k} missing`);
      const v = dec.decode(got).replace(/\.+$/, "");
      const ok = v === `w${wi}-n${n}` ||
        (v === `w${wi}-n${last + 1}` && (last + 1) % 100 === k);
      assert.ok(ok, `w${wi}-k${k}: ${v}, acknowledged w${wi}-n${n}`);
    }
  }
}

/** Polls `done` every 50 ms. @throws Error after `ms`. */
export async function until(what: string, done: () => boolean, ms: number) {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
