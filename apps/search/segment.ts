import { encode as encodeCbor } from "cbor-x";
import {
  decodeCbor,
  isCodecError,
  openEnvelope,
  sealEnvelope,
} from "@strata/codec";
import type { Analyzer } from "./analyzer.ts";
import { type StoredDocument, TEXT_FIELDS } from "./document.ts";
import {
  PostingCursor,
  type PostingsData,
  PostingsWriter,
  type TermPostings,
} from "./postings.ts";
import { SearchError } from "./search_error.ts";
import { tokenMarks } from "./tokenizer.ts";

/** Envelope kind of a segment file. */
export const SEGMENT_KIND = "SSEG";
/**
 * Format version of segment files written now: 2 adds the bodies' token
 * offsets (snippets); version 1 files are still read (offsets computed).
 */
export const SEGMENT_VERSION = 2;

/** One field's sorted term dictionary. */
export interface FieldTerms {
  /** Terms in ascending code-unit order. */
  terms: string[];
  df: Uint32Array;
  blockStart: Uint32Array;
  blockCount: Uint32Array;
}

/**
 * An immutable inverted index over a batch of documents (local doc numbers
 * 0..docCount-1 in insertion order): per-field term dictionaries, compressed
 * postings with skip data, field lengths, the `user_id` secondary index and
 * the stored documents (for snippets and merges). Built once, searched
 * concurrently, persisted as one checksummed file.
 */
export class Segment {
  /** Documents in the segment (live or not). */
  readonly docCount: number;
  readonly ids: string[];
  readonly users: Float64Array;
  readonly created: Float64Array;
  readonly names: string[];
  readonly bodies: string[];
  /** Field lengths in tokens, one array per {@link TEXT_FIELDS} entry. */
  readonly lens: Uint32Array[];
  /** Sum of each field's lengths. */
  readonly fieldLength: number[];
  readonly fields: FieldTerms[];
  readonly postings: PostingsData;
  /**
   * Stored token offsets of the bodies (see tokenMarks): doc d's are
   * `bodyMarks[bodyMarkStart[d] .. bodyMarkStart[d + 1])`. Snippets start
   * scanning there instead of at the start of the body.
   */
  readonly bodyMarks: Uint32Array;
  /** See {@link bodyMarks}; docCount + 1 entries. */
  readonly bodyMarkStart: Uint32Array;
  /** Term → index per field, built on the first lookup (a segment built only to be merged never needs it). */
  #lookup: Map<string, number>[] | null = null;
  #byUser: Map<number, Int32Array> | null = null;

  /** Use {@link buildSegment} or {@link decodeSegment}. */
  constructor(parts: {
    ids: string[];
    users: Float64Array;
    created: Float64Array;
    names: string[];
    bodies: string[];
    lens: Uint32Array[];
    fields: FieldTerms[];
    postings: PostingsData;
    /** Computed from the bodies when absent (segment files written before they were stored). */
    bodyMarks?: { start: Uint32Array; marks: Uint32Array };
  }) {
    this.docCount = parts.ids.length;
    this.ids = parts.ids;
    this.users = parts.users;
    this.created = parts.created;
    this.names = parts.names;
    this.bodies = parts.bodies;
    this.lens = parts.lens;
    this.fields = parts.fields;
    this.postings = parts.postings;
    const bm = parts.bodyMarks ?? bodyMarksOf(parts.bodies);
    this.bodyMarkStart = bm.start;
    this.bodyMarks = bm.marks;
    this.fieldLength = parts.lens.map((l) => {
      let s = 0;
      for (let i = 0; i < l.length; i++) s += l[i]!;
      return s;
    });
  }

