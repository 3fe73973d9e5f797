import { TEXT_FIELDS } from "./document.ts";
import { BLOCK_SIZE, type PostingsData, PostingsWriter } from "./postings.ts";
import { type FieldTerms, Segment } from "./segment.ts";

/** A segment to merge and its tombstones (1 = deleted), or null for none. */
export interface MergeInput {
  segment: Segment;
  deleted: Uint8Array | null;
}

/**
 * Merges segments into one holding only their live documents, in input
 * order, by rewriting postings with renumbered doc ids: no document is
 * re-analyzed, so merging costs a fraction of indexing. Pure.
 */
export function mergeSegments(inputs: readonly MergeInput[]): Segment {
  const maps = inputs.map(({ segment }) => new Int32Array(segment.docCount));
  const ids: string[] = [];
  const users: number[] = [];
  const created: number[] = [];
  const names: string[] = [];
  const bodies: string[] = [];
  const lensList: number[][] = TEXT_FIELDS.map(() => []);
  // Stored token offsets travel with their documents (no re-scan).
  const markStart: number[] = [0];
  const marks: number[] = [];
  inputs.forEach(({ segment, deleted }, i) => {
    const map = maps[i]!;
    for (let d = 0; d < segment.docCount; d++) {
      if (deleted !== null && deleted[d] === 1) {
        map[d] = -1;
        continue;
      }
      map[d] = ids.length;
      ids.push(segment.ids[d]!);
      users.push(segment.users[d]!);
      created.push(segment.created[d]!);
      names.push(segment.names[d]!);
      bodies.push(segment.bodies[d]!);
      for (const m of segment.marksOf(d)) marks.push(m);
      markStart.push(marks.length);
      TEXT_FIELDS.forEach((_, f) => lensList[f]!.push(segment.lens[f]![d]!));
    }
  });
  const lens = lensList.map((l) => Uint32Array.from(l));
  const writer = new PostingsWriter();
  const docs = new Grow();
  const tfs = new Grow();
  const positions = new Grow();
  const fields: FieldTerms[] = TEXT_FIELDS.map((_, f) => {
    const all = new Set<string>();
    for (const { segment } of inputs) {
      for (const t of segment.fields[f]!.terms) {
        all.add(t);
      }
    }
    // Every segment's terms are sorted the same way as this union, so one
    // pointer per segment finds each term without a lookup per term.
    const sorted = [...all].sort();
    const next = new Int32Array(inputs.length);
    const terms: string[] = [];
    const df: number[] = [];
    const blockStart: number[] = [];
    const blockCount: number[] = [];
    for (const term of sorted) {
      docs.length = tfs.length = positions.length = 0;
      for (let i = 0; i < inputs.length; i++) {
        const seg = inputs[i]!.segment;
        const ft = seg.fields[f]!;
        const at = next[i]!;
        if (at >= ft.terms.length || ft.terms[at] !== term) continue;
        next[i] = at + 1;
        appendLive(
          seg.postings,
          ft.blockStart[at]!,
          ft.blockCount[at]!,
          maps[i]!,
          docs,
          tfs,
          positions,
        );
      }
      if (docs.length === 0) continue; // only deleted docs had it
      const t = writer.add(
        docs.buf.subarray(0, docs.length),
        tfs.buf.subarray(0, tfs.length),
        positions.buf.subarray(0, positions.length),
        lens[f]!,
      );
      terms.push(term);
      df.push(t.df);
      blockStart.push(t.blockStart);
      blockCount.push(t.blockCount);
    }
    return {
      terms,
      df: Uint32Array.from(df),
      blockStart: Uint32Array.from(blockStart),
      blockCount: Uint32Array.from(blockCount),
    };
  });
  return new Segment({
    ids,
    users: Float64Array.from(users),
    created: Float64Array.from(created),
    names,
    bodies,
    lens,
    fields,
    postings: writer.finish(),
    bodyMarks: {
      start: Uint32Array.from(markStart),
      marks: Uint32Array.from(marks),
    },
  });
}

/** A growable Int32Array reused for every term of a merge. */
class Grow {
  buf = new Int32Array(1024);
  length = 0;
  push(n: number): void {
    if (this.length === this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.length++] = n;
  }
}

const blockDocs = new Int32Array(BLOCK_SIZE);
const blockTfs = new Int32Array(BLOCK_SIZE);

/**
 * Appends the postings of one term of a source segment (its blocks
 * `[first, first + count)`) with doc numbers mapped by `map` (−1 =
 * deleted: skipped with its positions). Decodes the blocks in place, the
 * format {@link PostingsWriter} writes: a cursor per (term, segment)
 * allocated its block buffers for every term, and merges showed as a
 * large share of a replica's indexing time.
 */
function appendLive(
  data: PostingsData,
  first: number,
  count: number,
  map: Int32Array,
  docs: Grow,
  tfs: Grow,
  positions: Grow,
): void {
  const bytes = data.bytes;
  for (let b = first; b < first + count; b++) {
    let off = data.docOffset[b]!;
    const end = data.posOffset[b]!;
    let doc = b === first ? -1 : data.lastDoc[b - 1]!;
    let n = 0;
    while (off < end) {
      let x = bytes[off++]!;
      let v = x & 0x7f;
      for (let s = 7; x & 0x80; s += 7) {
        x = bytes[off++]!;
        v |= (x & 0x7f) << s;
      }
      doc += v + 1;
      x = bytes[off++]!;
      let tf = x & 0x7f;
      for (let s = 7; x & 0x80; s += 7) {
        x = bytes[off++]!;
        tf |= (x & 0x7f) << s;
      }
      blockDocs[n] = doc;
      blockTfs[n++] = tf;
    }
    // Positions follow, tf of them per doc, delta-coded within a doc.
    for (let i = 0; i < n; i++) {
      const nd = map[blockDocs[i]!]!;
      const tf = blockTfs[i]!;
      if (nd < 0) {
        for (let k = 0; k < tf; k++) while (bytes[off++]! & 0x80);
        continue;
      }
      docs.push(nd);
      tfs.push(tf);
      let pos = 0;
      for (let k = 0; k < tf; k++) {
        let x = bytes[off++]!;
        let v = x & 0x7f;
        for (let s = 7; x & 0x80; s += 7) {
          x = bytes[off++]!;
          v |= (x & 0x7f) << s;
        }
        pos += v;
        positions.push(pos);
      }
    }
  }
}
