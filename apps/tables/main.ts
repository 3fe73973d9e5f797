/**
 * `deno task tables`: a whole local tables cell as separate processes —
 * kv ×3 (strata's Chubby), GFS masters ×3 and chunkservers ×3 (holding the
 * tablets), tables masters ×2 and tablet servers ×3 — with data under
 * ./data/tables (reused on the next start). Prints the
 * endpoints and the token paths; Ctrl-C stops everything.
 */
import { z } from "zod";
import {
  onShutdown,
  parseFlagsOrExit,
  tlsClient,
  tlsFiles,
  tokenFile,
} from "@strata/edge";
import { startTablesStack } from "./stack_launcher.ts";
import { TablesClient } from "./client/tables_client.ts";

const HELP =
  `usage: deno task tables [--data-dir DIR] [--port-base PORT] [--servers N] [--masters N]
                         [--tls-cert FILE --tls-key FILE]

Starts kv ×3, a GFS cell (masters ×3, chunkservers ×3), tables masters and tablet
servers on 127.0.0.1, each a process.
  --data-dir DIR     data root (default ./data/tables): kv/ (kv nodes and kv tokens),
                     auth/ (the tables tokens, mode 0600), tablets/ (every tablet's
                     commit log and SSTables), master-*/ and server-*/
  --port-base PORT   masters on PORT, PORT+1, …; tablet servers on PORT+10, …;
                     kv on PORT+20, …; the servers' RESP listeners on PORT+30, …
                     (default 7400)
  --masters N        tables masters (default 2)
  --servers N        tablet servers (default 3)
  --session-ttl-ms N kv session TTL of masters and tablet servers (default 10000)
  --no-gfs           keep tablets in DIR/tablets instead of a GFS cell (GFS masters ×3
                     and chunkservers ×3 under DIR/gfs, the default)
  --tls-cert FILE    every process (kv, GFS, tables) serves HTTPS with this PEM
                     certificate (with --tls-key) and trusts it calling the others
  --tls-key FILE     the certificate's PEM private key
`;

const f = parseFlagsOrExit(
  Deno.args,
  z.object({
    "data-dir": z.string().min(1).default("./data/tables"),
    "port-base": z.coerce.number().int().min(1024).max(65_000).default(7400),
    masters: z.coerce.number().int().min(1).max(5).default(2),
    servers: z.coerce.number().int().min(1).max(9).default(3),
    "session-ttl-ms": z.coerce.number().int().min(1000).default(10_000),
    "no-gfs": z.boolean().default(false),
    "tls-cert": z.string().min(1).optional(),
    "tls-key": z.string().min(1).optional(),
  }),
  HELP,
);

let tls;
try {
  tls = tlsFiles(f);
} catch (e) {
  console.error(`${(e as Error).message}\n\n${HELP}`);
  Deno.exit(2);
}
const base = f["port-base"];
const range = (n: number, from: number) =>
  Array.from({ length: n }, (_, i) => from + i);
const ports = {
  masters: range(f.masters, base),
  servers: range(f.servers, base + 10),
  kv: range(3, base + 20),
  resp: range(f.servers, base + 30),
};
for (
  const p of [...ports.masters, ...ports.servers, ...ports.kv, ...ports.resp]
) {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: p }).close();
  } catch {
    console.error(`port ${p} is taken; choose another base with --port-base`);
    Deno.exit(1);
  }
}
console.log(
  `starting kv ×3, ${
    f["no-gfs"] ? "" : "GFS (masters ×3, chunkservers ×3), "
  }${f.masters} tables masters, ${f.servers} tablet servers (data under ${
    f["data-dir"]
  })…`,
);
const stack = await startTablesStack({
  dataRoot: f["data-dir"],
  masters: f.masters,
  servers: f.servers,
  kvPorts: ports.kv,
  masterPorts: ports.masters,
  serverPorts: ports.servers,
  resp: ports.resp,
  sessionTtlMs: f["session-ttl-ms"],
  inheritStderr: true,
  tls,
  ...(f["no-gfs"] ? {} : { gfs: { masters: 3, chunkservers: 3 } }),
});
const sorted = <T extends { id: string | number }>(m: Map<unknown, T>) =>
  [...m.values()].sort((a, b) => String(a.id) < String(b.id) ? -1 : 1);
for (const n of sorted(stack.kv?.nodes ?? new Map())) {
  console.log(`  kv node ${n.id}:      ${n.url}`);
}
for (const [i, g] of (stack.gfs?.masterUrls ?? []).entries()) {
  console.log(`  gfs master ${i + 1}:    ${g}`);
}
for (const c of stack.gfs?.chunkservers ?? []) {
  console.log(`  gfs chunkserver ${c.id}: ${c.url}`);
}
for (const m of sorted(stack.masters)) {
  console.log(`  master ${m.id}:       ${m.url}`);
}
for (const s of sorted(stack.servers)) {
  console.log(`  tablet server ${s.id}: ${s.url}  RESP ${s.resp}`);
}
// The cache table RESP keys live in, in memory storage mode.
const tables = new TablesClient(stack.masterUrls(), {
  token: stack.secrets.tokens.admin,
  ...(tls ? { httpClient: await tlsClient(tls.certFile) } : {}),
});
if (!(await tables.listTables()).some((t) => t.name === "redis")) {
  await tables.createTable("redis", [{ name: "v" }], [], {
    storage: "memory",
  });
}
const firstResp = sorted(stack.servers)[0]?.resp ?? "";
const admin = tokenFile(stack.secrets.dir, "admin");
const m = stack.masterUrls()[0]!;
const cli =
  (f["data-dir"] === "./data/tables" && base === 7400 && !tls
    ? ""
    : ` --masters ${stack.masterUrls().join(",")} --token-file ${admin}`) +
  (tls ? ` --ca-cert ${tls.certFile}` : "");
console.log(`
Every request needs a token: ${stack.secrets.dir}/{admin,write,read}.token (mode 0600).${
  stack.gfs?.secrets
    ? `
The GFS cell has its own: ${stack.gfs.secrets.dir}/{admin,write,read}.token (tablet servers use write.token).`
    : ""
}
  deno task tables:cli${cli} create users info stats --splits k,t
  deno task tables:cli${cli} put users alice info:name Alice
  deno task tables:cli${cli} get users alice
  deno task tables:cli${cli} scan users
  deno task tables:cli${cli} tablets
  curl ${
  tls ? `--cacert ${tls.certFile} ` : ""
}-H "Authorization: Bearer $(cat ${admin})" ${m}/v1/tablets
  redis-cli ${tls ? `--tls --cacert ${tls.certFile} ` : ""}-p ${
  firstResp.slice(firstResp.lastIndexOf(":") + 1)
} -a $(cat ${
  tokenFile(stack.secrets.dir, "write")
}) --no-auth-warning   # keys in the memory table "redis"
Ctrl-C stops every process.`);
onShutdown(async () => {
  console.log("\nstopping…");
  await stack.stop();
});
await new Promise(() => {});
