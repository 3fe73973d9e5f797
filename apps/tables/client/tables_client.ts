/**
 * `TablesClient`: the TypeScript client of the tables service. It finds
 * where a row's tablet is as BigTable does (the root tablet's location
 * from kv through any master, then METADATA rows on tablet servers: see
 * `locate`), caches the locations, sends each row operation
 * straight to the tablet server holding the row, and refreshes the
 * location when a server answers `not_serving` or cannot be reached.
 *
 * Retries: a read is retried (on a fresh location) after any failure; a
 * write only when it surely was not applied — the server answered
 * `not_serving` (it checks before applying) or the connection was refused
 * (nothing was sent). After a timeout, a lost connection or a 503
 * `unavailable`, a write may have been applied; re-sending it could apply
 * it twice, so the client throws `unknown_outcome` instead. Retries go on
 * for `retryForMs` (default 30 s), long enough for the master to hand a
 * dead server's tablets to another.
 */
import { Buffer } from "node:buffer";
import { Http1Client } from "@strata/edge";
import { compareBytes } from "@strata/lsm";
import { send, sendJson } from "./http_call.ts";
import { TablesClientError } from "./tables_client_error.ts";
import type { TimeSeriesSpec } from "../shared/time_series.ts";
import type { StorageMode, TableSchemaJson } from "../shared/wire.ts";
import {
  inRoot,
  META_FAMILY,
  META_TABLE,
  metaLocationSchema,
  metaLookupStart,
  metaTableEnd,
} from "../shared/metadata_layout.ts";

export { TablesClientError };

/** Bytes, or a string taken as UTF-8. */
export type Bytes = string | Uint8Array;

/** A mutation of a row. */
export type ClientMutation =
  | {
    op: "put";
    family: string;
    qualifier: Bytes;
    value: Bytes;
    timestamp?: number;
  }
  | { op: "deleteCells"; family: string; qualifier: Bytes; timestamp?: number }
  | { op: "deleteFamily"; family: string }
  | { op: "deleteRow" };

/** A cell read back. */
export interface Cell {
  family: string;
  qualifier: Uint8Array;
  timestamp: number;
  value: Uint8Array;
}

/** A row read back (no cells: the row does not exist). */
export interface Row {
  key: Uint8Array;
  cells: Cell[];
}

/** Which cells a read returns. */
export interface ReadOptions {
  /** `family` or `family:qualifier` strings; none = every column. */
  columns?: string[];
  /** Newest versions per cell (default 1). */
  versions?: number;
  /** Only cells with timestamp ≤ asOf. */
  asOf?: number;
}

/** A scan: rows in `[start, end)` with `prefix`, at most `limit`. */
export interface ScanOptions extends ReadOptions {
  start?: Bytes;
  end?: Bytes;
  prefix?: Bytes;
  limit?: number;
  /**
   * With `asOf`: the rows as they were at `asOf`, ignoring later writes
   * (deletes, overwrites, TTL); `compacted` when a tablet's GC may
   * already have passed `asOf` (see {@link TablesClient.holdSnapshot}).
   */
  consistent?: boolean;
}

/** A column family of a new table. */
export interface FamilySpec {
  name: string;
  maxVersions?: number;
  ttlMs?: number;
}

/** A tablet and where it is served. */
export interface TabletInfo {
  id: string;
  table: string;
  start: Uint8Array;
  end: Uint8Array | null;
  server: string | null;
  url: string | null;
  bytes?: number;
  /** Writes and reads per second its server last reported (to the active master). */
  load?: { writesPerSec: number; readsPerSec: number };
}

