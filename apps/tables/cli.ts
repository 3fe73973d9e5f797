/**
 * `deno task tables:cli <command>`: create and list tables, put, get,
 * scan, delete rows and list tablets against a tables cell, through
 * {@link TablesClient}. Masters come from `--masters` (default: the two
 * `deno task tables` starts); the token from `--token`, `--token-file`,
 * STRATA_TOKEN, else ./data/tables/auth/admin.token (edge's `readToken`, as
 * the kv and gfs CLIs).
 */
import { storageModeSchema } from "./shared/wire.ts";
import { z } from "zod";
import {
  parseFlagsAndPositionalsOrExit,
  readToken,
  tlsClient,
} from "@strata/edge";
import {
  type Row,
  TablesClient,
  TablesClientError,
} from "./client/tables_client.ts";
import { pointText, TimeSeriesClient } from "./client/time_series_client.ts";
import { FEED_HELP, feedCommand } from "./feeds/feed_cli.ts";
import { FeedError } from "./feeds/feed_client.ts";
import { BACKUP_HELP, backupCommand } from "./backup/backup_cli.ts";
import { CRDT_HELP, crdtCommand } from "./crdt/crdt_cli.ts";

const HELP = `usage: deno task tables:cli [options] <command> [args]

commands:
  create <table> <family>... [--splits k1,k2]  create a table (pre-split at the keys)
        [--storage disk|memory|write-behind] [--snapshot-ms N]  (default disk)
  drop <table>                                   delete a table
  tables                                         list tables and their families
  put <table> <row> <family:qualifier> <value>   put one cell (--timestamp MS)
  get <table> <row> [--versions N] [--as-of MS] [--columns f,f:q]
  del <table> <row>                              delete a row
  scan <table> [--start K] [--end K] [--prefix P] [--limit N] [--as-of MS] [--columns ...]
  tablets [table]                                tablets with their ranges, servers, sizes, load
  move <tablet id> <server id>                   move a tablet (admin)
  split <tablet id> [key]                        split a tablet (at its middle key by default)
  merge <tablet id> <next tablet id>             merge a tablet with the one right after it (admin)
  ts create <table> [--bucket-ms N] [--spread N] [--hashing on|off] [--tablets N]
                                                 create a time-series table (a week's buckets, hashed)
  ts write <table> <series> <value>... [--t MS]  write points at t, t+1, ... (default now)
  ts range <table> <series> [--from MS] [--to MS] [--limit N]
                                                 points in [from, to) in time order (default the last hour)
${FEED_HELP}
${BACKUP_HELP}
${CRDT_HELP}

options:
  --masters URLS      masters, comma-separated (default http://127.0.0.1:7400,:7401)
  --token T           bearer token (default STRATA_TOKEN, else
  --token-file FILE     ./data/tables/auth/admin.token, which \`deno task tables\` creates)
  --ca-cert FILE      trust this PEM certificate (a cell started with --tls-cert; give
                      https:// master URLs)

Rows, qualifiers and values are taken and shown as UTF-8 text (bytes that are
not valid UTF-8 are shown as \\xNN).
`;

const { flags: f, positionals } = parseFlagsAndPositionalsOrExit(
  Deno.args,
  z.object({
    masters: z.string().min(1).default(
      "http://127.0.0.1:7400,http://127.0.0.1:7401",
    ),
    token: z.string().min(1).optional(),
    "token-file": z.string().min(1).optional(),
    "ca-cert": z.string().min(1).optional(),
    splits: z.string().optional(),
    storage: storageModeSchema.optional(),
    "snapshot-ms": z.coerce.number().int().min(50).optional(),
    timestamp: z.coerce.number().int().min(0).optional(),
    versions: z.coerce.number().int().min(1).optional(),
    "as-of": z.coerce.number().int().min(0).optional(),
    columns: z.string().optional(),
    start: z.string().optional(),
    end: z.string().optional(),
    prefix: z.string().optional(),
    limit: z.coerce.number().int().min(1).optional(),
    "bucket-ms": z.coerce.number().int().min(1000).optional(),
    spread: z.coerce.number().int().min(1).max(256).optional(),
    hashing: z.enum(["on", "off"]).optional(),
    tablets: z.coerce.number().int().min(1).max(100).optional(),
    t: z.coerce.number().int().min(0).optional(),
    from: z.coerce.number().int().min(0).optional(),
    // feed and backup commands
    partitions: z.coerce.number().int().min(1).optional(),
    "retention-ms": z.coerce.number().int().min(1).optional(),
    "retention-bytes": z.coerce.number().int().min(1).optional(),
    max: z.coerce.number().int().min(1).max(10_000).optional(),
    commit: z.boolean().optional(),
    at: z.coerce.number().int().min(0).optional(),
    // `backup --to /backups/NAME` names a path; `ts range --to MS` a time
    to: z.string().min(1).optional(),
    table: z.string().min(1).optional(),
    gfs: z.string().min(1).optional(),
    "gfs-token-file": z.string().min(1).optional(),
    "storage-root": z.string().min(1).optional(),
    // crdt commands
    replicas: z.coerce.number().int().min(1).max(7).optional(),
    replica: z.string().min(1).optional(),
  }),
  HELP,
);

