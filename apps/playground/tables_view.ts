/**
 * The tables panel's view, computed from what the tables processes answer:
 * the tablet map (ranges shown as text), the servers with their tablets
 * and bytes, which tablet holds a row, and the changes between two maps
 * (splits, moves, reassignments) as events. Pure: the live backend feeds
 * it and tests call it directly.
 */
import { Buffer } from "node:buffer";
import type { ProcessState } from "./cluster_snapshot.ts";

/** A tablet as the tables master lists it (row keys base64, `end` null = +∞). */
export interface TabletWire {
  id: string;
  table: string;
  start: string;
  end: string | null;
  server: string | null;
  url: string | null;
  bytes?: number;
}

/** A tablet as the page shows it. */
export interface TabletView {
  id: string;
  table: string;
  /** First row key as text (`0x…` when not printable UTF-8); "" = the table's start. */
  start: string;
  /** End row key (exclusive) as text; null = the table's end. */
  end: string | null;
  /** Server it is assigned to; null while unassigned. */
  server: string | null;
  /** Bytes its server last reported; null when unknown. */
  bytes: number | null;
}

/** A tables master process. */
export interface TablesMasterInput {
  id: string;
  url: string;
  process: ProcessState;
  /** Its `/v1/status`; null when it did not answer. */
  role: "active" | "standby" | null;
}

/** A tablet server process and its `/v1/status`. */
export interface TablesServerInput {
  id: string;
  url: string;
  process: ProcessState;
  status: { serving: boolean; reason?: string } | null;
}

/** A tablet server as the page shows it. */
export interface TablesServerView {
  id: string;
  url: string;
  process: ProcessState;
  /** It answers and holds its kv session (null: no answer). */
  serving: boolean | null;
  /** Why it does not serve, as it says. */
  reason: string | null;
  /** Tablets the map assigns to it, and their bytes. */
  tablets: number;
  bytes: number;
}

/** A change between two tablet maps. */
export interface TabletEvent {
  /** Wall-clock ms when it was seen. */
  at: number;
  kind:
    | "split"
    | "merged"
    | "moved"
    | "reassigned"
    | "unassigned"
    | "assigned";
  table: string;
  /** The tablet (for a split: the parent; for a merge: the merged one). */
  tablet: string;
  /** Server before and after (null: unassigned). */
  from: string | null;
  to: string | null;
  /** A split's children; a merge's sources. */
  children?: string[];
  /** One line for the page. */
  text: string;
}

/** Where a followed row lives and what it holds. */
export interface RowFollowView {
  table: string;
  row: string;
  /** The tablet holding it now (null: the map is unknown or has no such table). */
  tablet: string | null;
  server: string | null;
  /** Its cells, newest version per column (null: not read yet or the read failed). */
  cells: Array<{ column: string; timestamp: number; value: string }> | null;
  /** Why it could not be read now. */
  error: string | null;
  /** Every (tablet, server) it was seen on, oldest first (at most 10). */
  history: Array<{ at: number; tablet: string | null; server: string | null }>;
}

/** The tables part of a snapshot. */
export interface TablesView {
  /** The active master answered with the tablet map. */
  reachable: boolean;
  error: string | null;
  masters: TablesMasterInput[];
  /** Id of the active master. */
  active: string | null;
  servers: TablesServerView[];
  /** Every tablet, by table then start key. */
  tablets: TabletView[];
  /** Newest last, at most {@link MAX_EVENTS}. */
  events: TabletEvent[];
  row: RowFollowView | null;
}

