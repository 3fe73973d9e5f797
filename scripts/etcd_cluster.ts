/**
 * Starts a 3-member etcd cluster on loopback (Debian's `etcd-server`), for
 * side-by-side benchmarks. Each member has its own temporary data
 * directory; `stop()` kills the processes and removes the directories.
 */
import { freePort } from "@strata/process";

/** A running etcd cluster. */
export interface EtcdCluster {
  /** Client URLs (`http://127.0.0.1:port`), one per member. */
  clientUrls: string[];
  /** etcd's version line. */
  version: string;
  /** The members' process ids (to read their CPU time). */
  pids: number[];
  /** Stops every member and deletes its data. */
  stop(): Promise<void>;
}

/** The etcd binary, or undefined when it is not installed. */
export async function findEtcd(): Promise<string | undefined> {
  for (const p of ["/usr/bin/etcd", "/usr/local/bin/etcd"]) {
    try {
      await Deno.stat(p);
      return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * Starts `members` etcd processes and waits until the cluster has a leader.
 * @throws Error when etcd is missing or does not become healthy in time.
 */
export async function startEtcdCluster(
  members = 3,
  timeoutMs = 30_000,
): Promise<EtcdCluster> {
  const bin = await findEtcd();
  if (!bin) {
    throw new Error("etcd is not installed (apt-get install -y etcd-server)");
  }
  const version = new TextDecoder().decode(
    (await new Deno.Command(bin, { args: ["--version"], stdout: "piped" })
      .output()).stdout,
  )
    .split("\n")[0] ?? "etcd";
  const root = await Deno.makeTempDir({ prefix: "strata-etcd-" });
  const nodes = [];
  for (let i = 0; i < members; i++) {
    nodes.push({
      name: `e${i}`,
      client: await freePort(),
      peer: await freePort(),
    });
  }
  const initial = nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(
    ",",
  );
  const procs = nodes.map((n) =>
    new Deno.Command(bin, {
      args: [
        "--name",
        n.name,
        "--data-dir",
        `${root}/${n.name}`,
        "--listen-client-urls",
        `http://127.0.0.1:${n.client}`,
        "--advertise-client-urls",
        `http://127.0.0.1:${n.client}`,
        "--listen-peer-urls",
        `http://127.0.0.1:${n.peer}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${n.peer}`,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "strata-bench",
        "--log-level",
        "error",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  const clientUrls = nodes.map((n) => `http://127.0.0.1:${n.client}`);
  const stop = async () => {
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await Promise.allSettled(procs.map((p) => p.status));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${clientUrls[0]}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: btoa("health"), value: btoa("ok") }),
        signal: AbortSignal.timeout(1000),
      });
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`etcd did not become healthy within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { clientUrls, version, pids: procs.map((p) => p.pid), stop };
}
