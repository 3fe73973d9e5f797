/**
 * `deno task tables:cli crdt …`: the CRDT range commands of the tables
 * CLI, through {@link CrdtClient}. One JSON object a line on stdout.
 */
import type { TablesClient } from "../client/tables_client.ts";
import { CrdtClient, type CrdtKeyValue } from "../client/crdt_client.ts";
import { TablesClientError } from "../client/tables_client_error.ts";

/** The CLI's flags this uses. */
export interface CrdtCliFlags {
  replicas?: number;
  replica?: string;
  prefix?: string;
  limit?: number;
}

/** Usage lines of the CRDT commands. */
export const CRDT_HELP =
  `  crdt create <range> [--replicas N]           declare a CRDT range held by N servers (default 3)
  crdt drop <range>                              delete it (every replica drops its copy)
  crdt ranges                                    ranges and their replicas (the home first)
  crdt incr|decr <range> <key> [N]               add / subtract N (default 1) on the key's counter
  crdt add|remove <range> <key> <element>...     add / remove set elements
  crdt set <range> <key> <value>                 write the key's last-writer-wins register
  crdt get <range> <key>                         the key's value at one replica
  crdt scan <range> [--prefix P] [--limit N]     keys and values at one replica
  crdt status <range>                            per replica: digest, keys, keys not yet pushed
        (get, scan and writes take --replica ID to use that replica only)`;

const show = (v: CrdtKeyValue) => JSON.stringify(v);
const bad = (message: string): never => {
  throw new TablesClientError("bad_request", `${message}\n${CRDT_HELP}`);
};

/** Runs one crdt command. @throws TablesClientError on bad input or a failed call. */
export async function crdtCommand(
  client: TablesClient,
  args: string[],
  f: CrdtCliFlags,
): Promise<void> {
  const crdt = new CrdtClient(client);
  const [sub, range, key, ...rest] = args;
  const o = f.replica ? { replica: f.replica } : {};
  if (sub === "ranges") {
    for (const r of await crdt.ranges()) console.log(JSON.stringify(r));
    return;
  }
  if (!range) bad("give a range");
  const r = range!;
  const needKey = () => key ?? bad("give a key");
  switch (sub) {
    case "create":
      console.log(JSON.stringify(await crdt.createRange(r, f.replicas ?? 3)));
      break;
    case "drop":
      await crdt.deleteRange(r);
      console.log(JSON.stringify({ deleted: r }));
      break;
    case "incr":
    case "decr": {
      const n = rest[0] === undefined ? 1 : Number(rest[0]);
      if (!Number.isSafeInteger(n) || n <= 0) bad("N is a positive integer");
      console.log(
        show(await crdt.incr(r, needKey(), sub === "incr" ? n : -n, o)),
      );
      break;
    }
    case "add":
    case "remove":
      if (rest.length === 0) bad("give elements");
      console.log(show(await crdt[sub](r, needKey(), rest, o)));
      break;
    case "set":
      if (rest.length !== 1) bad("give one value");
      console.log(show(await crdt.set(r, needKey(), rest[0]!, o)));
      break;
    case "get":
      console.log(show(await crdt.get(r, needKey(), o)));
      break;
    case "scan": {
      let after: string | undefined;
      let left = f.limit ?? Infinity;
      for (;;) {
        const page = await crdt.scan(r, {
          ...(f.prefix ? { prefix: f.prefix } : {}),
          ...(after !== undefined ? { after } : {}),
          limit: Math.min(1000, left),
        }, o);
        for (const k of page.keys) console.log(show(k));
        left -= page.keys.length;
        after = page.keys.at(-1)?.key;
        if (!page.more || left <= 0 || after === undefined) break;
        // Later pages from the same replica.
        o.replica ??= page.replica;
      }
      break;
    }
    case "status": {
      const info = await crdt.range(r, true);
      for (const rep of info.replicas) {
        if (!rep.url) {
          console.log(JSON.stringify({
            replica: rep.id,
            url: null,
            error: "not registered in kv now (paused, cut off or restarting)",
          }));
          continue;
        }
        try {
          const d = await crdt.digest(r, { replica: rep.id });
          const st = await client.serverCall(`${rep.url}/v1/crdt`, "GET");
          const mine = (st.ranges as { name: string; pending: unknown }[] ??
            []).find((x) => x.name === r);
          console.log(JSON.stringify({
            replica: rep.id,
            url: rep.url,
            keys: d.keys,
            digest: d.digest,
            pending: mine?.pending ?? null,
          }));
        } catch (e) {
          console.log(JSON.stringify({
            replica: rep.id,
            url: rep.url,
            error: e instanceof Error ? e.message : String(e),
          }));
        }
      }
      break;
    }
    default:
      bad(`unknown crdt command ${sub ?? ""}`);
  }
}
