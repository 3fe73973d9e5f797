/**
 * Keeps the METADATA table's rows equal to the tablet map in kv: the
 * active master computes the rows every user tablet should have
 * ({@link desiredMetaRows}, pure), reads what the METADATA tablets hold,
 * and writes the difference ({@link planMetaSync}, pure) through the
 * tablet servers serving METADATA, each write carrying its fencing token
 * (a server refuses a token older than one it has seen). Level triggered:
 * a row a deposed master wrote late is put right on the next pass.
 */
import { Buffer } from "node:buffer";
import { callJson } from "@strata/edge";
import { z } from "zod";
import type { KvState } from "./master_service.ts";
import {
  isRootTablet,
  META_FAMILY,
  META_FENCE_HEADER,
  META_QUALIFIER,
  META_TABLE,
  type MetaLocation,
  metaRowKey,
} from "../shared/metadata_layout.ts";

/** METADATA rows by row key (hex) → the location cell's JSON. */
export type MetaRows = Map<string, string>;

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unb64 = (s: string): Uint8Array =>
  new Uint8Array(Buffer.from(s, "base64"));

/**
 * The rows METADATA should hold: one per tablet of `state` but the root
 * (rows of METADATA tablets land in the root tablet, the others in the
 * METADATA tablets).
 */
export function desiredMetaRows(state: KvState): MetaRows {
  const rows: MetaRows = new Map();
  for (const t of state.tablets) {
    if (isRootTablet(t)) continue; // its location is in kv only
    const loc: MetaLocation = {
      id: t.id,
      table: t.table,
      start: t.start,
      end: t.end,
      server: t.server,
      url: t.server === null ? null : state.servers.get(t.server)?.url ?? null,
    };
    const end = t.end === null ? null : unb64(t.end);
    rows.set(hex(metaRowKey(t.table, end)), JSON.stringify(loc));
  }
  return rows;
}

/** What to write so that `present` becomes `desired`. */
export function planMetaSync(
  desired: MetaRows,
  present: MetaRows,
): { put: [string, string][]; del: string[] } {
  const put: [string, string][] = [];
  for (const [k, v] of desired) if (present.get(k) !== v) put.push([k, v]);
  const del = [...present.keys()].filter((k) => !desired.has(k));
  return { put, del };
}

/** A METADATA tablet with its range (base64) and its server's URL. */
export interface MetaTablet {
  id: string;
  start: string;
  end: string | null;
  url: string | null;
}

const scanLine = z.union([
  z.object({ done: z.literal(true), continueAt: z.string().nullable() }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
  z.object({
    key: z.string(),
    cells: z.array(z.object({
      family: z.string(),
      qualifier: z.string(),
      value: z.string(),
    })),
  }),
]);

/** Reads and writes METADATA rows on the servers serving its tablets. */
export class MetaStore {
  /** @param o the servers' admin token and fetch client. */
  constructor(
    private readonly o: { serverToken?: string; httpClient?: Deno.HttpClient },
  ) {}

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.o.serverToken
        ? { authorization: `Bearer ${this.o.serverToken}` }
        : {}),
      ...extra,
    };
  }

  /**
   * Every row of every METADATA tablet.
   * @throws Error when a tablet is unassigned or its server fails.
   */
  async read(tablets: MetaTablet[]): Promise<MetaRows> {
    const rows: MetaRows = new Map();
    for (const t of tablets) {
      if (t.url === null) {
        throw new Error(`METADATA tablet ${t.id} is unassigned`);
      }
      let start: string | null = t.start;
      while (start !== null) {
        const q = new URLSearchParams({ encoding: "base64", start });
        if (t.end !== null) q.set("end", t.end);
        const res = await fetch(
          `${t.url}/v1/tables/${META_TABLE}/scan?${q}`,
          {
            headers: this.#headers(),
            signal: AbortSignal.timeout(5000),
            ...(this.o.httpClient ? { client: this.o.httpClient } : {}),
          },
        );
        const text = await res.text();
        if (!res.ok) {
          throw new Error(`METADATA scan on ${t.url}: ${res.status} ${text}`);
        }
        let next: string | null | undefined;
        for (const line of text.split("\n")) {
          if (line.trim() === "") continue;
          const m = scanLine.parse(JSON.parse(line));
          if ("error" in m) {
            throw new Error(`METADATA scan on ${t.url}: ${m.error.message}`);
          }
          if ("done" in m) {
            next = m.continueAt;
            break;
          }
          const cell = m.cells.find((c) => c.family === META_FAMILY);
          if (cell) {
            rows.set(
              hex(unb64(m.key)),
              Buffer.from(cell.value, "base64").toString("utf8"),
            );
          }
        }
        if (next === undefined) throw new Error("METADATA scan ended early");
        start = next;
      }
    }
    return rows;
  }

  /**
   * Puts (value) or deletes (null) one row, on the server of the METADATA
   * tablet holding it, fenced by `token`.
   */
  async write(
    tablets: MetaTablet[],
    keyHex: string,
    value: string | null,
    token: number,
  ): Promise<void> {
    const key = Buffer.from(keyHex, "hex");
    const t = tablets.find((x) =>
      Buffer.compare(key, Buffer.from(x.start, "base64")) >= 0 &&
      (x.end === null || Buffer.compare(key, Buffer.from(x.end, "base64")) < 0)
    );
    if (!t?.url) throw new Error("the METADATA tablet of a row is unassigned");
    await callJson(
      `${t.url}/v1/tables/${META_TABLE}/mutate`,
      z.object({ applied: z.number() }),
      {
        body: {
          row: key.toString("base64"),
          encoding: "base64",
          mutations: value === null ? [{ op: "deleteRow" }] : [{
            op: "put",
            family: META_FAMILY,
            qualifier: Buffer.from(META_QUALIFIER).toString("base64"),
            value: Buffer.from(value).toString("base64"),
          }],
        },
        headers: this.#headers({ [META_FENCE_HEADER]: String(token) }),
        ...(this.o.httpClient ? { client: this.o.httpClient } : {}),
        timeoutMs: 5000,
      },
    );
  }
}
