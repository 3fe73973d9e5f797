import { compareBytes } from "@strata/lsm";
import { tabletBytes } from "./byte_arena.ts";
import { decodeRow, isRowOf, parseKey } from "./key_codec.ts";
import type { Cell, ReadOptions, Row } from "./types.ts";
import { decodeCell, decodeMarker, decodeMarkerChain } from "./value_codec.ts";
import { type FamilyPolicy, VersionGc } from "./version_gc.ts";

/**
 * Turns the tablet's LSM entries, in key order, into rows as a reader
 * sees them: {@link VersionGc} decides which versions exist, then the
 * read's columns, `asOf` and `versions` pick among them.
 */
export class RowAssembler {
  #gc: VersionGc;
  #asOf: number;
  #versions: number;
  #families: Set<string> | undefined;
  #columns: Map<string, Uint8Array[]> | undefined;
  #prefix: Uint8Array | undefined;
  #cells: Cell[] = [];
  #lastFamily = "";
  #lastQualifier: Uint8Array | undefined;
  #count = 0;

  #writtenBy: number;

  /**
   * @param now the time TTLs are measured against (ms);
   * @param writtenBy entries written after this time are ignored (a
   *   consistent read as of it); default none are.
   */
  constructor(
    policies: Map<string, FamilyPolicy>,
    now: number,
    options: ReadOptions,
    writtenBy = Infinity,
  ) {
    this.#gc = new VersionGc(policies, now);
    this.#writtenBy = writtenBy;
    this.#asOf = options.asOf ?? Infinity;
    this.#versions = options.versions ?? Infinity;
    if (options.columns !== undefined) {
      this.#families = new Set();
      this.#columns = new Map();
      for (const c of options.columns) {
        if (c.qualifier === undefined) this.#families.add(c.family);
        else {
          const qs = this.#columns.get(c.family) ?? [];
          qs.push(c.qualifier);
          this.#columns.set(c.family, qs);
        }
      }
    }
  }

  /**
   * Adds the next entry; returns the previous row when this entry starts
   * a new one and that row has visible cells.
   */
  add(key: Uint8Array, value: Uint8Array): Row | undefined {
    const p = parseKey(key);
    let done: Row | undefined;
    if (!isRowOf(key, p.rowEnd, this.#prefix)) {
      done = this.finish();
      // A view: stored entries are never changed (decodeRow copies).
      this.#prefix = key.subarray(0, p.rowEnd);
    }
    if (p.kind !== "cell") {
      // The marker in force at writtenBy: the newest of its chain up to it.
      const t = this.#writtenBy === Infinity
        ? decodeMarker(value)
        : decodeMarkerChain(value).find((x) => x <= this.#writtenBy);
      if (t !== undefined) this.#gc.classify(key, p, t, undefined);
      return done;
    }
    const cell = decodeCell(value);
    if (cell.seq > this.#writtenBy) return done;
    if (this.#gc.classify(key, p, -1, cell) !== "live") return done;
    if (p.timestamp > this.#asOf || !this.#wanted(p.family, p.qualifier)) {
      return done;
    }
    if (
      p.family !== this.#lastFamily || this.#lastQualifier === undefined ||
      compareBytes(p.qualifier, this.#lastQualifier) !== 0
    ) {
      this.#lastFamily = p.family;
      this.#lastQualifier = p.qualifier;
      this.#count = 0;
    }
    if (++this.#count > this.#versions) return done;
    this.#cells.push({
      family: p.family,
      qualifier: tabletBytes.copy(p.qualifier),
      timestamp: p.timestamp,
      value: tabletBytes.copy(cell.value),
    });
    return done;
  }

  /** The row being assembled, if it has visible cells; starts afresh. */
  finish(): Row | undefined {
    const prefix = this.#prefix;
    const cells = this.#cells;
    this.#prefix = undefined;
    this.#cells = [];
    this.#lastQualifier = undefined;
    if (prefix === undefined || cells.length === 0) return undefined;
    return { key: decodeRow(prefix), cells };
  }

  #wanted(family: string, qualifier: Uint8Array): boolean {
    if (this.#families === undefined) return true;
    if (this.#families.has(family)) return true;
    const qs = this.#columns!.get(family);
    return qs !== undefined && qs.some((q) => compareBytes(q, qualifier) === 0);
  }
}
