import { TEXT_FIELDS } from "./document.ts";
import { NO_MORE_DOCS, PostingsWriter } from "./postings.ts";
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
  const fields: FieldTerms[] = TEXT_FIELDS.map((_, f) => {
    const all = new Set<string>();
    for (const { segment } of inputs) {
      for (const t of segment.fields[f]!.terms) {
        all.add(t);
      }
    }
    const sorted = [...all].sort();
    const terms: string[] = [];
    const df: number[] = [];
    const blockStart: number[] = [];
    const blockCount: number[] = [];
    for (const term of sorted) {
      const docs: number[] = [];
      const tfs: number[] = [];
      const positions: number[] = [];
      inputs.forEach(({ segment }, i) => {
        const c = segment.cursor(f, term);
        if (c === null) return;
        const map = maps[i]!;
        for (let d = c.next(); d !== NO_MORE_DOCS; d = c.next()) {
          const nd = map[d]!;
          if (nd < 0) continue;
          docs.push(nd);
          tfs.push(c.tf);
          for (const p of c.positions()) positions.push(p);
        }
      });
      if (docs.length === 0) continue; // only deleted docs had it
      const t = writer.add(docs, tfs, positions, lens[f]!);
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
