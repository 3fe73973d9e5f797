import { compareBytes } from "@strata/lsm";
import { type ParsedKey, sameRow } from "./key_codec.ts";
import type { CellHead } from "./value_codec.ts";

/** A family's GC policy, resolved (defaults applied). */
export interface FamilyPolicy {
  maxVersions: number;
  ttlMs: number;
}

/** What {@link VersionGc.classify} decides about one entry. */
export type Verdict =
  /** A deletion marker (state for the entries after it). */
  | "marker"
  /** Gone: hidden by a marker, beyond the family's versions, expired, or of an unknown family. */
  | "dead"
  /** A deleted version that still holds its version slot (never returned to readers). */
  | "tombstone"
  /** A visible version. */
  | "live";

/**
 * The one rule that decides which cells exist, applied alike by every read
 * and by compaction (which then drops all but "tombstone" and "live"
 * entries), so results do not depend on when compactions run. Entries must
 * come in key order (rows, families, columns, timestamps descending):
 *
 * 1. a marker (row, family or column) written at `T` hides the cells under
 *    it with timestamp `<= T` written before it (`seq < T`);
 * 2. of the rest, a column's newest `maxVersions` versions (deleted
 *    versions included) keep their slots, older ones are dead;
 * 3. versions with `timestamp + ttlMs <= now` are dead.
 */
export class VersionGc {
  #policies: Map<string, FamilyPolicy>;
  #now: number;
  /** A key of the current row and the length of its row part (no view per row). */
  #row: Uint8Array | undefined;
  #rowEnd = 0;
  #family = "";
  #qualifier: Uint8Array | undefined;
  #rowMarker = -1;
  #familyMarker = -1;
  #columnMarker = -1;
  #slots = 0;

  /** @param now the time TTLs are measured against (ms). */
  constructor(policies: Map<string, FamilyPolicy>, now: number) {
    this.#policies = policies;
    this.#now = now;
  }

  /**
   * Classifies the next entry. `key` is the raw key (its first
   * `parsed.rowEnd` bytes are the row), `marker` the marker's timestamp
   * for marker entries, `cell` the decoded value for cells.
   */
  classify(
    key: Uint8Array,
    parsed: ParsedKey,
    marker: number,
    cell: CellHead | undefined,
  ): Verdict {
    if (!sameRow(key, parsed.rowEnd, this.#row, this.#rowEnd)) {
      this.#row = key;
      this.#rowEnd = parsed.rowEnd;
      this.#rowMarker = -1;
      this.#family = "";
      this.#familyMarker = -1;
      this.#qualifier = undefined;
    }
    if (parsed.kind === "row") {
      this.#rowMarker = marker;
      return "marker";
    }
    if (parsed.family !== this.#family) {
      this.#family = parsed.family;
      this.#familyMarker = -1;
      this.#qualifier = undefined;
    }
    if (parsed.kind === "family") {
      this.#familyMarker = marker;
      return "marker";
    }
    if (
      this.#qualifier === undefined ||
      compareBytes(parsed.qualifier, this.#qualifier) !== 0
    ) {
      this.#qualifier = parsed.qualifier;
      this.#columnMarker = -1;
      this.#slots = 0;
    }
    if (parsed.kind === "column") {
      this.#columnMarker = marker;
      return "marker";
    }
    const policy = this.#policies.get(parsed.family);
    if (policy === undefined || cell === undefined) return "dead";
    const ts = parsed.timestamp;
    if (
      hides(this.#rowMarker, ts, cell.seq) ||
      hides(this.#familyMarker, ts, cell.seq) ||
      hides(this.#columnMarker, ts, cell.seq)
    ) {
      return "dead";
    }
    if (++this.#slots > policy.maxVersions) return "dead";
    if (ts + policy.ttlMs <= this.#now) return "dead";
    return cell.deleted ? "tombstone" : "live";
  }
}

function hides(marker: number, ts: number, seq: number): boolean {
  return marker >= 0 && ts <= marker && seq < marker;
}