  /** The postings entry of `term` in field number `field`, or null. */
  term(field: number, term: string): TermPostings | null {
    this.#lookup ??= this.fields.map((f) => {
      const m = new Map<string, number>();
      for (let i = 0; i < f.terms.length; i++) m.set(f.terms[i]!, i);
      return m;
    });
    const i = this.#lookup[field]?.get(term);
    if (i === undefined) return null;
    const f = this.fields[field]!;
    return {
      df: f.df[i]!,
      blockStart: f.blockStart[i]!,
      blockCount: f.blockCount[i]!,
    };
  }

  /** A cursor over `term` in field number `field`, or null when absent. */
  cursor(field: number, term: string): PostingCursor | null {
    const t = this.term(field, term);
    return t === null ? null : new PostingCursor(this.postings, t);
  }

  /** Terms of field number `field` that start with `prefix`, with their df. */
  prefixTerms(field: number, prefix: string): Array<[string, number]> {
    const f = this.fields[field]!;
    let lo = 0;
    let hi = f.terms.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (f.terms[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out: Array<[string, number]> = [];
    for (
      let i = lo;
      i < f.terms.length && f.terms[i]!.startsWith(prefix);
      i++
    ) {
      out.push([f.terms[i]!, f.df[i]!]);
    }
    return out;
  }

  /** Local doc numbers of one user's documents, ascending. */
  userDocs(userId: number): Int32Array {
    if (this.#byUser === null) {
      const lists = new Map<number, number[]>();
      for (let d = 0; d < this.docCount; d++) {
        const u = this.users[d]!;
        let l = lists.get(u);
        if (l === undefined) lists.set(u, l = []);
        l.push(d);
      }
      this.#byUser = new Map();
      for (const [u, l] of lists) this.#byUser.set(u, Int32Array.from(l));
    }
    return this.#byUser.get(userId) ?? new Int32Array(0);
  }

  /** The stored token offsets of doc `doc`'s body (see {@link bodyMarks}). */
  marksOf(doc: number): Uint32Array {
    return this.bodyMarks.subarray(
      this.bodyMarkStart[doc]!,
      this.bodyMarkStart[doc + 1]!,
    );
  }

  /** The stored document with local number `doc`. */
  document(doc: number): StoredDocument {
    return {
      id: this.ids[doc]!,
      user_id: this.users[doc]!,
      name: this.names[doc]!,
      body: this.bodies[doc]!,
      created: this.created[doc]!,
    };
  }
}

/** Token offsets of every body, flattened (see {@link Segment.bodyMarks}). */
export function bodyMarksOf(
  bodies: readonly string[],
): { start: Uint32Array; marks: Uint32Array } {
  const start = new Uint32Array(bodies.length + 1);
  const marks: number[] = [];
  for (let d = 0; d < bodies.length; d++) {
    tokenMarks(bodies[d]!, marks);
    start[d + 1] = marks.length;
  }
  return { start, marks: Uint32Array.from(marks) };
}

/** A growable Int32Array (the token stream of one field while building). */
class Ints {
  buf: Int32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.buf = new Int32Array(capacity);
  }
  push(n: number): void {
    if (this.length === this.buf.length) {
      const next = new Int32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = n;
  }
}

/**
 * Indexes a batch of documents into a {@link Segment}. Pure.
 *
 * Two passes per field, over typed arrays: the first analyses every
 * document into a stream of (term number, position) and counts each
 * term's documents and occurrences; the second lays every term's
 * postings out at offsets from those counts and writes them in term
 * order. Reason: one object with three growing arrays per term (the
 * first version) made segment building, and the garbage it left, as
 * costly as the analysis itself under a bulk load.
 * @param docs in insertion order; ids should be unique within the batch.
 */
export function buildSegment(
  docs: readonly StoredDocument[],
  analyzer: Analyzer,
): Segment {
  const n = docs.length;
  const lens = TEXT_FIELDS.map(() => new Uint32Array(n));
  const writer = new PostingsWriter();
  const fields: FieldTerms[] = TEXT_FIELDS.map((_, f) => {
    const ids = new Map<string, number>();
    const names: string[] = [];
    const termOf = new Ints(4096);
    const posOf = new Ints(4096);
    /** Where each doc's tokens start in the stream (docStart[n] = end). */
    const docStart = new Uint32Array(n + 1);
    let df = new Int32Array(1024);
    let occ = new Int32Array(1024);
    let last = new Int32Array(1024);
    for (let d = 0; d < n; d++) {
      const doc = docs[d]!;
      const { terms, positions } = analyzer.analyze(
        f === 0 ? doc.name : doc.body,
      );
      lens[f]![d] = terms.length;
      for (let i = 0; i < terms.length; i++) {
        const t = terms[i]!;
        let id = ids.get(t);
        if (id === undefined) {
          id = names.length;
          ids.set(t, id);
          names.push(t);
          if (id === df.length) {
            const grow = (a: Int32Array) => {
              const b = new Int32Array(a.length * 2);
              b.set(a);
              return b;
            };
            df = grow(df);
            occ = grow(occ);
            last = grow(last);
          }
          last[id] = -1;
        }
        if (last[id] !== d) {
          last[id] = d;
          df[id]!++;
        }
        occ[id]!++;
        termOf.push(id);
        posOf.push(positions[i]!);
      }
      docStart[d + 1] = termOf.length;
    }
    // Offsets of every term's docs/frequencies and positions.
    const T = names.length;
    const dfAt = new Uint32Array(T + 1);
    const occAt = new Uint32Array(T + 1);
    for (let t = 0; t < T; t++) {
      dfAt[t + 1] = dfAt[t]! + df[t]!;
      occAt[t + 1] = occAt[t]! + occ[t]!;
    }
    const allDocs = new Uint32Array(dfAt[T]!);
    const allTfs = new Uint32Array(dfAt[T]!);
    const allPos = new Uint32Array(occAt[T]!);
    const dfNext = dfAt.slice(0, T);
    const occNext = occAt.slice(0, T);
    last.fill(-1, 0, T);
    const stream = termOf.buf;
    const pos = posOf.buf;
    for (let d = 0; d < n; d++) {
      for (let i = docStart[d]!, e = docStart[d + 1]!; i < e; i++) {
        const t = stream[i]!;
        if (last[t] !== d) {
          last[t] = d;
          allDocs[dfNext[t]!] = d;
          allTfs[dfNext[t]!++] = 1;
        } else allTfs[dfNext[t]! - 1]!++;
        allPos[occNext[t]!++] = pos[i]!;
      }
    }
    // The engine's own string sort: a comparator over term numbers showed
    // as a fifth of the replicas' time under the bulk load.
    const terms = names.sort();
    const dfs = new Uint32Array(T);
    const blockStart = new Uint32Array(T);
    const blockCount = new Uint32Array(T);
    for (let i = 0; i < T; i++) {
      const t = ids.get(terms[i]!)!;
      const r = writer.add(
        allDocs.subarray(dfAt[t]!, dfAt[t + 1]!),
        allTfs.subarray(dfAt[t]!, dfAt[t + 1]!),
        allPos.subarray(occAt[t]!, occAt[t + 1]!),
        lens[f]!,
      );
      dfs[i] = r.df;
      blockStart[i] = r.blockStart;
      blockCount[i] = r.blockCount;
    }
    return { terms, df: dfs, blockStart, blockCount };
  });
  return new Segment({
    ids: docs.map((d) => d.id),
    users: Float64Array.from(docs, (d) => d.user_id),
    created: Float64Array.from(docs, (d) => d.created),
    names: docs.map((d) => d.name),
    bodies: docs.map((d) => d.body),
    lens,
    fields,
    postings: writer.finish(),
  });
}

/** Serialises a segment as a checksummed file image (envelope `SSEG` v2, CBOR inside). */
export function encodeSegment(seg: Segment): Uint8Array {
  const payload = encodeCbor([
    seg.ids,
    seg.users,
    seg.created,
    seg.names,
    seg.bodies,
    seg.lens,
    seg.fields.map((f) => [f.terms, f.df, f.blockStart, f.blockCount]),
    [
      seg.postings.bytes,
      seg.postings.lastDoc,
      seg.postings.docOffset,
      seg.postings.posOffset,
      seg.postings.maxTf,
      seg.postings.minLen,
    ],
    [seg.bodyMarkStart, seg.bodyMarks],
  ]);
  return sealEnvelope(SEGMENT_KIND, SEGMENT_VERSION, payload);
}

function u32(v: unknown, what: string): Uint32Array {
  if (v instanceof Uint32Array) return v;
  throw new SearchError(
    "corrupt_segment",
    `segment ${what} is not a u32 array`,
  );
}
function f64(v: unknown, what: string): Float64Array {
  if (v instanceof Float64Array) return v;
  throw new SearchError(
    "corrupt_segment",
    `segment ${what} is not a f64 array`,
  );
}
function strings(v: unknown, what: string): string[] {
  if (Array.isArray(v) && v.every((s) => typeof s === "string")) return v;
  throw new SearchError("corrupt_segment", `segment ${what} is not strings`);
}

/**
 * Reads a segment file image.
 * @throws SearchError `corrupt_segment` when the checksum, kind, version or structure is wrong.
 */
export function decodeSegment(bytes: Uint8Array): Segment {
  let raw: unknown;
  try {
    const { payload } = openEnvelope(bytes, SEGMENT_KIND, [1, SEGMENT_VERSION]);
    raw = decodeCbor(payload);
  } catch (e) {
    if (isCodecError(e)) {
      throw new SearchError(
        "corrupt_segment",
        `bad segment file: ${e.message}`,
        {
          cause: e,
        },
      );
    }
    throw e;
  }
  // 8 parts: a file from before body marks were stored (computed on load).
  if (!Array.isArray(raw) || (raw.length !== 8 && raw.length !== 9)) {
    throw new SearchError("corrupt_segment", "segment payload has a bad shape");
  }
  const [ids, users, created, names, bodies, lens, fields, post, marks] = raw;
  let bodyMarks: { start: Uint32Array; marks: Uint32Array } | undefined;
  if (marks !== undefined) {
    if (!Array.isArray(marks) || marks.length !== 2) {
      throw new SearchError("corrupt_segment", "body marks have a bad shape");
    }
    bodyMarks = {
      start: u32(marks[0], "bodyMarkStart"),
      marks: u32(marks[1], "bodyMarks"),
    };
  }
  const n = strings(ids, "ids").length;
  const lensArr = Array.isArray(lens)
    ? lens.map((l, i) => u32(l, `lens ${i}`))
    : [];
  if (
    lensArr.length !== TEXT_FIELDS.length || !Array.isArray(fields) ||
    fields.length !== TEXT_FIELDS.length || !Array.isArray(post) ||
    post.length !== 6
  ) throw new SearchError("corrupt_segment", "segment payload has a bad shape");
  const seg = new Segment({
    ids: ids as string[],
    users: f64(users, "users"),
    created: f64(created, "created"),
    names: strings(names, "names"),
    bodies: strings(bodies, "bodies"),
    lens: lensArr,
    fields: fields.map((f: unknown, i: number) => {
      if (!Array.isArray(f) || f.length !== 4) {
        throw new SearchError("corrupt_segment", `field ${i} has a bad shape`);
      }
      return {
        terms: strings(f[0], "terms"),
        df: u32(f[1], "df"),
        blockStart: u32(f[2], "blockStart"),
        blockCount: u32(f[3], "blockCount"),
      };
    }),
    postings: {
      bytes: post[0] instanceof Uint8Array ? post[0] : (() => {
        throw new SearchError("corrupt_segment", "postings are not bytes");
      })(),
      lastDoc: u32(post[1], "lastDoc"),
      docOffset: u32(post[2], "docOffset"),
      posOffset: u32(post[3], "posOffset"),
      maxTf: u32(post[4], "maxTf"),
      minLen: u32(post[5], "minLen"),
    },
    bodyMarks,
  });
  if (
    seg.users.length !== n || seg.created.length !== n ||
    seg.names.length !== n || seg.bodies.length !== n ||
    seg.lens.some((l) => l.length !== n) ||
    seg.bodyMarkStart.length !== n + 1 ||
    seg.bodyMarkStart[n] !== seg.bodyMarks.length
  ) throw new SearchError("corrupt_segment", "segment arrays disagree on size");
  return seg;
}
