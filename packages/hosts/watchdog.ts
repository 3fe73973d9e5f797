/**
 * A watchdog per network: a small shell process in its own session that
 * waits on a pipe from the harness's process. When that process ends in
 * any way — `close()`'s normal path aside — the pipe closes and the
 * watchdog removes the instance: it kills what runs in the namespaces,
 * deletes them and the links, and forgets the owner. This is what cleans
 * up after Ctrl-C in `deno test` (whose own SIGINT handling exits without
 * running user code) and after kill -9. Being in its own session, it does
 * not receive the terminal's SIGINT with the test runner.
 */
import { STATE_DIR } from "./owner_registry.ts";

// $1: the instance id (6 hex digits). A "done" line means closed normally.
const SCRIPT = `
id="$1"
IFS= read -r line
[ "$line" = done ] && exit 0
for ns in $(ip netns list | awk '{print $1}' | grep "^strata-hosts-$id-"); do
  for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^sth$id"); do
  ip link del "$l" 2>/dev/null
done
rm -f "${STATE_DIR}/$id.json"
`;

/** A running watchdog. */
export interface Watchdog {
  /** Its pid (tests kill it to exercise the sweep). */
  readonly pid: number;
  /** Tells it the network was removed normally, and waits for it to exit. */
  disarm(): Promise<void>;
}

/** Starts the watchdog of instance `id` (6 hex digits). */
export function startWatchdog(id: string): Watchdog {
  if (!/^[0-9a-f]{6}$/.test(id)) throw new Error(`bad instance id ${id}`);
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", SCRIPT, "sh", id],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref(); // never keeps the harness's process alive
  const writer = child.stdin.getWriter();
  return {
    pid: child.pid,
    async disarm() {
      try {
        await writer.write(new TextEncoder().encode("done\n"));
        await writer.close();
      } catch { /* already gone */ }
      child.ref(); // now wait for it
      await child.status;
    },
  };
}
