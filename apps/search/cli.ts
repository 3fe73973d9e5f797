/**
 * `deno task search:cli <command>`: index, search, get, delete, user and
 * status against a search coordinator. The URL comes from `--url` or
 * STRATA_SEARCH_URL (`deno task search` prints it); the token from
 * `--token`, `--token-file`, STRATA_TOKEN or ./data/search/admin.token.
 */
import { basename } from "node:path";
import { z } from "zod";
import { parseFlags, tlsClient } from "@strata/edge";
import {
  DEFAULT_BATCH,
  readSearchToken,
  SearchClient,
  SearchClientError,
} from "./client/client.ts";

const HELP = `usage: deno task search:cli [options] <command> [args]

commands:
  index <file>|-            index an NDJSON file (one document per line:
                            {"id","user_id","name","body"[,"created"]}); - reads stdin.
                            A file not ending in .ndjson/.jsonl is indexed as ONE
                            document: --id (default: the file name), --user,
                            --name (default: the file name), body = the file's text
  search <query...>         top hits of a query (words, "phrases", AND, -x, prefix*,
                            name:, user:) [--size N] [--from N] [--user N] [--op and]
                            [--no-snippets] [--json]
  get <id>                  one stored document (JSON)
  delete <id>               delete a document
  user <user_id>            a user's documents, newest first [--size N] [--from N]
  status                    shards, replicas (up, behind), documents, repairs
                            (exit 1 when a shard is down or a replica is catching up)

options:
  --url URL                 the coordinator (default STRATA_SEARCH_URL)
  --token T                 bearer token (default STRATA_TOKEN, else
  --token-file FILE           ./data/search/admin.token: deno task search --data ./data/search)
  --ca-cert FILE            trust this PEM certificate (a cluster started with
                              --tls-cert; give an https:// URL)
  --batch N                 documents per bulk request when indexing (default ${DEFAULT_BATCH})
  -h, --help                this text

exit status: 0 done, 1 not found / the service refused, 2 bad usage`;

const flagsSchema = z.object({
  url: z.string().url().optional(),
  token: z.string().min(1).optional(),
  "token-file": z.string().min(1).optional(),
  "ca-cert": z.string().min(1).optional(),
  batch: z.coerce.number().int().min(1).max(50_000).default(DEFAULT_BATCH),
  size: z.coerce.number().int().min(1).max(100).optional(),
  from: z.coerce.number().int().min(0).max(1000).optional(),
  user: z.coerce.number().int().min(0).optional(),
  op: z.enum(["or", "and"]).optional(),
  "no-snippets": z.boolean().default(false),
  json: z.boolean().default(false),
  id: z.string().min(1).optional(),
  name: z.string().optional(),
});

class UsageError extends Error {}

async function readInput(path: string): Promise<string> {
  if (path !== "-") return await Deno.readTextFile(path);
  return await new Response(Deno.stdin.readable).text();
}

/** Runs the CLI with `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
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
  const flags = parsed.flags;
  const url = flags.url ?? Deno.env.get("STRATA_SEARCH_URL");
  if (!command) {
    console.error(HELP);
    return 2;
  }
  try {
    if (!url) {
      throw new UsageError(
        "no coordinator: pass --url http://HOST:PORT or set STRATA_SEARCH_URL (deno task search prints the URL)",
      );
    }
    const token = await readSearchToken({
      token: flags.token,
      tokenFile: flags["token-file"],
    });
    const httpClient = flags["ca-cert"]
      ? await tlsClient(flags["ca-cert"])
      : undefined;
    const client = new SearchClient(url, { token, httpClient });
    const need = (n: number, what: string) => {
      if (rest.length < n) throw new UsageError(`${command} needs ${what}`);
    };
    switch (command) {
      case "index": {
        need(1, "<file> (or - for stdin)");
        const path = rest[0]!;
        const text = await readInput(path);
        let n: number;
        if (path === "-" || /\.(nd)?jsonl?$/i.test(path)) {
          const lines = text.split("\n").filter((l) => l.trim() !== "");
          if (lines.length === 0) throw new UsageError(`${path} is empty`);
          n = await client.indexNdjsonLines(lines, { batch: flags.batch });
        } else {
          n = await client.index([{
            id: flags.id ?? basename(path),
            user_id: flags.user ?? 0,
            name: flags.name ?? basename(path),
            body: text,
          }]);
        }
        console.log(JSON.stringify({ indexed: n }));
        return 0;
      }
      case "search": {
        need(1, "a query");
        const r = await client.search(rest.join(" "), {
          size: flags.size,
          from: flags.from,
          user: flags.user,
          op: flags.op,
          snippets: !flags["no-snippets"],
        });
        if (flags.json) {
          console.log(JSON.stringify(r));
          return 0;
        }
        console.log(
          `${r.hits.length} hits in ${r.took_ms} ms${
            r.partial ? ` (partial: shards ${r.failed_shards} missing)` : ""
          }`,
        );
        for (const h of r.hits) {
          console.log(`${h.score.toFixed(3)}  ${h.id}  ${h.name.slice(0, 80)}`);
          if (h.snippet) console.log(`        ${h.snippet}`);
        }
        return 0;
      }
      case "get": {
        need(1, "<id>");
        const d = await client.get(rest[0]!);
        if (d === null) {
          console.error(`${rest[0]}: not found`);
          return 1;
        }
        console.log(JSON.stringify(d));
        return 0;
      }
      case "delete": {
        need(1, "<id>");
        if (!(await client.delete(rest[0]!))) {
          console.error(`${rest[0]}: not found`);
          return 1;
        }
        console.log(JSON.stringify({ deleted: rest[0] }));
        return 0;
      }
      case "user": {
        need(1, "<user_id>");
        if (!/^\d{1,15}$/.test(rest[0]!)) {
          throw new UsageError(`user id must be a whole number: ${rest[0]}`);
        }
        console.log(
          JSON.stringify(
            await client.userDocs(Number(rest[0]), {
              size: flags.size,
              from: flags.from,
            }),
          ),
        );
        return 0;
      }
      case "status": {
        const s = await client.status();
        console.log(JSON.stringify(s, null, 2));
        return s.partial || s.catching_up > 0 ? 1 : 0;
      }
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${HELP}`);
      return 2;
    }
    if (e instanceof SearchClientError) {
      console.error(`${e.code}: ${e.message}`);
      return 1;
    }
    if (e instanceof Deno.errors.NotFound) {
      console.error(e.message);
      return 1;
    }
    if (e instanceof Error && e.message.startsWith("cannot read")) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
