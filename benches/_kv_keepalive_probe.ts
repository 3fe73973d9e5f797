/**
 * Probe: what session keep-alives cost a 3-node kv cluster. Starts one,
 * measures the nodes' CPU (ms/s, from /proc) idle, then while one client
 * sends 10 keep-alives a second to the leader, then to a follower.
 * `deno run -A benches/_kv_keepalive_probe.ts`; `SEC` sets each window
 * (default 15 s), `MODE=idle,leader,follower` which ones run.
 */
import { startLocalCluster } from "@strata/kv/cluster_launcher";
import { KvClient } from "@strata/kv";
import { cpuMs } from "./proc_cpu.ts";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dataRoot = await Deno.makeTempDir({ prefix: "kv-ka-" });
const kv = await startLocalCluster({ size: 3, dataRoot });
const SEC = Number(Deno.env.get("SEC") ?? 15);
try {
  const nodes = [...kv.nodes.values()].sort((a, b) => a.id - b.id);
  const pids = nodes.map((n) => n.process.pid);
  const tok = kv.secrets!.tokens.write;
  await sleep(3000);
  const status = await (await fetch(`${nodes[0]!.url}/v1/status`, {
    headers: { authorization: `Bearer ${tok}` },
  })).json();
  const leader = nodes.find((n) => n.id === status.leader)!;
  const follower = nodes.find((n) => n.id !== status.leader)!;
  const measure = async (
    label: string,
    fn?: (stop: { v: boolean }) => Promise<void>,
  ) => {
    const stop = { v: false };
    const run = fn?.(stop);
    await sleep(500);
    const c0 = await Promise.all(pids.map((p) => cpuMs([p])));
    const t0 = performance.now();
    await sleep(SEC * 1000);
    const c1 = await Promise.all(pids.map((p) => cpuMs([p])));
    const el = (performance.now() - t0) / 1000;
    stop.v = true;
    await run;
    const per = c1.map((v, i) => (v - c0[i]!) / el);
    console.log(
      `${label}: kv ${per.reduce((a, b) => a + b, 0).toFixed(1)} ms/s [${
        per.map((x) => x.toFixed(1)).join(" ")
      }] load ${Deno.loadavg()[0]!.toFixed(1)}`,
    );
  };
  const ka =
    (endpoint: string, perSec: number) => async (stop: { v: boolean }) => {
      const c = new KvClient([endpoint], { token: tok });
      const s = await c.openSession(10_000, { keepAlive: false });
      while (!stop.v) {
        await c.keepAlive(s.id);
        await sleep(1000 / perSec);
      }
      await s.close();
    };
  const mode = Deno.env.get("MODE") ?? "idle,leader,follower";
  for (const m of mode.split(",")) {
    if (m === "idle") await measure("idle");
    if (m === "leader") {
      await measure(`10 ka/s to leader ${leader.id}`, ka(leader.url, 10));
    }
    if (m === "follower") {
      await measure(`10 ka/s to follower ${follower.id}`, ka(follower.url, 10));
    }
  }
} finally {
  await kv.stop();
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
}
