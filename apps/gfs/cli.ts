/**
 * `deno task gfs:cli [--master URL] <command>`:
 *
 *   put <local-file|-> <gfs-path> [--replication N]   upload (streamed)
 *   get <gfs-path> [local-file|-] [--range bytes=a-b]   download (streamed)
 *   ls [prefix]                                          list files
 *   rm <gfs-path>                                        delete (to the trash)
 *   undelete <trash-path>                                restore from the trash
 *   stat <gfs-path>                                      file metadata
 *   health                                               replication health
 *   masters                                              the master group's members
 *   masters add <id> <raftHost:port> <httpHost:port>     add a master (started with
 *                                                        --join) as a learner
 *   masters promote <id> | masters remove <id>           make it a voter / remove one
 *
 * The master URL defaults to $GFS_MASTER or http://127.0.0.1:7400; the
 * token to --token, --token-file, $STRATA_TOKEN, else ./data/gfs/admin.token
 * (what `deno task gfs` generates).
 * Errors print `error <code>: <message>` and exit 1 (2 for usage).
 */
import {
  parseFlagsAndPositionalsOrExit,
  readToken,
  tlsClient,
} from "@strata/edge";
import { z } from "zod";
import { GfsClient } from "./client/client.ts";
import { GfsError, isGfsError } from "./shared/gfs_error.ts";
import { parsePath } from "./shared/gfs_path.ts";
import { parseRange } from "./client/range_header.ts";

const USAGE =
  `usage: gfs:cli [--master URL] put <local|-> <path> [--replication N]
       gfs:cli [--master URL] get <path> [local|-] [--range bytes=a-b]
       gfs:cli [--master URL] ls [prefix] | rm <path> | undelete <trash-path> | stat <path> | health
       gfs:cli [--master URL] masters [add <id> <raftHost:port> <httpHost:port> | promote <id> | remove <id>]
  --token T / --token-file FILE   bearer token (default $STRATA_TOKEN, else
                                  ./data/gfs/admin.token, which \`deno task gfs\` creates)
  --ca-cert FILE                  trust this PEM certificate (a cell started with --tls-cert;
                                  give https:// master URLs)`;

const Flags = z.object({
  master: z.string().min(1).optional(),
  replication: z.coerce.number().int().min(1).max(16).optional(),
  range: z.string().optional(),
  token: z.string().min(1).optional(),
  "token-file": z.string().min(1).optional(),
  "ca-cert": z.string().min(1).optional(),
});

async function main(argv: string[]): Promise<number> {
  // --help: the usage, exit 0; a bad flag: the problem and the usage, exit 2.
  const { flags: values, positionals } = parseFlagsAndPositionalsOrExit(
    argv,
    Flags,
    USAGE,
  );
  if (positionals.length === 0) {
    console.error(USAGE);
    return 2;
  }
  const master = values.master ?? Deno.env.get("GFS_MASTER") ??
    "http://127.0.0.1:7400";
  const token = await readToken({
    token: values.token,
    tokenFile: values["token-file"],
    defaultDir: "./data/gfs",
  });
  const httpClient = values["ca-cert"]
    ? await tlsClient(values["ca-cert"])
    : undefined;
  const client = new GfsClient(master.replace(/\/$/, ""), {
    token,
    httpClient,
  });
  const [cmd, a, b, c] = positionals;
  switch (cmd) {
    case "put": {
      if (!a || !b) {
        throw new GfsError("bad_request", "put needs <local|-> <path>");
      }
      const replication = values.replication;
      const path = parsePath(b);
      const file = a === "-" ? null : await Deno.open(a, { read: true });
      const r = await client.upload(
        path,
        file ? file.readable : Deno.stdin.readable,
        { replication },
      );
      console.log(JSON.stringify({ path, ...r }));
      return 0;
    }
    case "get": {
      if (!a) throw new GfsError("bad_request", "get needs <path>");
      const path = parsePath(a);
      let range;
      if (values.range !== undefined) {
        const st = await client.stat(path);
        range = parseRange(values.range, st.length) ?? undefined;
      }
      const d = await client.download(path, range);
      if (!b || b === "-") {
        await d.stream.pipeTo(Deno.stdout.writable, { preventClose: true });
      } else {
        const out = await Deno.open(b, {
          write: true,
          create: true,
          truncate: true,
        });
        await d.stream.pipeTo(out.writable);
        console.error(JSON.stringify({ path, bytes: d.length, to: b }));
      }
      return 0;
    }
    case "ls": {
      for (const f of await client.ls(a ?? "/")) {
        console.log(
          `${String(f.length).padStart(12)}  ${
            new Date(f.mtime).toISOString()
          }  ${f.path}`,
        );
      }
      return 0;
    }
    case "rm": {
      if (!a) throw new GfsError("bad_request", "rm needs <path>");
      console.log(
        JSON.stringify({
          deleted: parsePath(a),
          trashPath: await client.remove(parsePath(a)),
        }),
      );
      return 0;
    }
    case "undelete": {
      if (!a) throw new GfsError("bad_request", "undelete needs <trash-path>");
      console.log(
        JSON.stringify({ restored: await client.undelete(parsePath(a)) }),
      );
      return 0;
    }
    case "stat": {
      if (!a) throw new GfsError("bad_request", "stat needs <path>");
      console.log(JSON.stringify(await client.stat(parsePath(a)), null, 2));
      return 0;
    }
    case "health": {
      const health = await client.masters.call("/v1/health", z.unknown());
      console.log(JSON.stringify(health, null, 2));
      return 0;
    }
    case "masters": {
      if (a === undefined) {
        const m = await client.masters.call(
          "/v1/master",
          z.object({ members: z.unknown() }).passthrough(),
        );
        console.log(JSON.stringify(m.members ?? [], null, 2));
        return 0;
      }
      const id = Number(b);
      if (
        !["add", "promote", "remove"].includes(a) || !Number.isInteger(id) ||
        (a === "add"
          ? !c || positionals.length !== 5
          : positionals.length !== 3)
      ) {
        throw new GfsError(
          "bad_request",
          "masters add <id> <raftHost:port> <httpHost:port> | promote <id> | remove <id>",
        );
      }
      const body = a === "add"
        ? { action: a, id, peer: c, http: positionals[4] }
        : { action: a, id };
      const r = await client.masters.call(
        "/v1/master/members",
        z.object({ members: z.unknown() }),
        { body, timeoutMs: 20_000 },
      );
      console.log(JSON.stringify(r.members, null, 2));
      return 0;
    }
    default:
      console.error(`unknown command ${cmd}\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (isGfsError(e)) {
      console.error(`error ${e.code}: ${e.message}`);
      Deno.exit(e.code === "bad_request" ? 2 : 1);
    }
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
