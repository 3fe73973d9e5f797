import type { StoredDocument } from "./document.ts";
import type { ShardIndexOptions } from "./shard_index.ts";
import type { Judgements } from "./relevance_metrics.ts";

/**
 * The Cranfield collection, read in place from the repository's sibling
 * `../shared/fixtures/cranfield/` (never copied into the repository).
 */
export const CRANFIELD_DIR = new URL(
  "../../../shared/fixtures/cranfield/",
  import.meta.url,
);

/**
 * Index settings for the Cranfield runs: defaults except equal field
 * boosts, because every abstract repeats its title (a title boost would
 * count title words twice over). Peers get the same boosts.
 */
export const CRANFIELD_INDEX_OPTIONS: ShardIndexOptions = {
  boosts: { name: 1, body: 1 },
};

/** Parsed Cranfield collection. */
export interface Cranfield {
  /** 1,400 documents: name = title, body = abstract. */
  docs: StoredDocument[];
  /** 225 queries; `qid` is the position 1..225 (cranqrel numbering), not the `.I` id. */
  queries: Array<{ qid: string; text: string }>;
  /** qid → doc id → gain (5 − rel for rel 1..4; rel −1 is not relevant and left out). */
  qrels: Map<string, Judgements>;
}

function lines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, ""));
}

/** Parses cran.all.1400. A bare marker inside an abstract (doc 240) stays in the abstract; a second .W (docs 576, 578) is appended. */
export function parseCranDocs(text: string): StoredDocument[] {
  const docs: StoredDocument[] = [];
  let cur: { id: string; T: string[]; W: string[] } | null = null;
  let field: "T" | "A" | "B" | "W" = "T";
  const done = () => {
    if (cur) {
      docs.push({
        id: cur.id,
        user_id: 0,
        name: cur.T.join(" ").trim(),
        body: cur.W.join(" ").trim(),
        created: Number(cur.id),
      });
    }
  };
  for (const line of lines(text)) {
    const m = /^\.I\s+(\d+)/.exec(line);
    if (m) {
      done();
      cur = { id: String(Number(m[1])), T: [], W: [] };
      field = "T";
      continue;
    }
    if (!cur) continue;
    if (/^\.[TABW]$/.test(line)) {
      const f = line[1] as "T" | "A" | "B" | "W";
      // Once in the abstract, only .W (a spliced second abstract) switches.
      if (field !== "W" || f === "W") field = f;
      continue;
    }
    if (field === "T") cur.T.push(line);
    else if (field === "W") cur.W.push(line);
  }
  done();
  return docs;
}

/** Parses cran.qry, numbering queries by position (the cranqrel convention). */
export function parseCranQueries(
  text: string,
): Array<{ qid: string; text: string }> {
  const out: Array<{ qid: string; text: string[] }> = [];
  for (const line of lines(text)) {
    if (/^\.I\s+\d+/.test(line)) {
      out.push({ qid: String(out.length + 1), text: [] });
    } else if (line === ".W") continue;
    else out[out.length - 1]?.text.push(line);
  }
  return out.map((q) => ({ qid: q.qid, text: q.text.join(" ").trim() }));
}

/** Parses cranqrel: `qid docid rel`, gain = 5 − rel for rel 1..4. */
export function parseCranQrels(text: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const line of lines(text)) {
    const [q, d, r] = line.trim().split(/\s+/);
    if (!q || !d || r === undefined) continue;
    const rel = Number(r);
    if (!(rel >= 1 && rel <= 4)) continue;
    let m = out.get(q);
    if (!m) out.set(q, m = new Map());
    m.set(String(Number(d)), 5 - rel);
  }
  return out;
}

/**
 * Loads the collection, or returns null (with the reason) when the fixture
 * directory is absent.
 */
export async function loadCranfield(
  dir: URL = CRANFIELD_DIR,
): Promise<Cranfield | { missing: string }> {
  try {
    const [all, qry, qrel] = await Promise.all(
      ["cran.all.1400", "cran.qry", "cranqrel"].map((f) =>
        Deno.readTextFile(new URL(f, dir))
      ),
    );
    return {
      docs: parseCranDocs(all!),
      queries: parseCranQueries(qry!),
      qrels: parseCranQrels(qrel!),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return {
        missing:
          `Cranfield collection not found at ${dir.pathname} (expected ../shared/fixtures/cranfield/ beside the repository); skipping`,
      };
    }
    throw e;
  }
}
