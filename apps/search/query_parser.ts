import { z } from "zod";
import type { Analyzer } from "./analyzer.ts";
import { TEXT_FIELDS, type TextField } from "./document.ts";
import { QUERY_STOP_WORDS } from "./query_stop_words.ts";
import { SearchError } from "./search_error.ts";

/**
 * Longest accepted query, in UTF-16 units: 16 KiB, room for a pasted
 * paragraph or two (about 2,500 words of English).
 */
export const MAX_QUERY_CHARS = 16_384;
/**
 * Most operator clauses in one query: required or excluded clauses,
 * phrases, prefixes and field-qualified words (each costs its own pass).
 */
export const MAX_QUERY_CLAUSES = 64;
/**
 * Most distinct optional words in one query (after stop words and
 * duplicates are removed). They are cheap to carry: the coordinator keeps
 * only the most informative ones for scoring (see query_pruning.ts).
 */
export const MAX_QUERY_TERMS = 1024;

const FieldsSchema = z.array(z.enum(TEXT_FIELDS)).min(1).max(
  TEXT_FIELDS.length,
);

/**
 * Weight of the proximity clauses: each pair of adjacent plain words of a
 * query is also an optional exact phrase (gaps left by stop words kept),
 * scored as a phrase and multiplied by this. It is the ratio of the
 * ordered-window weight to the term weight of the sequential dependence
 * model (Metzler & Croft 2005: 0.10 / 0.85, the defaults Anserini's SDM
 * ships), not a value fitted here: documents where the query's words
 * appear next to each other, as written, rank above documents that only
 * contain them somewhere.
 */
export const PROXIMITY_WEIGHT = 0.1 / 0.85;

/** One matchable unit of a query, already analyzed. */
export const ClauseSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("term"),
    fields: FieldsSchema,
    term: z.string().min(1).max(256),
    /**
     * How many times the word occurs in the query (query term frequency);
     * its scores are multiplied by it. Absent means 1.
     */
    weight: z.number().int().min(1).max(100_000).optional(),
  }),
  z.object({
    kind: z.literal("phrase"),
    fields: FieldsSchema,
    terms: z.array(z.string().min(1).max(256)).min(2).max(MAX_QUERY_CLAUSES),
    /** Position of each term relative to the first (stop words leave gaps). */
    offsets: z.array(z.number().int().min(0).max(10_000)).min(2).max(
      MAX_QUERY_CLAUSES,
    ),
    /**
     * Multiplies the phrase's scores. Present only on the proximity
     * clauses the parser adds between adjacent plain words
     * ({@link PROXIMITY_WEIGHT}); absent means 1.
     */
    weight: z.number().positive().max(100_000).optional(),
  }),
  z.object({
    kind: z.literal("prefix"),
    fields: FieldsSchema,
    prefix: z.string().min(1).max(256),
  }),
]);
/** See {@link ClauseSchema}. */
export type Clause = z.infer<typeof ClauseSchema>;

/**
 * A parsed query with Lucene's classic boolean semantics: a document
 * matches when it matches every `must` clause, no `mustNot` clause, and (if
 * there are no `must` clauses) at least one `should` clause; its score is
 * the sum over the matching `must` and `should` clauses.
 */
export const ParsedQuerySchema = z.object({
  must: z.array(ClauseSchema).max(MAX_QUERY_CLAUSES),
  should: z.array(ClauseSchema).max(MAX_QUERY_TERMS + MAX_QUERY_CLAUSES),
  mustNot: z.array(ClauseSchema).max(MAX_QUERY_CLAUSES),
  /** Only documents of this user (`user:42`), or null. */
  user: z.number().int().min(0).nullable(),
});
/** See {@link ParsedQuerySchema}. */
export type ParsedQuery = z.infer<typeof ParsedQuerySchema>;

/** Parser options. */
export interface ParseOptions {
  /** How unmarked clauses combine: "or" (default) or "and". */
  defaultOperator?: "or" | "and";
  /** Add the proximity clauses between adjacent plain words (default true; see {@link PROXIMITY_WEIGHT}). */
  proximity?: boolean;
}

type Occur = "must" | "should" | "mustNot";
interface Item {
  kind: "item";
  sign: "" | "+" | "-";
  field: TextField | "user" | null;
  text: string;
  quoted: boolean;
  column: number;
}
type Token = Item | { kind: "op"; op: "AND" | "OR" | "NOT" };

const FIELD_PREFIX = /^(name|body|user):/;

