/**
 * `tablet_map.ts`: where the tablets of one table are served, read from
 * kv (METADATA: `tables/tablets/<table>/` and the live servers with their
 * RESP addresses, `tables/servers/`), cached, and read again on a miss (a
 * stale map after a split or a move). Refreshes are coalesced and at most
 * one per `minRefreshMs`.
 */
import type { KvClient } from "@strata/kv";
import { compareBytes } from "@strata/lsm";
import {
  SERVER_PREFIX,
  serverRecordSchema,
  TABLET_PREFIX,
  tabletRecordSchema,
} from "../shared/kv_layout.ts";
import { fromB64 } from "../shared/wire.ts";

/** One tablet's range and server. */
export interface MapEntry {
  start: Uint8Array;
  end: Uint8Array | null;
  server: string | null;
  /** The server's RESP `host:port`, when it has one. */
  resp: string | undefined;
}

const dec = new TextDecoder();
const parse = <T>(
  s: { safeParse(x: unknown): { success: boolean; data?: T } },
  b: Uint8Array,
) => {
  try {
    const r = s.safeParse(JSON.parse(dec.decode(b)));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
};

/** The cached tablet map of one table. */
export class TabletMap {
  #entries: MapEntry[] = [];
  #refreshing: Promise<void> | undefined;
  #last = -Infinity;

  /** @param kv the cell's kv; @param table the table. */
  constructor(
    private readonly kv: KvClient,
    readonly table: string,
    private readonly minRefreshMs = 100,
  ) {}

  /** Whether the table has tablets (after a refresh). */
  get known(): boolean {
    return this.#entries.length > 0;
  }

  /** The entry holding `key` in the cached map. */
  lookup(key: Uint8Array): MapEntry | undefined {
    const es = this.#entries;
    let lo = 0;
    let hi = es.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = es[mid]!;
      if (compareBytes(key, e.start) < 0) hi = mid - 1;
      else if (e.end !== null && compareBytes(key, e.end) >= 0) lo = mid + 1;
      else return e;
    }
    return undefined;
  }

  /** Reads the map again (coalesced; waits out `minRefreshMs`). */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      const wait = this.#last + this.minRefreshMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        const servers = new Map<string, string | undefined>();
        for await (const e of this.kv.scan(SERVER_PREFIX)) {
          const s = parse(serverRecordSchema, e.value);
          if (s) servers.set(s.id, s.resp);
        }
        const entries: MapEntry[] = [];
        for await (const e of this.kv.scan(`${TABLET_PREFIX}${this.table}/`)) {
          const t = parse(tabletRecordSchema, e.value);
          if (!t || t.table !== this.table) continue;
          entries.push({
            start: fromB64(t.start),
            end: t.end === null ? null : fromB64(t.end),
            server: t.server,
            resp: t.server ? servers.get(t.server) : undefined,
          });
        }
        entries.sort((a, b) => compareBytes(a.start, b.start));
        this.#entries = entries;
      } finally {
        this.#last = performance.now();
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }
}
