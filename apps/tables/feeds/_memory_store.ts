/**
 * An in-memory {@link FeedStore} for the model test: single-row atomic
 * operations, scans in key order, and a seeded scheduler that delays every
 * call by random turns (so concurrent callers interleave) and makes some
 * writes end in `unknown_outcome`, applied or not.
 */
import { Prng } from "@strata/sim";
import { TablesClientError } from "../client/tables_client.ts";
import type {
  Bytes,
  ClientMutation,
  FamilySpec,
  FeedStore,
  ReadOptions,
  Row,
  ScanOptions,
} from "./feed_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const str = (b: Bytes) => (typeof b === "string" ? b : dec.decode(b));

interface Stored {
  value: Uint8Array;
  timestamp: number;
}

/** See the module doc. */
export class MemoryFeedStore implements FeedStore {
  readonly tables = new Map<string, Map<string, Map<string, Stored>>>();
  #clock = 1_000_000;
  #rand: () => number;
  /** Share of writes that end in unknown_outcome (half of them applied). */
  unknownRate: number;
  /** Writes that ended in unknown_outcome. */
  unknowns = 0;

  constructor(seed: number, unknownRate = 0.05) {
    const prng = new Prng(seed);
    this.#rand = () => prng.float();
    this.unknownRate = unknownRate;
  }

  /** Moves the store's clock (ms) forward. */
  advance(ms: number): void {
    this.#clock += ms;
  }

  async #turns(): Promise<void> {
    // Microtask turns: other callers' steps run in between.
    const n = Math.floor(this.#rand() * 8);
    for (let i = 0; i < n; i++) await Promise.resolve();
  }

  #table(name: string) {
    const t = this.tables.get(name);
    if (!t) throw new TablesClientError("not_found", `no table ${name}`, 404);
    return t;
  }

  /** A write: delayed, maybe applied and then unknown, or unknown and not applied. */
  async #write<T>(apply: () => T): Promise<T> {
    await this.#turns();
    const r = this.#rand();
    if (r < this.unknownRate / 2) {
      throw new TablesClientError("unknown_outcome", "lost (not applied)");
    }
    const out = apply();
    await this.#turns();
    if (r < this.unknownRate) {
      this.unknowns++;
      throw new TablesClientError("unknown_outcome", "lost (applied)");
    }
    return out;
  }

  #apply(
    table: Map<string, Map<string, Stored>>,
    row: string,
    ms: ClientMutation[],
  ) {
    const ts = ++this.#clock;
    let cells = table.get(row) ?? new Map<string, Stored>();
    for (const m of ms) {
      if (m.op === "put") {
        cells.set(`${m.family}:${str(m.qualifier)}`, {
          value: typeof m.value === "string" ? enc.encode(m.value) : m.value,
          timestamp: ts,
        });
      } else if (m.op === "deleteRow") cells = new Map();
      else throw new Error(`the memory store does not do ${m.op}`);
    }
    if (cells.size === 0) table.delete(row);
    else table.set(row, cells);
  }

  #render(row: string, cells: Map<string, Stored>, o: ReadOptions): Row {
    const want = o.columns;
    return {
      key: enc.encode(row),
      cells: [...cells].filter(([col]) =>
        !want || want.some((w) => w === col || w === col.split(":")[0])
      ).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([col, s]) => {
        const i = col.indexOf(":");
        return {
          family: col.slice(0, i),
          qualifier: enc.encode(col.slice(i + 1)),
          timestamp: s.timestamp,
          value: s.value,
        };
      }),
    };
  }

  async createTable(
    name: string,
    _families: FamilySpec[],
    _splits?: Bytes[],
  ): Promise<never[]> {
    await this.#turns();
    if (this.tables.has(name)) {
      throw new TablesClientError("conflict", `table ${name} exists`, 409);
    }
    this.tables.set(name, new Map());
    return [];
  }

  async getRow(table: string, row: Bytes, o: ReadOptions = {}): Promise<Row> {
    await this.#turns();
    const t = this.#table(table);
    const key = str(row);
    return this.#render(key, t.get(key) ?? new Map(), o);
  }

  async *scan(table: string, o: ScanOptions = {}): AsyncGenerator<Row> {
    await this.#turns();
    const t = this.#table(table);
    const start = o.start === undefined ? "" : str(o.start);
    const end = o.end === undefined ? undefined : str(o.end);
    const keys = [...t.keys()].filter((k) =>
      k >= start && (end === undefined || k < end)
    ).sort();
    let n = 0;
    for (const k of keys) {
      if (n >= (o.limit ?? Infinity)) return;
      const cells = t.get(k);
      if (!cells) continue; // deleted while scanning
      const r = this.#render(k, cells, o);
      if (r.cells.length === 0) continue;
      n++;
      yield r;
      if (this.#rand() < 0.2) await this.#turns();
    }
  }

  checkAndMutate(
    table: string,
    row: Bytes,
    condition: { family: string; qualifier: Bytes; equals: Bytes | null },
    mutations: ClientMutation[],
  ): Promise<boolean> {
    const t = this.#table(table);
    const key = str(row);
    return this.#write(() => {
      const cur = t.get(key)?.get(
        `${condition.family}:${str(condition.qualifier)}`,
      );
      const ok = condition.equals === null
        ? cur === undefined
        : cur !== undefined && dec.decode(cur.value) === str(condition.equals);
      if (ok) this.#apply(t, key, mutations);
      return ok;
    });
  }

  async mutateRow(
    table: string,
    row: Bytes,
    mutations: ClientMutation[],
  ): Promise<void> {
    const t = this.#table(table);
    await this.#write(() => this.#apply(t, str(row), mutations));
  }
}