/** The caller's token, looked up as the kv and gfs CLIs do. */
function token(): Promise<string | undefined> {
  return readToken({
    token: f.token,
    tokenFile: f["token-file"],
    defaultDir: "./data/tables/auth",
  });
}

const text = (b: Uint8Array) => {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return [...b].map((x) => `\\x${x.toString(16).padStart(2, "0")}`).join("");
  }
};
const showRow = (r: Row) =>
  JSON.stringify({
    row: text(r.key),
    cells: r.cells.map((c) => ({
      column: `${c.family}:${text(c.qualifier)}`,
      timestamp: c.timestamp,
      value: text(c.value),
    })),
  });
const usage = (message: string): never => {
  console.error(`${message}\n\n${HELP}`);
  Deno.exit(2);
};
const column = (s: string | undefined) => {
  const i = s?.indexOf(":") ?? -1;
  if (!s || i <= 0) usage("give a column as family:qualifier");
  return { family: s!.slice(0, i), qualifier: s!.slice(i + 1) };
};
const read = {
  ...(f.versions !== undefined ? { versions: f.versions } : {}),
  ...(f["as-of"] !== undefined ? { asOf: f["as-of"] } : {}),
  ...(f.columns ? { columns: f.columns.split(",") } : {}),
};

const client = new TablesClient(f.masters.split(","), {
  ...(await token().then((t) => (t ? { token: t } : {}))),
  ...(f["ca-cert"] ? { httpClient: await tlsClient(f["ca-cert"]) } : {}),
  retryForMs: 10_000,
});
const [cmd, ...args] = positionals;
try {
  switch (cmd) {
    case "create": {
      const [name, ...families] = args;
      if (!name || families.length === 0) usage("create <table> <family>...");
      const tablets = await client.createTable(
        name!,
        families.map((n) => ({ name: n })),
        f.splits ? f.splits.split(",") : [],
        {
          ...(f.storage ? { storage: f.storage } : {}),
          ...(f["snapshot-ms"] ? { snapshotMs: f["snapshot-ms"] } : {}),
        },
      );
      console.log(JSON.stringify({ created: name, tablets: tablets.length }));
      break;
    }
    case "drop":
      if (!args[0]) usage("drop <table>");
      await client.deleteTable(args[0]!);
      console.log(JSON.stringify({ deleted: args[0] }));
      break;
    case "tables":
      for (const t of await client.listTables()) console.log(JSON.stringify(t));
      break;
    case "put": {
      const [table, row, col, value] = args;
      if (!table || !row || value === undefined) {
        usage("put <table> <row> <family:qualifier> <value>");
      }
      const c = column(col);
      await client.put(
        table!,
        row!,
        c.family,
        c.qualifier,
        value!,
        f.timestamp,
      );
      console.log(JSON.stringify({ put: row }));
      break;
    }
    case "get": {
      const [table, row] = args;
      if (!table || !row) usage("get <table> <row>");
      console.log(showRow(await client.getRow(table!, row!, read)));
      break;
    }
    case "del": {
      const [table, row] = args;
      if (!table || !row) usage("del <table> <row>");
      await client.deleteRow(table!, row!);
      console.log(JSON.stringify({ deleted: row }));
      break;
    }
    case "scan": {
      if (!args[0]) usage("scan <table>");
      for await (
        const r of client.scan(args[0]!, {
          ...read,
          ...(f.start !== undefined ? { start: f.start } : {}),
          ...(f.end !== undefined ? { end: f.end } : {}),
          ...(f.prefix !== undefined ? { prefix: f.prefix } : {}),
          ...(f.limit !== undefined ? { limit: f.limit } : {}),
        })
      ) console.log(showRow(r));
      break;
    }
    case "tablets":
      for (const t of await client.tablets(args[0])) {
        console.log(JSON.stringify({
          id: t.id,
          table: t.table,
          start: text(t.start),
          end: t.end === null ? null : text(t.end),
          server: t.server,
          url: t.url,
          ...(t.bytes !== undefined ? { bytes: t.bytes } : {}),
          ...(t.load
            ? {
              writesPerSec: Math.round(t.load.writesPerSec * 10) / 10,
              readsPerSec: Math.round(t.load.readsPerSec * 10) / 10,
            }
            : {}),
        }));
      }
      break;
    case "move":
      if (!args[0] || !args[1]) usage("move <tablet id> <server id>");
      await client.moveTablet(args[0]!, args[1]!);
      console.log(JSON.stringify({ moved: args[0], to: args[1] }));
      break;
    case "split": {
      if (!args[0]) usage("split <tablet id> [key]");
      const halves = await client.splitTablet(args[0]!, args[1]);
      console.log(JSON.stringify({
        split: args[0],
        into: halves.map((t) => ({
          id: t.id,
          start: text(t.start),
          end: t.end === null ? null : text(t.end),
        })),
      }));
      break;
    }
    case "merge": {
      if (!args[0] || !args[1]) usage("merge <tablet id> <next tablet id>");
      const t = await client.mergeTablets(args[0]!, args[1]!);
      console.log(JSON.stringify({
        merged: [args[0], args[1]],
        into: {
          id: t.id,
          start: text(t.start),
          end: t.end === null ? null : text(t.end),
        },
      }));
      break;
    }
    case "ts": {
      const [sub, table, series, ...values] = args;
      const ts = new TimeSeriesClient(client);
      if (sub === "create" && table) {
        await ts.create(table, {
          ...(f["bucket-ms"] !== undefined ? { bucketMs: f["bucket-ms"] } : {}),
          ...(f.spread !== undefined ? { spread: f.spread } : {}),
          ...(f.hashing ? { hashing: f.hashing === "on" } : {}),
          ...(f.tablets !== undefined ? { tablets: f.tablets } : {}),
        });
        console.log(
          JSON.stringify({ created: table, ...await ts.spec(table) }),
        );
      } else if (sub === "write" && table && series && values.length > 0) {
        const t0 = f.t ?? Date.now();
        await ts.write(
          table,
          series,
          values.map((value, i) => ({ t: t0 + i, value })),
        );
        console.log(JSON.stringify({ written: values.length, series, t: t0 }));
      } else if (sub === "range" && table && series) {
        const to = f.to === undefined ? Date.now() + 1 : Number(f.to);
        if (!Number.isSafeInteger(to) || to < 0) {
          usage("ts range: --to is a time in ms since the epoch");
        }
        const from = f.from ?? to - 3600_000;
        for await (
          const p of ts.range(table, series, from, to, {
            ...(f.limit !== undefined ? { limit: f.limit } : {}),
          })
        ) console.log(JSON.stringify(pointText(p)));
      } else usage("ts create|write|range <table> ...");
      break;
    }
    case "feed":
      await feedCommand(client, args, f);
      break;
    case "crdt":
      await crdtCommand(client, args, f);
      break;
    case "backup":
    case "restore":
      await backupCommand(client, cmd, args, f);
      break;
    default:
      usage(cmd ? `unknown command ${cmd}` : "give a command");
  }
} catch (e) {
  if (e instanceof FeedError) {
    console.error(`${e.code}: ${e.message}`);
    Deno.exit(1);
  }
  if (e instanceof TablesClientError) {
    console.error(`${e.code}: ${e.message}`);
    Deno.exit(1);
  }
  throw e;
}
