/**
 * `deno task kv:cli <command>`: put, get, del, scan, watch, lock, status
 * against a raft-kv cluster. Endpoints come from `--endpoints` or
 * STRATA_RAFT_ENDPOINTS (default: the three nodes `deno task kv` starts).
 */
import { z } from "zod";
import { parseFlags, tlsClient } from "@strata/edge";
import { parsePeerList } from "@strata/replication";
import { KvClient, KvClientError, readKvToken } from "./client.ts";

const HELP = `usage: deno task kv:cli [options] <command> [args]

commands:
  put <key> <value>         store a value (prints the revision)
  get <key> [--consistency linearizable|lease|stale]
  del <key>                 delete a key
  scan [prefix] [--limit N] list keys under a prefix, in order
  watch [prefix] [--from R] print committed changes as they happen (Ctrl-C stops)
  lock <name> [--ttl ms] [--wait ms]
                            take a lock with a new session; hold it until Ctrl-C
  status                    every node's role, term, leader and indexes
  members                   the configuration: voters, learners, leader, joint or not
  reconfigure [--add LIST] [--add-learner LIST] [--promote IDS] [--demote IDS] [--remove IDS]
                            apply all these changes at once through a joint configuration
                            (admin token); LIST is id=peerHost:port[/httpHost:port],...
                            e.g. reconfigure --add 4=127.0.0.1:7004/127.0.0.1:2384,5=... --remove 2,3

options:
  --endpoints h:p,h:p       the nodes (default STRATA_RAFT_ENDPOINTS, else the three
                            nodes \`deno task kv\` starts); https://h:p for TLS
  --token T                 bearer token (default STRATA_TOKEN, else
  --token-file FILE           ./data/kv/admin.token, which \`deno task kv\` creates)
  --ca-cert FILE            trust this PEM certificate (a self-signed node certificate)
`;

const idList = z.string().regex(/^\d+(,\d+)*$/, "ids, e.g. 2,3").transform(
  (s) => s.split(",").map(Number),
);

const flagsSchema = z.object({
  endpoints: z.string().min(1).default(
    Deno.env.get("STRATA_RAFT_ENDPOINTS") ??
      "127.0.0.1:2380,127.0.0.1:2381,127.0.0.1:2382",
  ),
  consistency: z.enum(["linearizable", "lease", "stale"]).default(
    "linearizable",
  ),
  limit: z.coerce.number().int().positive().max(1_000_000).default(1000),
  from: z.coerce.number().int().positive().optional(),
  ttl: z.coerce.number().int().min(1000).default(10_000),
  wait: z.coerce.number().int().min(0).max(60_000).default(0),
  token: z.string().min(1).optional(),
  "token-file": z.string().min(1).optional(),
  "ca-cert": z.string().min(1).optional(),
  add: z.string().min(1).optional(),
  "add-learner": z.string().min(1).optional(),
  promote: idList.optional(),
  demote: idList.optional(),
  remove: idList.optional(),
});

async function main(args: string[]): Promise<number> {
  const parsed = parseFlags(args, flagsSchema, HELP, { positionals: true });
  if (parsed.kind === "help") {
    console.log(HELP);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`${parsed.message}\n\n${HELP}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (!command) {
    console.error(HELP);
    return 2;
  }
  const flags = parsed.flags;
  const token = await readKvToken({
    token: flags.token,
    tokenFile: flags["token-file"],
  });
  const httpClient = flags["ca-cert"]
    ? await tlsClient(flags["ca-cert"])
    : undefined;
  const kv = new KvClient(flags.endpoints.split(",").map((s) => s.trim()), {
    token,
    httpClient,
  });
  const need = (n: number, what: string) => {
    if (rest.length < n) throw new UsageError(`${command} needs ${what}`);
  };
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  switch (command) {
    case "put":
      need(2, "<key> <value>");
      console.log(
        JSON.stringify({
          key: rest[0],
          revision: await kv.put(rest[0]!, rest[1]!),
        }),
      );
      return 0;
    case "get": {
      need(1, "<key>");
      const e = await kv.get(rest[0]!, flags.consistency);
      if (!e) {
        console.error(`${rest[0]}: not found`);
        return 1;
      }
      console.log(
        JSON.stringify({
          key: e.key,
          value: text(e.value),
          revision: e.revision,
          version: e.version,
        }),
      );
      return 0;
    }
    case "del":
      need(1, "<key>");
      console.log(
        JSON.stringify({ key: rest[0], ...(await kv.delete(rest[0]!)) }),
      );
      return 0;
    case "scan": {
      let n = 0;
      for await (const e of kv.scan(rest[0] ?? "")) {
        console.log(
          JSON.stringify({
            key: e.key,
            value: text(e.value),
            revision: e.revision,
          }),
        );
        if (++n >= flags.limit) break;
      }
      return 0;
    }
    case "watch": {
      const ac = new AbortController();
      Deno.addSignalListener("SIGINT", () => ac.abort());
      for await (const e of kv.watch(rest[0] ?? "", flags.from, ac.signal)) {
        console.log(JSON.stringify({ ...e, value: e.value && text(e.value) }));
      }
      return 0;
    }
    case "lock": {
      need(1, "<name>");
      const session = await kv.openSession(flags.ttl);
      const token = await kv.lock(rest[0]!, session.id, flags.wait);
      if (token === undefined) {
        console.error(`${rest[0]}: held by another session`);
        await session.close();
        return 1;
      }
      console.log(
        JSON.stringify({ lock: rest[0], session: session.id, token }),
      );
      console.log("holding the lock; Ctrl-C releases it");
      await new Promise<void>((resolve) =>
        Deno.addSignalListener("SIGINT", () => resolve())
      );
      await session.close();
      return 0;
    }
    case "status": {
      for (const ep of flags.endpoints.split(",")) {
        try {
          console.log(
            JSON.stringify({
              endpoint: ep,
              ...(await kv.status(ep.startsWith("http") ? ep : `http://${ep}`)),
            }),
          );
        } catch (e) {
          console.log(
            JSON.stringify({
              endpoint: ep,
              error: e instanceof Error ? e.message : String(e),
            }),
          );
        }
      }
      return 0;
    }
    case "members":
      console.log(JSON.stringify(await kv.cluster()));
      return 0;
    case "reconfigure": {
      const changes: Parameters<KvClient["changeMembers"]>[0] = [];
      for (
        const [flag, learner] of [["add", false], [
          "add-learner",
          true,
        ]] as const
      ) {
        const list = flags[flag];
        if (!list) continue;
        let parsed;
        try {
          parsed = parsePeerList(list);
        } catch (e) {
          throw new UsageError(
            `--${flag}: ${(e as Error).message.replace(/^--peers: /, "")}`,
          );
        }
        for (const [id, a] of parsed) {
          changes.push({
            action: "add",
            id,
            peerAddress: a.peer,
            ...(a.http ? { httpAddress: a.http } : {}),
            ...(learner ? { learner } : {}),
          });
        }
      }
      for (const action of ["promote", "demote", "remove"] as const) {
        for (const id of flags[action] ?? []) changes.push({ action, id });
      }
      if (changes.length === 0) {
        throw new UsageError(
          "reconfigure needs at least one of --add, --add-learner, --promote, --demote, --remove",
        );
      }
      console.log(JSON.stringify(await kv.changeMembers(changes)));
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

class UsageError extends Error {}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (e instanceof UsageError) console.error(`${e.message}\n\n${HELP}`);
    else if (e instanceof KvClientError) {
      console.error(`error (${e.code}): ${e.message}`);
    } else console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
