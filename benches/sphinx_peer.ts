/**
 * @module
 * Sphinx 2.2 (Debian `sphinxsearch`) as a peer of apps/search for
 * benches/search.bench.ts: writes the documents as TSV (tsvpipe), builds
 * three plain indexes with `indexer`, and serves them from `searchd` either
 * as one distributed index in one process or as three searchd processes
 * behind a coordinator searchd (`agent =`). Queries go over SphinxQL (the
 * MySQL protocol) with mysql2. Ranking: BM25F (k1 1.2, b 0.75) with
 * strata's field weights, Porter stemming, the same stop words.
 */
import { join } from "node:path";
import { createConnection } from "mysql2/promise";
import { freePort } from "@strata/process";
import type { Connection } from "mysql2/promise";
import {
  DEFAULT_BM25,
  DEFAULT_FIELD_BOOSTS,
  ENGLISH_STOP_WORDS,
  type StoredDocument,
} from "@strata/search";

/** Whether `indexer` and `searchd` are installed; the reason when not. */
export async function sphinxMissing(): Promise<string | null> {
  for (const bin of ["indexer", "searchd"]) {
    try {
      await new Deno.Command(bin, {
        args: ["--help"],
        stdout: "null",
        stderr: "null",
      })
        .output();
    } catch {
      return `${bin} not found: apt-get install -y sphinxsearch`;
    }
  }
  return null;
}

function tsvClean(s: string): string {
  return s.replace(/[\t\r\n\\]+/g, " ");
}

/** The ranker strata's defaults correspond to: BM25F with its k1, b and field weights. */
export const SPHINX_RANKER =
  `expr('10000*bm25f(${DEFAULT_BM25.k1},${DEFAULT_BM25.b},{name=${DEFAULT_FIELD_BOOSTS.name},body=${DEFAULT_FIELD_BOOSTS.body}})')`;

function indexBlock(
  name: string,
  dir: string,
  tsv: string,
  stop: string,
): string {
  return `
source src_${name}
{
  type = tsvpipe
  tsvpipe_command = cat ${tsv}
  tsvpipe_field = name
  tsvpipe_field_string = body
  tsvpipe_attr_uint = user_id
  tsvpipe_attr_bigint = created
}
index ${name}
{
  source = src_${name}
  path = ${join(dir, name)}
  dict = keywords
  min_prefix_len = 1
  morphology = stem_en
  stopwords = ${stop}
  index_field_lengths = 1
  html_strip = 0
}
`;
}

/** Sphinx's data: three plain indexes built by `indexer`, and what building them took. */
export interface SphinxIndexes {
  dir: string;
  config: string;
  /** Local index names, one per shard. */
  names: string[];
  /** Wall time of `indexer --all` (reading TSV, tokenizing, stemming, writing; no fsync). */
  indexMs: number;
}

/**
 * Writes one TSV per shard (`shardOf(id)` decides, as in strata) and runs
 * `indexer --all`. Sphinx ids are 1-based positions in `docs`.
 */
