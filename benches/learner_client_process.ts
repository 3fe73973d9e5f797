/**
 * One client process of bench:learners: holds `groups` multiplexed learner
 * connections (`KvClient.followMany`), each with `perGroup` replicas of one
 * prefix, on the members given, spread round-robin. Driven over
 * stdin/stdout, one JSON line each way:
 *
 * - on start it prints `{"ready":true,"ms":…}` once every replica holds a
 *   state (or `{"error":…}` and exits 1);
 * - `count` → `{"changes":…}`: changes applied by all its replicas so far;
 * - `wait <revision> <ms>` → `{"behind":…,"lowest":…,"disconnected":…}`
 *   once every replica reached the revision, or the time ran out;
 * - `exit` (or end of stdin) closes the groups and exits.
 *
 * Usage: deno run -A benches/learner_client_process.ts '<json options>'
 * with {urls: string[], members: string[], token: string, prefix: string, groups: number,
 * perGroup: number}.
 */
import { z } from "zod";
import { type FollowGroup, KvClient } from "@strata/kv";

const Options = z.object({
  urls: z.array(z.string().url()).min(1),
  members: z.array(z.string()).min(1),
  token: z.string(),
  prefix: z.string(),
  groups: z.number().int().positive(),
  perGroup: z.number().int().positive(),
});
const options = Options.parse(JSON.parse(Deno.args[0] ?? "{}"));
const encoder = new TextEncoder();
const say = (o: unknown) =>
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(o) + "\n"));

const client = new KvClient(options.urls, { token: options.token });
let changes = 0;
const groups: FollowGroup[] = [];
const t0 = performance.now();
try {
  for (let g = 0; g < options.groups; g++) {
    const first = options.members[g % options.members.length]!;
    groups.push(
      await client.followMany(
        Array.from({ length: options.perGroup }, () => ({
          prefix: options.prefix,
          onUpdate: (u) => void (changes += u.changes.length),
        })),
        {
          members: [first],
          idleTimeoutMs: 30_000,
          startTimeoutMs: 120_000,
        },
      ),
    );
  }
  say({ ready: true, ms: Math.round(performance.now() - t0) });
} catch (e) {
  say({ error: e instanceof Error ? e.message : String(e) });
  Deno.exit(1);
}

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffered = "";
loop: for await (const chunk of lines) {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const [command, a, b] = buffered.slice(0, nl).trim().split(" ");
    buffered = buffered.slice(nl + 1);
    if (command === "count") say({ changes });
    else if (command === "wait") {
      const revision = Number(a);
      const replicas = groups.flatMap((g) => g.replicas);
      const results = await Promise.allSettled(
        replicas.map((r) => r.waitFor(revision, { timeoutMs: Number(b) })),
      );
      const behind = replicas.filter((_, i) =>
        results[i]!.status === "rejected"
      );
      say({
        behind: behind.length,
        lowest: Math.min(...replicas.map((r) => r.revision)),
        disconnected: groups.filter((g) => g.member === undefined).length,
      });
    } else if (command === "exit") break loop;
  }
}
await Promise.all(groups.map((g) => g.close()));
Deno.exit(0);