/** Options of {@link TablesClient}. */
export interface TablesClientOptions {
  /** Bearer token (the tables `admin.token`, `write.token` or `read.token`). */
  token?: string;
  /** Per-request deadline, ms (default 5000). */
  timeoutMs?: number;
  /** Keep retrying a retriable failure this long, ms (default 30 s). */
  retryForMs?: number;
  /** A fetch client trusting the servers' TLS certificate. */
  httpClient?: Deno.HttpClient;
  /**
   * Row writes (mutate, check-and-mutate, increments) to `http://` servers
   * go through a kept-alive HTTP/1.1 pool instead of fetch: about a
   * quarter of fetch's CPU per write, and never re-sent (fetch re-sends a
   * request whose kept-alive connection closed before the answer, so a
   * write a live server read could be applied twice). By default the
   * client makes its own pool on its first row write, which
   * {@link TablesClient.close} closes; pass one to share it (its owner
   * closes it), or `false` for fetch. Ignored with `httpClient` (TLS).
   */
  http1?: Http1Client | false;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** How many tablet locations one METADATA lookup reads (BigTable prefetches too). */
export const LOCATION_PREFETCH = 8;
/** How long a split may take to answer, ms (it copies the tablet). */
const SPLIT_TIMEOUT_MS = 120_000;
const bytes = (b: Bytes): Uint8Array =>
  typeof b === "string" ? enc.encode(b) : b;
/** Base64 of `b` (`toBase64`: ~4× cheaper than a Buffer per byte string). */
const b64 = (b: Bytes): string => bytes(b).toBase64();
const unb64 = (s: string): Uint8Array =>
  new Uint8Array(Buffer.from(s, "base64"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WireTablet {
  id: string;
  table: string;
  start: string;
  end: string | null;
  server: string | null;
  url: string | null;
  bytes?: number;
  load?: { writesPerSec: number; readsPerSec: number };
}
interface WireRow {
  key: string;
  cells: {
    family: string;
    qualifier: string;
    timestamp: number;
    value: string;
  }[];
}

const toTablet = (t: WireTablet): TabletInfo => ({
  id: t.id,
  table: t.table,
  start: unb64(t.start),
  end: t.end === null ? null : unb64(t.end),
  server: t.server,
  url: t.url,
  ...(t.bytes !== undefined ? { bytes: t.bytes } : {}),
  ...(t.load
    ? {
      load: {
        writesPerSec: t.load.writesPerSec,
        readsPerSec: t.load.readsPerSec,
      },
    }
    : {}),
});
const toRow = (r: WireRow): Row => ({
  key: unb64(r.key),
  cells: r.cells.map((c) => ({
    family: c.family,
    qualifier: unb64(c.qualifier),
    timestamp: c.timestamp,
    value: unb64(c.value),
  })),
});
const wireMutation = (m: ClientMutation) =>
  m.op === "put"
    ? { ...m, qualifier: b64(m.qualifier), value: b64(m.value) }
    : m.op === "deleteCells"
    ? { ...m, qualifier: b64(m.qualifier) }
    : m;
const utf8 = new TextDecoder("utf-8", { fatal: true });
/** `b` as text when it is well-formed UTF-8 (its bytes exactly), else undefined. */
const asText = (b: Bytes): string | undefined => {
  if (typeof b === "string") return b.isWellFormed() ? b : undefined;
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
};
/**
 * A row mutation's body: in `utf8` when every byte string is UTF-8, else
 * in `base64`. Text keeps a put of a 100-byte value under 512 bytes on the
 * wire: Deno's HTTP server reads 512 bytes of a request first and answers
 * `connection: close` when the body was not all in that read, so a larger
 * request costs a new connection each time. (Exported for its test.)
 */
export function mutateBody(key: Uint8Array, mutations: ClientMutation[]) {
  const row = asText(key);
  const text = row === undefined ? undefined : mutations.map((m) => {
    if (m.op === "put") {
      const [qualifier, value] = [asText(m.qualifier), asText(m.value)];
      return qualifier === undefined || value === undefined
        ? undefined
        : { ...m, qualifier, value };
    }
    if (m.op !== "deleteCells") return m;
    const qualifier = asText(m.qualifier);
    return qualifier === undefined ? undefined : { ...m, qualifier };
  });
  return row !== undefined && text !== undefined && !text.includes(undefined)
    ? { row, encoding: "utf8", mutations: text }
    : {
      row: b64(key),
      encoding: "base64",
      mutations: mutations.map(wireMutation),
    };
}

/** Client of a tables cell. */
export class TablesClient {
  readonly #masters: string[];
  #preferred = 0;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #retryForMs: number;
  readonly #httpClient?: Deno.HttpClient;
  /** The pool row writes go through: given, made on first use, or none (false). */
  #http1: Http1Client | false | undefined;
  /** Whether {@link #http1} was made here (and {@link close} closes it). */
  #ownsHttp1 = false;
  /** Table → its tablets sorted by start. */
  #locations = new Map<string, TabletInfo[]>();

  /** @param masters the masters' URLs (`http://127.0.0.1:7400` or `127.0.0.1:7400`). */
  constructor(masters: string[], options: TablesClientOptions = {}) {
    if (masters.length === 0) throw new Error("give at least one master");
    this.#masters = masters.map((m) =>
      (m.startsWith("http") ? m : `http://${m}`).replace(/\/$/, "")
    );
    this.#headers = options.token
      ? { authorization: `Bearer ${options.token}` }
      : {};
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#retryForMs = options.retryForMs ?? 30_000;
    this.#httpClient = options.httpClient;
    this.#http1 = options.http1;
  }

  #opts(method: string, body?: unknown, timeoutMs = this.#timeoutMs) {
    return {
      method,
      ...(body === undefined ? {} : { body }),
      headers: this.#headers,
      timeoutMs,
      ...(this.#httpClient ? { client: this.#httpClient } : {}),
    };
  }

  /** {@link #opts} of a row write: its body as text (see `http_call.ts`). */
  #rowWrite(body: unknown) {
    const http1 = this.#rowWritePool();
    return {
      ...this.#opts("POST", body),
      textBody: true,
      ...(http1 ? { http1 } : {}),
    };
  }

  #rowWritePool(): Http1Client | undefined {
    if (this.#http1 === false || this.#httpClient !== undefined) {
      return undefined;
    }
    if (this.#http1 === undefined) {
      this.#http1 = new Http1Client();
      this.#ownsHttp1 = true;
    }
    return this.#http1;
  }