/** Events a view keeps. */
export const MAX_EVENTS = 12;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** A base64 row key as text: UTF-8 if printable, else `0x` and hex. */
export function keyText(b64: string): string {
  const bytes = Buffer.from(b64, "base64");
  try {
    const s = decoder.decode(bytes);
    // deno-lint-ignore no-control-regex
    if (!/[\u0000-\u001f\u007f]/.test(s)) return s;
  } catch { /* not UTF-8 */ }
  return `0x${bytes.toString("hex")}`;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** The tablets as shown, sorted by table then start key. */
export function tabletViews(tablets: readonly TabletWire[]): TabletView[] {
  return [...tablets]
    .sort((a, b) =>
      a.table !== b.table ? (a.table < b.table ? -1 : 1) : compareBytes(
        Buffer.from(a.start, "base64"),
        Buffer.from(b.start, "base64"),
      )
    )
    .map((t) => ({
      id: t.id,
      table: t.table,
      start: keyText(t.start),
      end: t.end === null ? null : keyText(t.end),
      server: t.server,
      bytes: t.bytes ?? null,
    }));
}

/** The servers with the tablets the map assigns them. */
export function serverViews(
  servers: readonly TablesServerInput[],
  tablets: readonly TabletView[],
): TablesServerView[] {
  return servers.map((s) => {
    const mine = tablets.filter((t) => t.server === s.id);
    return {
      id: s.id,
      url: s.url,
      process: s.process,
      serving: s.status?.serving ?? null,
      reason: s.status?.serving === false ? s.status.reason ?? null : null,
      tablets: mine.length,
      bytes: mine.reduce((n, t) => n + (t.bytes ?? 0), 0),
    };
  });
}

/** The tablet of `table` whose range holds `row` (wire ranges), or undefined. */
export function locateRow(
  tablets: readonly TabletWire[],
  table: string,
  row: Uint8Array,
): TabletWire | undefined {
  return tablets.find((t) =>
    t.table === table &&
    compareBytes(row, Buffer.from(t.start, "base64")) >= 0 &&
    (t.end === null || compareBytes(row, Buffer.from(t.end, "base64")) < 0)
  );
}

/**
 * What changed from `before` to `after`: a tablet gone whose range is
 * covered by new tablets of its table is a split; a tablet on another
 * server is a move, or a reassignment when its old server is in `dead`
 * (or unassigned while no server takes it).
 */
export function tabletChanges(
  before: readonly TabletWire[],
  after: readonly TabletWire[],
  at: number,
  dead: ReadonlySet<string> = new Set(),
): TabletEvent[] {
  const events: TabletEvent[] = [];
  const old = new Map(before.map((t) => [t.id, t]));
  const now = new Map(after.map((t) => [t.id, t]));
  const fresh = after.filter((t) => !old.has(t.id));
  for (const p of before) {
    if (now.has(p.id)) continue;
    const ps = Buffer.from(p.start, "base64");
    const pe = p.end === null ? null : Buffer.from(p.end, "base64");
    const children = fresh.filter((c) => {
      if (c.table !== p.table) return false;
      const cs = Buffer.from(c.start, "base64");
      const ce = c.end === null ? null : Buffer.from(c.end, "base64");
      const startsInside = compareBytes(cs, ps) >= 0 &&
        (pe === null || compareBytes(cs, pe) < 0);
      const endsInside = pe === null
        ? true
        : ce !== null && compareBytes(ce, pe) <= 0;
      return startsInside && endsInside;
    });
    if (children.length < 2) continue;
    const at2 = children.map((c) => c.start).filter((s) => s !== p.start);
    events.push({
      at,
      kind: "split",
      table: p.table,
      tablet: p.id,
      from: p.server,
      to: null,
      children: children.map((c) => c.id),
      text: `${p.id} split at ${
        at2.map((s) => JSON.stringify(keyText(s))).join(", ")
      } into ${children.map((c) => c.id).join(" + ")}`,
    });
  }
  // A fresh tablet covering two or more dropped ones is a merge.
  const gone = before.filter((p) => !now.has(p.id));
  for (const m of fresh) {
    const ms = Buffer.from(m.start, "base64");
    const me = m.end === null ? null : Buffer.from(m.end, "base64");
    const sources = gone.filter((p) => {
      if (p.table !== m.table) return false;
      const ps = Buffer.from(p.start, "base64");
      const pe = p.end === null ? null : Buffer.from(p.end, "base64");
      return compareBytes(ps, ms) >= 0 &&
        (me === null || (pe !== null && compareBytes(pe, me) <= 0));
    });
    if (sources.length < 2) continue;
    events.push({
      at,
      kind: "merged",
      table: m.table,
      tablet: m.id,
      from: null,
      to: m.server,
      children: sources.map((p) => p.id),
      text: `${sources.map((p) => p.id).join(" + ")} merged into ${m.id}`,
    });
  }
  for (const t of after) {
    const p = old.get(t.id);
    if (!p || p.server === t.server) continue;
    const kind = t.server === null
      ? "unassigned"
      : p.server === null
      ? "assigned"
      : dead.has(p.server)
      ? "reassigned"
      : "moved";
    events.push({
      at,
      kind,
      table: t.table,
      tablet: t.id,
      from: p.server,
      to: t.server,
      text: kind === "unassigned"
        ? `${t.id} lost its server ${p.server}`
        : kind === "assigned"
        ? `${t.id} assigned to ${t.server}`
        : kind === "reassigned"
        ? `${t.id} reassigned from dead ${p.server} to ${t.server}`
        : `${t.id} moved ${p.server} → ${t.server}`,
    });
  }
  return events;
}

/**
 * A followed row's locations over time: {@link record} appends when the
 * (tablet, server) pair changes, so a split or a move shows as a new line.
 */
export class RowFollow {
  readonly table: string;
  readonly row: string;
  #history: RowFollowView["history"] = [];
  #cells: RowFollowView["cells"] = null;
  #error: string | null = null;

  /** Follows `row` of `table`. */
  constructor(table: string, row: string) {
    this.table = table;
    this.row = row;
  }

  /** Where the row is now (tablet null: unknown). */
  locatedAt(tablet: string | null, server: string | null, at: number): void {
    const last = this.#history.at(-1);
    if (last && last.tablet === tablet && last.server === server) return;
    this.#history.push({ at, tablet, server });
    if (this.#history.length > 10) this.#history.shift();
  }

  /** The cells read now, or why the read failed (the last cells stay). */
  read(result: { cells: RowFollowView["cells"] } | { error: string }): void {
    if ("error" in result) this.#error = result.error;
    else {
      this.#cells = result.cells;
      this.#error = null;
    }
  }

  /** The panel's view. */
  view(): RowFollowView {
    const last = this.#history.at(-1);
    return {
      table: this.table,
      row: this.row,
      tablet: last?.tablet ?? null,
      server: last?.server ?? null,
      cells: this.#cells,
      error: this.#error,
      history: [...this.#history],
    };
  }
}