function lex(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const column = i + 1;
    let sign: "" | "+" | "-" = "";
    if ((c === "+" || c === "-") && i + 1 < q.length && !/\s/.test(q[i + 1]!)) {
      sign = c;
      i++;
    }
    let field: Item["field"] = null;
    const fm = FIELD_PREFIX.exec(q.slice(i, i + 6));
    if (fm) {
      field = fm[1] as Item["field"];
      i += fm[0].length;
    }
    if (q[i] === '"') {
      const close = q.indexOf('"', i + 1);
      if (close < 0) {
        throw new SearchError(
          "bad_query",
          `unbalanced quote: the quote at column ${i + 1} is never closed`,
        );
      }
      out.push({
        kind: "item",
        sign,
        field,
        text: q.slice(i + 1, close),
        quoted: true,
        column,
      });
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < q.length && !/\s/.test(q[j]!) && q[j] !== '"') j++;
    const text = q.slice(i, j);
    i = j;
    if (sign === "" && field === null && (text === "AND" || text === "&&")) {
      out.push({ kind: "op", op: "AND" });
    } else if (
      sign === "" && field === null && (text === "OR" || text === "||")
    ) {
      out.push({ kind: "op", op: "OR" });
    } else if (sign === "" && field === null && text === "NOT") {
      out.push({ kind: "op", op: "NOT" });
    } else if (text.length > 0 || field !== null) {
      out.push({ kind: "item", sign, field, text, quoted: false, column });
    }
  }
  return out;
}

/**
 * Parses a user query: words (OR by default), `AND` / `OR` / `NOT`,
 * `+required`, `-excluded`, `"phrases"`, `prefix*`, and field filters
 * `name:`, `body:` (restrict a word or phrase to one field) and `user:42`
 * (only that user's documents). Words the analyzer splits into several
 * terms ("heat-transfer") become phrases, as in Lucene.
 *
 * @throws SearchError `bad_query` for an empty or too long query, an
 *   unbalanced quote, a bad `user:` value, too many clauses, or a query
 *   with nothing to search for (only stop words or only exclusions).
 */
export function parseQuery(
  q: string,
  analyzer: Analyzer,
  options: ParseOptions = {},
): ParsedQuery {
  if (q.trim().length === 0) {
    throw new SearchError("bad_query", "the query is empty; pass q=<words>");
  }
  if (q.length > MAX_QUERY_CHARS) {
    throw new SearchError(
      "bad_query",
      `the query is ${q.length} characters long; at most ${MAX_QUERY_CHARS} are allowed`,
    );
  }
  const tokens = lex(q);
  const items: Array<{ item: Item; occur: Occur }> = [];
  const defaultOccur: Occur = options.defaultOperator === "and"
    ? "must"
    : "should";
  let pendingNot = false;
  let pendingAnd = false;
  for (const t of tokens) {
    if (t.kind === "op") {
      if (t.op === "NOT") pendingNot = true;
      else if (t.op === "AND") {
        pendingAnd = true;
        // AND makes its left neighbour required too (Lucene's classic parser).
        const prev = items[items.length - 1];
        if (prev && prev.item.sign === "" && prev.occur === "should") {
          prev.occur = "must";
        }
      } else pendingAnd = false;
      continue;
    }
    let occur: Occur = t.sign === "+"
      ? "must"
      : t.sign === "-"
      ? "mustNot"
      : defaultOccur;
    if (pendingNot) occur = "mustNot";
    else if (pendingAnd && t.sign === "") occur = "must";
    pendingNot = false;
    pendingAnd = false;
    items.push({ item: t, occur });
  }

  const query: ParsedQuery = { must: [], should: [], mustNot: [], user: null };
  // Plain words (no sign, quotes, field or `*`) in the default occurrence
  // drop query stop words, unless that would leave nothing to search for.
  const plain = (item: Item, occur: Occur) =>
    item.sign === "" && !item.quoted && item.field === null &&
    occur === defaultOccur && !item.text.endsWith("*");
  const anyContent = items.some(({ item, occur }) =>
    plain(item, occur) &&
    analyzer.analyze(item.text, QUERY_STOP_WORDS).terms.length > 0
  ) || items.some(({ item, occur }) =>
    !plain(item, occur) && occur !== "mustNot" && item.field !== "user"
  );
  // Proximity clauses: adjacent plain words (see PROXIMITY_WEIGHT).
  const proximity = new Map<string, Clause>();
  let prev: { term: string; at: number } | null = null;
  for (let at = 0; options.proximity !== false && at < items.length; at++) {
    const { item, occur } = items[at]!;
    if (!plain(item, occur)) {
      prev = null;
      continue;
    }
    const { terms } = analyzer.analyze(
      item.text,
      anyContent ? QUERY_STOP_WORDS : undefined,
    );
    if (terms.length === 0) continue; // a stop word: a gap
    if (terms.length > 1) {
      prev = null; // split into a phrase ("heat-transfer")
      continue;
    }
    const term = terms[0]!;
    if (prev !== null) {
      const offsets = [0, at - prev.at];
      const key = `${prev.term}\u0000${term}\u0000${offsets[1]}`;
      const seen = proximity.get(key);
      if (seen !== undefined && seen.kind === "phrase") {
        seen.weight = (seen.weight ?? 1) + PROXIMITY_WEIGHT;
      } else if (proximity.size < MAX_QUERY_TERMS) {
        // Bounded like the words (pruning then keeps at most
        // MAX_SCORED_TERMS of them, between the words it keeps).
        proximity.set(key, {
          kind: "phrase",
          fields: [...TEXT_FIELDS],
          terms: [prev.term, term],
          offsets,
          weight: PROXIMITY_WEIGHT,
        });
      }
    }
    prev = { term, at };
  }
  for (const { item, occur } of items) {
    if (item.field === "user") {
      if (!/^\d{1,15}$/.test(item.text)) {
        throw new SearchError(
          "bad_query",
          `user: needs a non-negative integer user id, got "${item.text}" at column ${item.column}`,
        );
      }
      const id = Number(item.text);
      if (query.user !== null && query.user !== id) {
        throw new SearchError(
          "bad_query",
          "a query can filter on one user only",
        );
      }
      query.user = id;
      continue;
    }
    const fields: TextField[] = item.field === null
      ? [...TEXT_FIELDS]
      : [item.field];
    const clause = toClause(
      item,
      fields,
      analyzer,
      anyContent && plain(item, occur) ? QUERY_STOP_WORDS : undefined,
    );
    if (clause !== null) query[occur].push(clause);
  }
  query.should = dedupeTerms(query.should);
  const words = query.should.filter(isPlainTerm).length;
  // Added after the limits' count: they are bounded by the words.
  const extra = [...proximity.values()];
  const clauses = query.must.length + query.should.length - words +
    query.mustNot.length;
  if (clauses > MAX_QUERY_CLAUSES) {
    throw new SearchError(
      "bad_query",
      `the query has ${clauses} clauses; at most ${MAX_QUERY_CLAUSES} are allowed`,
    );
  }
  if (words > MAX_QUERY_TERMS) {
    throw new SearchError(
      "bad_query",
      `the query has ${words} distinct words; at most ${MAX_QUERY_TERMS} are allowed`,
    );
  }
  if (query.must.length + query.should.length === 0) {
    throw new SearchError(
      "bad_query",
      "the query has nothing to search for (only stop words, filters or exclusions); to list a user's documents use /v1/users/:id/docs",
    );
  }
  query.should.push(...extra);
  return query;
}