  /**
   * Closes the connections of the row-write pool this client made (a
   * pool given in the options is its owner's to close). Its sockets never
   * keep a program alive, but a test's resource check sees them. The
   * client still works afterwards: a later row write makes a new pool.
   */
  close(): void {
    if (this.#ownsHttp1 && this.#http1) this.#http1.close();
    if (this.#ownsHttp1) {
      this.#http1 = undefined;
      this.#ownsHttp1 = false;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * A call to a master: reads go to any master, `active` calls follow a
   * standby's `leaderUrl`. Retried on the next master while none answers.
   */
  async #master(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.#timeoutMs,
  ): Promise<Record<string, unknown>> {
    const deadline = performance.now() + this.#retryForMs;
    let last: unknown;
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const base = this.#masters[this.#preferred]!;
      try {
        return await sendJson(base + path, this.#opts(method, body, timeoutMs));
      } catch (e) {
        last = e;
        if (!(e instanceof TablesClientError)) throw e;
        const write = method !== "GET";
        const notApplied = e.code === "unreachable" ||
          e.code === "no_leader" || e.code === "not_serving";
        if (
          !notApplied && !["timeout", "lost", "unavailable"].includes(e.code)
        ) {
          throw e;
        }
        if (write && !notApplied) {
          throw new TablesClientError(
            "unknown_outcome",
            `${method} ${path}: ${e.message}; it may or may not have been applied`,
            e.status,
          );
        }
        const hint = e.details?.leaderUrl;
        const i = typeof hint === "string" ? this.#masters.indexOf(hint) : -1;
        this.#preferred = i >= 0 && i !== this.#preferred
          ? i
          : (this.#preferred + 1) % this.#masters.length;
        await sleep(Math.min(500, 25 * 2 ** attempt));
      }
    }
    throw last;
  }

  /**
   * A call to the masters as {@link TablesClient} makes its own (reads to
   * any, writes to the active one; retried while surely not applied): for
   * clients built on this one (`CrdtClient`).
   */
  masterCall(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    return this.#master(method, path, body);
  }

  /** One call to a server's URL with this client's token, once (no retry). */
  serverCall(
    url: string,
    method: string,
    body?: unknown,
    timeoutMs = this.#timeoutMs,
  ): Promise<Record<string, unknown>> {
    return sendJson(url, this.#opts(method, body, timeoutMs));
  }

  /**
   * Creates a table, pre-split at `splits` (N keys: N+1 tablets);
   * `options.timeSeries` declares it time-series (see `time_series.ts`);
   * `options.storage` picks the storage mode (default `disk`; `memory`,
   * `write-behind` with `snapshotMs`).
   */
  async createTable(
    name: string,
    families: FamilySpec[],
    splits: Bytes[] = [],
    options: {
      timeSeries?: Partial<TimeSeriesSpec>;
      storage?: StorageMode;
      snapshotMs?: number;
    } = {},
  ): Promise<TabletInfo[]> {
    const r = await this.#master("POST", "/v1/tables", {
      name,
      families,
      encoding: "base64",
      splits: splits.map(b64),
      ...(options.timeSeries ? { timeSeries: options.timeSeries } : {}),
      ...(options.storage ? { storage: options.storage } : {}),
      ...(options.snapshotMs !== undefined
        ? { snapshotMs: options.snapshotMs }
        : {}),
    });
    this.#locations.delete(name);
    return (r.tablets as WireTablet[]).map((t) =>
      toTablet({ ...t, url: null })
    );
  }

  /** Deletes a table. */
  async deleteTable(name: string): Promise<void> {
    await this.#master("DELETE", `/v1/tables/${encodeURIComponent(name)}`);
    this.#locations.delete(name);
  }

  /** Every table's schema. */
  async listTables(): Promise<{ name: string; families: FamilySpec[] }[]> {
    const r = await this.#master("GET", "/v1/tables");
    return r.tables as { name: string; families: FamilySpec[] }[];
  }

  /** One table's schema. @throws TablesClientError `not_found`. */
  async tableSchema(name: string): Promise<TableSchemaJson> {
    const r = await this.#master(
      "GET",
      `/v1/tables/${encodeURIComponent(name)}`,
    );
    return r.schema as TableSchemaJson;
  }

  /** Every tablet (or those of `table`) with its server and size. */
  async tablets(table?: string): Promise<TabletInfo[]> {
    const r = table === undefined
      ? await this.#master("GET", "/v1/tablets")
      : await this.#master("GET", `/v1/tables/${encodeURIComponent(table)}`);
    return (r.tablets as WireTablet[]).map(toTablet);
  }

  /** Moves a tablet to another server (admin). */
  async moveTablet(id: string, server: string): Promise<void> {
    await this.#master("POST", `/v1/tablets/${encodeURIComponent(id)}/move`, {
      server,
    });
  }

  /**
   * Splits a tablet at `key` (default: its middle key) into two (admin).
   * Writes to it are refused (`not_serving`, re-sent by the client) while
   * its rows are copied. @returns the two new tablets.
   */
  async splitTablet(id: string, key?: Bytes): Promise<TabletInfo[]> {
    const r = await this.#master(
      "POST",
      `/v1/tablets/${encodeURIComponent(id)}/split`,
      key === undefined ? {} : { key: b64(key), encoding: "base64" },
      // The tablet's rows are copied before the answer.
      Math.max(this.#timeoutMs, SPLIT_TIMEOUT_MS),
    );
    return (r.tablets as WireTablet[]).map((t) =>
      toTablet({ ...t, url: null })
    );
  }

  /**
   * Merges tablet `id` with `next`, the tablet right after it, into one
   * (admin); the master first moves them onto one server. Writes to both
   * are refused (`not_serving`, re-sent by the client) while their rows
   * are copied. @returns the merged tablet.
   */
  async mergeTablets(id: string, next: string): Promise<TabletInfo> {
    const r = await this.#master(
      "POST",
      `/v1/tablets/${encodeURIComponent(id)}/merge`,
      { with: next },
      Math.max(this.#timeoutMs, SPLIT_TIMEOUT_MS),
    );
    this.#locations.clear();
    return toTablet({ ...(r.tablet as WireTablet), url: null });
  }

  /** Forgets cached locations (of one table, or all). */
  invalidate(table?: string): void {
    if (table === undefined) this.#locations.clear();
    else this.#locations.delete(table);
  }

  /**
   * The tablet holding `row`: from the cache, else (or when `refresh`)
   * looked up as BigTable does — the root tablet's location from kv
   * (through any master), the METADATA tablet's location from its row in
   * the root tablet, the tablet's location from its row (table + end key)
   * in that METADATA tablet, each read from the tablet server serving it,
   * with the next {@link LOCATION_PREFETCH} - 1 tablets prefetched. Each
   * level is cached and refreshed only when a server refuses it.
   * @throws TablesClientError `not_found` when the table does not exist.
   */
  async locate(
    table: string,
    row: Uint8Array,
    refresh = false,
  ): Promise<TabletInfo> {
    if (!refresh) {
      const hit = this.#cached(table, row);
      if (hit) return hit;
    }
    const deadline = performance.now() + this.#retryForMs;
    for (let attempt = 0;; attempt++) {
      if (table === META_TABLE && inRoot(row)) {
        const r = await this.#master("GET", "/v1/root");
        this.#remember(META_TABLE, [toTablet(r.tablet as WireTablet)]);
      } else {
        this.#remember(table, await this.#lookup(table, row));
      }
      const t = this.#cached(table, row);
      if (t) return t;
      // No METADATA row yet: a new table whose rows the master has not
      // written yet (one reconcile pass), unless the table does not exist.
      await this.tableSchema(table); // throws not_found
      if (performance.now() > deadline) {
        throw new TablesClientError(
          "not_serving",
          `METADATA has no location for this row of ${table} yet`,
        );
      }
      await sleep(Math.min(500, 25 * 2 ** attempt));
    }
  }

  /** The cached tablet of `table` holding `row`, if any. */
  #cached(table: string, row: Uint8Array): TabletInfo | undefined {
    return this.#locations.get(table)?.find((t) =>
      compareBytes(row, t.start) >= 0 &&
      (t.end === null || compareBytes(row, t.end) < 0)
    );
  }

  /** Caches `found`, dropping the cached tablets they overlap (stale ones). */
  #remember(table: string, found: TabletInfo[]): void {
    const overlaps = (a: TabletInfo, b: TabletInfo) =>
      (a.end === null || compareBytes(b.start, a.end) < 0) &&
      (b.end === null || compareBytes(a.start, b.end) < 0);
    const kept = (this.#locations.get(table) ?? []).filter((c) =>
      !found.some((f) => overlaps(c, f))
    );
    this.#locations.set(
      table,
      [...kept, ...found].sort((a, b) => compareBytes(a.start, b.start)),
    );
  }

  /** The METADATA rows of the tablet of `row` and of the tablets after it. */
  async #lookup(table: string, row: Uint8Array): Promise<TabletInfo[]> {
    const found: TabletInfo[] = [];
    for await (
      const r of this.scan(META_TABLE, {
        start: metaLookupStart(table, row),
        end: metaTableEnd(table),
        limit: LOCATION_PREFETCH,
      })
    ) {
      const cell = r.cells.find((c) => c.family === META_FAMILY);
      if (!cell) continue;
      let loc;
      try {
        loc = metaLocationSchema.safeParse(JSON.parse(dec.decode(cell.value)));
      } catch {
        continue; // not JSON: only the master writes METADATA; skip it
      }
      if (loc.success) found.push(toTablet(loc.data));
    }
    return found;
  }

  /**
   * Sends a row operation to the server of `row`, retrying per the rules
   * above. `write` says whether a re-send could apply it twice.
   */
  async #row(
    table: string,
    row: Uint8Array,
    write: boolean,
    call: (url: string) => Promise<Record<string, unknown>>,
  ): Promise<Record<string, unknown>> {
    const deadline = performance.now() + this.#retryForMs;
    let refresh = false;
    let last: unknown;
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const t = await this.locate(table, row, refresh);
      refresh = true;
      if (t.url === null) {
        last = new TablesClientError(
          "not_serving",
          `tablet ${t.id} of ${table} is not assigned to a live server yet`,
        );
        await sleep(Math.min(500, 25 * 2 ** attempt));
        continue;
      }
      try {
        return await call(t.url);
      } catch (e) {
        last = e;
        if (!(e instanceof TablesClientError)) throw e;
        const notApplied = e.code === "not_serving" || e.code === "unreachable";
        const retriable = notApplied ||
          ["timeout", "lost", "unavailable"].includes(e.code);
        if (!retriable) throw e;
        if (write && !notApplied) {
          throw new TablesClientError(
            "unknown_outcome",
            `${e.message}; the write may or may not have been applied (not re-sent)`,
            e.status,
          );
        }
        await sleep(Math.min(500, 25 * 2 ** attempt));
      }
    }
    throw last;
  }

  #tablePath(url: string, table: string, what: string): string {
    return `${url}/v1/tables/${encodeURIComponent(table)}/${what}`;
  }

  /** Applies `mutations` to one row, atomically. @throws TablesClientError (`unknown_outcome`: see above). */
  async mutateRow(
    table: string,
    row: Bytes,
    mutations: ClientMutation[],
  ): Promise<void> {
    const key = bytes(row);
    await this.#row(table, key, true, (url) =>
      sendJson(
        this.#tablePath(url, table, "mutate"),
        this.#rowWrite(mutateBody(key, mutations)),
      ));
  }

  /** Puts one cell. */
  put(
    table: string,
    row: Bytes,
    family: string,
    qualifier: Bytes,
    value: Bytes,
    timestamp?: number,
  ): Promise<void> {
    return this.mutateRow(table, row, [{
      op: "put",
      family,
      qualifier,
      value,
      ...(timestamp !== undefined ? { timestamp } : {}),
    }]);
  }

  /** Deletes a whole row. */
  deleteRow(table: string, row: Bytes): Promise<void> {
    return this.mutateRow(table, row, [{ op: "deleteRow" }]);
  }

  /**
   * Applies `mutations` only if the newest value of the cell equals
   * `equals` (null: the cell is absent). @returns whether it did.
   */
  async checkAndMutate(
    table: string,
    row: Bytes,
    condition: { family: string; qualifier: Bytes; equals: Bytes | null },
    mutations: ClientMutation[],
  ): Promise<boolean> {
    const key = bytes(row);
    const r = await this.#row(table, key, true, (url) =>
      sendJson(
        this.#tablePath(url, table, "check-and-mutate"),
        this.#rowWrite({
          row: b64(key),
          encoding: "base64",
          condition: {
            family: condition.family,
            qualifier: b64(condition.qualifier),
            equals: condition.equals === null ? null : b64(condition.equals),
          },
          mutations: mutations.map(wireMutation),
        }),
      ));
    return r.succeeded as boolean;
  }

  /**
   * Holds GC for `ms` on the tablet holding `row`, for consistent scans as
   * of `asOf` (a backup holds every tablet before reading any).
   * @throws TablesClientError `compacted` when that tablet's GC already
   *   passed `asOf`.
   */
  async holdSnapshot(
    table: string,
    row: Bytes,
    asOf: number,
    ms: number,
  ): Promise<void> {
    const key = bytes(row);
    // Idempotent (holds only extend), so it is re-sent like a read.
    await this.#row(table, key, false, (url) =>
      sendJson(
        this.#tablePath(url, table, "hold"),
        this.#rowWrite({ row: b64(key), encoding: "base64", asOf, ms }),
      ));
  }

  #readQuery(o: ReadOptions, extra: Record<string, string>): URLSearchParams {
    const q = new URLSearchParams({ encoding: "base64", ...extra });
    if (o.columns?.length) {
      // Qualifiers travel in base64 like every byte string.
      q.set(
        "columns",
        o.columns.map((c) => {
          const i = c.indexOf(":");
          return i < 0 ? c : `${c.slice(0, i)}:${b64(c.slice(i + 1))}`;
        }).join(","),
      );
    }
    if (o.versions !== undefined) q.set("versions", String(o.versions));
    if (o.asOf !== undefined) q.set("asOf", String(o.asOf));
    if ((o as ScanOptions).consistent) q.set("consistent", "true");
    return q;
  }

  /** Reads one row (no cells: it does not exist). */
  async getRow(
    table: string,
    row: Bytes,
    options: ReadOptions = {},
  ): Promise<Row> {
    const key = bytes(row);
    const r = await this.#row(table, key, false, (url) =>
      sendJson(
        `${this.#tablePath(url, table, "row")}?${
          this.#readQuery(options, { key: b64(key) })
        }`,
        this.#opts("GET"),
      ));
    return toRow(r as unknown as WireRow);
  }

  /**
   * Rows in key order across every tablet of the range, streamed. A
   * server that stops serving mid-scan is left, and the scan goes on
   * after the last row received, on the tablet's new server.
   */
  async *scan(table: string, options: ScanOptions = {}): AsyncGenerator<Row> {
    const prefix = options.prefix === undefined
      ? undefined
      : bytes(options.prefix);
    const end = options.end === undefined ? undefined : bytes(options.end);
    let from = options.start === undefined
      ? new Uint8Array(0)
      : bytes(options.start);
    if (prefix && compareBytes(prefix, from) > 0) from = prefix;
    let remaining = options.limit ?? Infinity;
    const deadline = () => performance.now() + this.#retryForMs;
    let giveUpAt = deadline();
    let refresh = false;
    let attempt = 0;
    while (remaining > 0) {
      const t = await this.locate(table, from, refresh);
      refresh = true;
      const extra: Record<string, string> = { start: b64(from) };
      if (end) extra.end = b64(end);
      if (prefix) extra.prefix = b64(prefix);
      if (remaining !== Infinity) extra.limit = String(remaining);
      let next: Uint8Array | null | undefined;
      try {
        if (t.url === null) {
          throw new TablesClientError(
            "not_serving",
            `tablet ${t.id} is unassigned`,
          );
        }
        const res = await send(
          `${this.#tablePath(t.url, table, "scan")}?${
            this.#readQuery(options, extra)
          }`,
          this.#opts("GET"),
        );
        for await (const line of ndjsonLines(res.body!)) {
          const m = JSON.parse(line) as
            | WireRow
            | { done: true; continueAt: string | null }
            | { error: { code: string; message: string } };
          if ("error" in m) {
            throw new TablesClientError(m.error.code, m.error.message);
          }
          if ("done" in m) {
            next = m.continueAt === null ? null : unb64(m.continueAt);
            break;
          }
          const row = toRow(m);
          yield row;
          remaining--;
          // Resume after this row if the server goes away.
          from = new Uint8Array([...row.key, 0]);
          attempt = 0;
          giveUpAt = deadline();
        }
        if (next === undefined) {
          throw new TablesClientError("lost", "the scan stream ended early");
        }
      } catch (e) {
        if (!(e instanceof TablesClientError)) {
          // A broken stream: the connection dropped mid-answer.
          if (e instanceof TypeError || e instanceof DOMException) {
            next = undefined;
          } else throw e;
        } else if (
          !["not_serving", "unreachable", "timeout", "lost", "unavailable"]
            .includes(e.code)
        ) throw e;
        if (performance.now() > giveUpAt) throw e;
        await sleep(Math.min(500, 25 * 2 ** attempt++));
        continue;
      }
      if (next === null) return;
      from = next;
      refresh = false;
    }
  }
}

/** The lines of an NDJSON body. */
async function* ndjsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buf.trim()) yield buf.trim();
}

/** A row's cells as `family:qualifier → value` text (UTF-8), newest first per column. */
export function rowText(row: Row): Record<string, string> {
  const dec = new TextDecoder();
  const out: Record<string, string> = {};
  for (const c of row.cells) {
    const k = `${c.family}:${dec.decode(c.qualifier)}`;
    if (!(k in out)) out[k] = dec.decode(c.value);
  }
  return out;
}
