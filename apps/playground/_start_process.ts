/**
 * Test support: `deno task start` (main.ts) as a child process on free
 * ports, its stdout collected line by line, stopped with Ctrl-C.
 */
import assert from "node:assert/strict";
import { tlsClient } from "@strata/edge";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

/** `deno task start` as a child, its stdout lines collected. */
export class StartProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #waiters: Array<() => void> = [];
  readonly done: Promise<Deno.CommandStatus>;

  /** Starts main.ts on free ports with `dataDir` and `extraArgs`. */
  constructor(dataDir: string, extraArgs: string[] = []) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--data-dir",
        dataDir,
        "--port",
        "0",
        "--raft-http-base",
        "0",
        ...extraArgs,
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    this.child = child;
    this.done = child.status;
    (async () => {
      let buf = "";
      for await (
        const chunk of child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          for (const w of this.#waiters.splice(0)) w();
        }
      }
      for (const w of this.#waiters.splice(0)) w();
    })();
  }

  /** The first line matching `re`, waiting up to `timeoutMs`. */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.done.then(() => exited = true);
    for (;;) {
      for (const l of this.lines) {
        const m = l.match(re);
        if (m) return m;
      }
      if (exited) {
        throw new Error(
          `deno task start exited before printing ${re}:\n${
            this.lines.join("\n")
          }`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no line ${re} within ${timeoutMs} ms:\n${this.lines.join("\n")}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
  }

  /** Ctrl-C, as a user would; SIGKILL if it does not exit in time. */
  async interrupt(timeoutMs = 30_000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill("SIGINT");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    try {
      return await this.done;
    } finally {
      clearTimeout(t);
    }
  }
}

/**
 * The dashboard at `url` (https) answers a client trusting `caFile`, and
 * its snapshot shows every cluster reached over https with its token: a
 * raft leader, the serving GFS master and its chunkservers, the search
 * shards, the tables cell's tablet map. A plain-HTTP request is refused.
 */
export async function assertClustersOverTls(url: string, caFile: string) {
  const client = await tlsClient(caFile);
  try {
    const deadline = Date.now() + 60_000;
    let last = "";
    for (;;) {
      const res = await fetch(`${url}/api/snapshot`, {
        client,
        signal: AbortSignal.timeout(10_000),
      });
      const s = await res.json();
      const ok = s.raft.leader !== null && s.gfs.reachable &&
        s.gfs.chunkservers.length === 3 &&
        s.gfs.chunkservers.every((c: { url: string }) =>
          c.url.startsWith("https://")
        ) &&
        s.search.shards.length === 3 && s.tables.reachable &&
        s.tables.tablets.length >= 2 &&
        s.tables.servers.length === 3 &&
        s.tables.servers.every((x: { url: string; serving: boolean | null }) =>
          x.url.startsWith("https://") && x.serving === true
        );
      if (ok) break;
      last = JSON.stringify({
        leader: s.raft.leader,
        gfs: s.gfs.error,
        shards: s.search.shards.length,
        tables: s.tables.error,
      });
      if (Date.now() > deadline) {
        assert.fail(`the clusters were not all reached over TLS: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await assert.rejects(
      fetch(url.replace("https:", "http:") + "/api/snapshot", {
        signal: AbortSignal.timeout(5000),
      }).then((r) => r.body?.cancel()),
      "the dashboard does not answer plain HTTP",
    );
  } finally {
    client.close();
  }
}