/** An optional word over every field (what a natural-language query is made of). */
function isPlainTerm(c: Clause): boolean {
  return c.kind === "term" && c.fields.length === TEXT_FIELDS.length;
}

/**
 * Merges repeated optional words into one clause whose weight counts them
 * (BM25's query term frequency, linear as with a large k3): the same
 * scores as one clause per occurrence, with one posting-list pass instead
 * of several. First occurrence keeps its place (the canonical order).
 */
export function dedupeTerms(clauses: Clause[]): Clause[] {
  const out: Clause[] = [];
  const seen = new Map<string, number>();
  for (const c of clauses) {
    if (c.kind !== "term") {
      out.push(c);
      continue;
    }
    const key = c.fields.join(",") + "\u0000" + c.term;
    const at = seen.get(key);
    if (at === undefined) {
      seen.set(key, out.length);
      out.push({ ...c });
    } else {
      const prev = out[at] as Extract<Clause, { kind: "term" }>;
      prev.weight = (prev.weight ?? 1) + (c.weight ?? 1);
    }
  }
  return out;
}

function toClause(
  item: Item,
  fields: TextField[],
  analyzer: Analyzer,
  extraStop?: ReadonlySet<string>,
): Clause | null {
  if (!item.quoted && item.text.endsWith("*")) {
    const raw = item.text.slice(0, -1).toLowerCase().normalize("NFD").replace(
      /\p{M}+/gu,
      "",
    );
    if (!/^[\p{L}\p{N}]+$/u.test(raw)) {
      throw new SearchError(
        "bad_query",
        `a prefix query needs letters or digits before the *, got "${item.text}" at column ${item.column}`,
      );
    }
    return { kind: "prefix", fields, prefix: raw };
  }
  const { terms, positions } = analyzer.analyze(item.text, extraStop);
  if (terms.length === 0) return null;
  if (terms.length === 1) return { kind: "term", fields, term: terms[0]! };
  if (terms.length > MAX_QUERY_CLAUSES) {
    throw new SearchError(
      "bad_query",
      `a phrase may have at most ${MAX_QUERY_CLAUSES} words`,
    );
  }
  const first = positions[0]!;
  return {
    kind: "phrase",
    fields,
    terms,
    offsets: positions.map((p) => p - first),
  };
}

/**
 * A "match" query (Elasticsearch's `match`): the analyzed terms of free
 * text as optional clauses over every field, with no operators or syntax,
 * so any text is accepted. Used for natural-language questions (Cranfield).
 * @throws SearchError `bad_query` when the text has no searchable terms.
 */
export function matchQuery(text: string, analyzer: Analyzer): ParsedQuery {
  const { terms } = analyzer.analyze(text);
  if (terms.length === 0) {
    throw new SearchError("bad_query", "the text has no searchable terms");
  }
  return {
    must: [],
    should: terms.map((term) => ({
      kind: "term" as const,
      fields: [...TEXT_FIELDS],
      term,
    })),
    mustNot: [],
    user: null,
  };
}
