import type { StoredDocument } from "./document.ts";
import { loadCranfield } from "./cranfield.ts";
import type { Judgements } from "./relevance_metrics.ts";

/**
 * The classic test collections beside the repository
 * (`../shared/fixtures/{cranfield,med,cacm}/`), read in place (never copied
 * into the repository), each as documents, queries and **binary**
 * judgements (gain 1 = relevant), so every collection is scored the same
 * way.
 */

/** The collections this module reads. */
export const COLLECTION_NAMES = ["cranfield", "med", "cacm"] as const;
/** One of {@link COLLECTION_NAMES}. */
export type CollectionName = typeof COLLECTION_NAMES[number];

/** A parsed test collection. */
export interface TestCollection {
  name: CollectionName;
  /** name = title (empty for MED), body = abstract. */
  docs: StoredDocument[];
  /** Query id (as the judgements number it) and its text. */
  queries: Array<{ qid: string; text: string }>;
  /** qid → doc id → 1 for every relevant pair; queries without judgements are absent. */
  qrels: Map<string, Judgements>;
}

/** Where the fixtures live, resolved from this folder. */
export const FIXTURES_DIR = new URL(
  "../../../shared/fixtures/",
  import.meta.url,
);

function lines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, ""));
}

/**
 * Splits a SMART-format file (`.I id`, then `.X` field markers on lines of
 * their own) into records of field → text (lines joined by spaces).
 */
export function parseSmart(
  text: string,
): Array<{ id: string; fields: Map<string, string> }> {
  const out: Array<{ id: string; fields: Map<string, string[]> }> = [];
  let field: string | null = null;
  for (const line of lines(text)) {
    const m = /^\.I\s+(\d+)/.exec(line);
    if (m) {
      out.push({ id: String(Number(m[1])), fields: new Map() });
      field = null;
      continue;
    }
    const cur = out[out.length - 1];
    if (!cur) continue;
    const f = /^\.([A-Z])\s*$/.exec(line);
    if (f) {
      field = f[1]!;
      if (!cur.fields.has(field)) cur.fields.set(field, []);
      continue;
    }
    if (field !== null) cur.fields.get(field)!.push(line.trim());
  }
  return out.map((r) => ({
    id: r.id,
    fields: new Map(
      [...r.fields].map((
        [k, v],
      ) => [k, v.join(" ").replace(/\s+/g, " ").trim()]),
    ),
  }));
}

/** Parses MED.ALL: no title, the `.W` text is the body. */
export function parseMedDocs(text: string): StoredDocument[] {
  return parseSmart(text).map((r) => ({
    id: r.id,
    user_id: 0,
    name: "",
    body: r.fields.get("W") ?? "",
    created: Number(r.id),
  }));
}

/** Parses cacm.all: `.T` → name, `.W` (often absent) → body. */
export function parseCacmDocs(text: string): StoredDocument[] {
  return parseSmart(text).map((r) => ({
    id: r.id,
    user_id: 0,
    name: r.fields.get("T") ?? "",
    body: r.fields.get("W") ?? "",
    created: Number(r.id),
  }));
}

/** Parses MED.QRY or CACM's query.text: the `.W` text; records without one (CACM's `.I 0`) are skipped. */
export function parseSmartQueries(
  text: string,
): Array<{ qid: string; text: string }> {
  return parseSmart(text)
    .map((r) => ({ qid: r.id, text: r.fields.get("W") ?? "" }))
    .filter((q) => q.qid !== "0" && q.text !== "");
}

/** Parses `qid docid ...` lines where every listed pair is relevant (MED.REL, qrels.text). */
export function parseBinaryQrels(text: string): Map<string, Judgements> {
  const out = new Map<string, Map<string, number>>();
  for (const line of lines(text)) {
    const [q, d] = line.trim().split(/\s+/);
    if (!q || !d || !/^\d+$/.test(q) || !/^\d+$/.test(d)) continue;
    const qid = String(Number(q));
    let m = out.get(qid);
    if (!m) out.set(qid, m = new Map());
    m.set(String(Number(d)), 1);
  }
  return out;
}

async function readAll(dir: URL, files: string[]): Promise<string[]> {
  return await Promise.all(
    files.map((f) => Deno.readTextFile(new URL(f, dir))),
  );
}

/**
 * Loads one collection, or `{ missing }` (a message saying where it was
 * looked for) when its fixture directory is absent.
 */
export async function loadCollection(
  name: CollectionName,
  fixtures: URL = FIXTURES_DIR,
): Promise<TestCollection | { missing: string }> {
  const dir = new URL(`${name}/`, fixtures);
  try {
    if (name === "cranfield") {
      const c = await loadCranfield(dir);
      if ("missing" in c) return c;
      // Binary judgements: any of Cleverdon's relevant grades (1..4) counts as relevant.
      const qrels = new Map<string, Judgements>();
      for (const [q, m] of c.qrels) {
        qrels.set(
          q,
          new Map([...m].filter(([, g]) => g > 0).map(([d]) => [d, 1])),
        );
      }
      return { name, docs: c.docs, queries: c.queries, qrels };
    }
    if (name === "med") {
      const [all, qry, rel] = await readAll(dir, [
        "MED.ALL",
        "MED.QRY",
        "MED.REL",
      ]);
      return {
        name,
        docs: parseMedDocs(all!),
        queries: parseSmartQueries(qry!),
        qrels: parseBinaryQrels(rel!),
      };
    }
    const [all, qry, rel] = await readAll(dir, [
      "cacm.all",
      "query.text",
      "qrels.text",
    ]);
    return {
      name,
      docs: parseCacmDocs(all!),
      queries: parseSmartQueries(qry!),
      qrels: parseBinaryQrels(rel!),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return {
        missing:
          `${name} collection not found at ${dir.pathname} (expected ../shared/fixtures/${name}/ beside the repository); skipping`,
      };
    }
    throw e;
  }
}