export async function buildSphinxIndexes(
  dir: string,
  docs: readonly StoredDocument[],
  shardOfDoc: (d: StoredDocument) => number,
  shards: number,
): Promise<SphinxIndexes> {
  const stop = join(dir, "stopwords.txt");
  await Deno.writeTextFile(stop, ENGLISH_STOP_WORDS.join("\n") + "\n");
  const lines: string[][] = Array.from({ length: shards }, () => []);
  docs.forEach((d, i) => {
    lines[shardOfDoc(d)]!.push(
      `${i + 1}\t${tsvClean(d.name)}\t${tsvClean(d.body)}\t${
        d.user_id >>> 0
      }\t${Math.round(d.created)}`,
    );
  });
  const names = lines.map((_, s) => `shard${s}`);
  let conf = "indexer\n{\n  mem_limit = 256M\n}\n";
  for (let s = 0; s < shards; s++) {
    const tsv = join(dir, `shard${s}.tsv`);
    await Deno.writeTextFile(tsv, lines[s]!.join("\n") + "\n");
    conf += indexBlock(names[s]!, dir, tsv, stop);
  }
  const config = join(dir, "indexer.conf");
  await Deno.writeTextFile(config, conf);
  const t0 = performance.now();
  const out = await new Deno.Command("indexer", {
    args: ["--config", config, "--all", "--quiet"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const indexMs = performance.now() - t0;
  if (!out.success) {
    throw new Error(
      `indexer failed: ${new TextDecoder().decode(out.stdout)}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return { dir, config, names, indexMs };
}

/** A running searchd. */
export interface Searchd {
  /** SphinxQL (MySQL protocol) port. */
  port: number;
  /** Sphinx API port (what a coordinator searchd's agents call). */
  apiPort: number;
  /** Process ids of every searchd involved (for CPU accounting). */
  pids: number[];
  stop(): Promise<void>;
}

function searchdBlock(
  dir: string,
  tag: string,
  port: number,
  apiPort: number,
): string {
  return `
searchd
{
  listen = 127.0.0.1:${port}:mysql41
  listen = 127.0.0.1:${apiPort}
  persistent_connections_limit = 32
  log = ${join(dir, `searchd-${tag}.log`)}
  query_log = ${join(dir, `query-${tag}.log`)}
  query_log_format = sphinxql
  pid_file = ${join(dir, `searchd-${tag}.pid`)}
  binlog_path =
  workers = threads
  dist_threads = 2
  read_timeout = 5
  max_children = 64
}
`;
}

async function waitConnectable(
  port: number,
  timeoutMs = 20_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      const c = await createConnection({ host: "127.0.0.1", port });
      await c.end();
      return;
    } catch (e) {
      if (performance.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function startSearchd(
  ix: SphinxIndexes,
  tag: string,
  indexes: string,
): Promise<Searchd> {
  const port = freePort();
  const apiPort = freePort();
  const conf = join(ix.dir, `searchd-${tag}.conf`);
  // A template index: the tokenizer settings CALL SNIPPETS uses.
  const template = `
index snippets
{
  type = template
  dict = keywords
  morphology = stem_en
  stopwords = ${join(ix.dir, "stopwords.txt")}
  html_strip = 0
}
`;
  const localIndexes = template + ix.names.map((n) =>
    indexBlock(
      n,
      ix.dir,
      join(ix.dir, `${n}.tsv`),
      join(ix.dir, "stopwords.txt"),
    )
  ).join("");
  await Deno.writeTextFile(
    conf,
    localIndexes + indexes + searchdBlock(ix.dir, tag, port, apiPort),
  );
  const child = new Deno.Command("searchd", {
    args: ["--config", conf, "--console"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitConnectable(port);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    throw e;
  }
  return {
    port,
    apiPort,
    pids: [child.pid],
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(t);
    },
  };
}

/** One searchd serving `dist`: the local indexes behind one distributed index. */
export function startSphinxSingle(ix: SphinxIndexes): Promise<Searchd> {
  return startSearchd(
    ix,
    "single",
    `index dist\n{\n  type = distributed\n${
      ix.names.map((n) => `  local = ${n}\n`).join("")
    }}\n`,
  );
}

/** Three searchd processes (one local index each) and a coordinator searchd whose `dist` has them as agents. */
export async function startSphinxMulti(ix: SphinxIndexes): Promise<Searchd> {
  const shards: Searchd[] = [];
  try {
    for (const n of ix.names) {
      shards.push(await startSearchd(ix, `multi-${n}`, ""));
    }
    const coord = await startSearchd(
      ix,
      "multi-coord",
      `index dist\n{\n  type = distributed\n${
        ix.names.map((n, i) =>
          `  agent_persistent = 127.0.0.1:${shards[i]!.apiPort}:${n}\n`
        ).join("")
      }  agent_connect_timeout = 1000\n  agent_query_timeout = 5000\n}\n`,
    );
    return {
      port: coord.port,
      apiPort: coord.apiPort,
      pids: [coord, ...shards].flatMap((s) => s.pids),
      async stop() {
        await coord.stop();
        for (const s of shards) await s.stop();
      },
    };
  } catch (e) {
    for (const s of shards) await s.stop();
    throw e;
  }
}

/** A SphinxQL connection (one per load-generator client, as a pooled app would hold). */
export function sphinxConnect(port: number): Promise<Connection> {
  return createConnection({ host: "127.0.0.1", port });
}

function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** The SphinxQL of a top-`size` query, with a SNIPPET() of the body when asked. */
export function sphinxQuery(
  match: string,
  size: number,
  snippets: boolean,
): string {
  const m = sqlString(match);
  const select = snippets
    ? `id, user_id, WEIGHT() AS w, SNIPPET(body, ${m}, 'limit=200', 'around=8') AS s`
    : "id, user_id, WEIGHT() AS w";
  return `SELECT ${select} FROM dist WHERE MATCH(${m}) LIMIT ${size} OPTION ranker=${SPHINX_RANKER}`;
}

/** The SphinxQL of a top-`size` query that also returns the stored bodies (for {@link sphinxSnippetsCall}). */
export function sphinxQueryWithBodies(match: string, size: number): string {
  return `SELECT id, user_id, WEIGHT() AS w, body FROM dist WHERE MATCH(${
    sqlString(match)
  }) LIMIT ${size} OPTION ranker=${SPHINX_RANKER}`;
}

/**
 * Sphinx's classic excerpts: the client sends the hits' bodies back in a
 * `CALL SNIPPETS` request (tokenized with the `snippets` template index:
 * the same stemming and stop words as the indexes).
 */
export function sphinxSnippetsCall(
  bodies: readonly string[],
  match: string,
): string {
  return `CALL SNIPPETS((${bodies.map(sqlString).join(",")}), 'snippets', ${
    sqlString(match)
  }, 200 AS limit, 8 AS around)`;
}
