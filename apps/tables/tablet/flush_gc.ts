import { compareBytes } from "@strata/lsm";
import { type ParsedKey, parseKey, ROW_SPACE_START } from "./key_codec.ts";
import { type CellHead, readCellHead } from "./value_codec.ts";
import type { FamilyPolicy } from "./version_gc.ts";

/**
 * Versions of one column a flush remembers to decide on the older ones:
 * past this many, the rest of the column is kept whole (keeping is
 * always safe; it bounds the work per entry).
 */
const MAX_REMEMBERED = 64;

/**
 * What a flush may leave out of its table (RocksDB drops overwritten
 * entries when it flushes a memtable no snapshot needs): the cell
 * versions that {@link VersionGc} calls dead for every read from some
 * time on, judged from the frozen memtable's own entries. A version `V`
 * of a column whose memtable also holds at least `maxVersions` versions
 * of that column with a newer timestamp **and** a later write (`seq`) is
 * dead for every read that sees those: each of them either takes a
 * version slot ahead of `V` or is hidden by a deletion marker, which then
 * hides `V` too (a marker written at `T` hides timestamps `<= T` written
 * before `T`), whatever the older tables hold. A consistent read as of a
 * time before the `maxVersions`-th of those writes still needs `V`: the
 * flush returns the latest such time ({@link horizon}), and the tablet
 * refuses consistent reads as of earlier times, as after a GC
 * compaction. Markers, deleted versions that still hold a slot, expired
 * versions and keys it cannot read are kept; entries must come in key
 * order.
 */
export class FlushGc {
  #policies: Map<string, FamilyPolicy>;
  #parsed: ParsedKey = {
    kind: "row",
    rowEnd: 0,
    family: "",
    qualifier: new Uint8Array(0),
    timestamp: 0,
  };
  #cell: CellHead = { deleted: false, seq: 0 };
  /** A cell key of the current column (all but its last 8 bytes name it). */
  #column: Uint8Array | undefined;
  /**
   * Write times of the current column's versions so far, newest
   * timestamp first: the first {@link #n} slots (an array that keeps its
   * length: emptying one drops its backing store, and the next push
   * allocates one, a memtable's worth of times per flush).
   */
  #seqs: number[] = new Array<number>(MAX_REMEMBERED).fill(0);
  #n = 0;
  #above: number[] = [];
  /** The latest write time that made a left-out version dead (-1: none left out). */
  horizon = -1;
  /** Versions left out. */
  dropped = 0;

  constructor(policies: Map<string, FamilyPolicy>) {
    this.#policies = policies;
  }

  /** False when the flush may leave the entry out. */
  keep(key: Uint8Array, value: Uint8Array): boolean {
    if (!this.#sameColumn(key)) {
      // Most columns have one version in a memtable: the key is parsed
      // only when a second one comes (then both are cells of one column,
      // equal up to their timestamps).
      this.#column = key;
      this.#seqs[0] = this.#seqOf(value);
      this.#n = 1;
      return true;
    }
    const seq = this.#seqOf(value);
    let p: ParsedKey;
    try {
      p = parseKey(key, this.#parsed);
    } catch {
      // A key this code cannot read is kept, not silently destroyed.
      return true;
    }
    const policy = this.#policies.get(p.family);
    if (
      p.kind !== "cell" || policy === undefined || seq < 0 ||
      compareBytes(key, ROW_SPACE_START) < 0
    ) return true;
    const dead = this.#deadFrom(seq, policy.maxVersions);
    if (this.#n < MAX_REMEMBERED) this.#seqs[this.#n++] = seq;
    if (dead < 0) return true;
    if (dead > this.horizon) this.horizon = dead;
    this.dropped++;
    return false;
  }

  /** A cell value's write time; -1 for bytes that are not one (never dropped, never a reason to drop). */
  #seqOf(value: Uint8Array): number {
    try {
      return readCellHead(value, this.#cell).seq;
    } catch {
      return -1;
    }
  }

  /**
   * The write time from which a version written at `seq` is dead: the
   * `max`-th earliest write among the column's newer versions written
   * after it; -1 when fewer than `max` were.
   */
  #deadFrom(seq: number, max: number): number {
    if (max === 1) {
      // The common case, without the array.
      let first = -1;
      for (let i = 0; i < this.#n; i++) {
        const s = this.#seqs[i]!;
        if (s > seq && (first < 0 || s < first)) first = s;
      }
      return first;
    }
    const above = this.#above;
    above.length = 0;
    for (let i = 0; i < this.#n; i++) {
      const s = this.#seqs[i]!;
      if (s > seq) above.push(s);
    }
    if (above.length < max) return -1;
    above.sort((a, b) => a - b);
    return above[max - 1]!;
  }

  /** `key` is a cell of the current column: equal but for its 8 timestamp bytes. */
  #sameColumn(key: Uint8Array): boolean {
    const c = this.#column;
    if (c === undefined || c.length !== key.length) return false;
    for (let i = key.length - 9; i >= 0; i--) if (c[i] !== key[i]) return false;
    return true;
  }
}
