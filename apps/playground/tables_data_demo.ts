/**
 * The DataLayer demos of the tables panel, through apps/tables' public
 * API only: pub/sub rooms (subscribers as event streams on chosen tablet
 * servers, publishes posted to any server, `POST /v1/rooms/:room/messages`
 * and `GET /v1/rooms/events`) and a time-series table filled through
 * `TimeSeriesClient` and read back with a scan. The models are
 * rooms_view.ts and time_series_view.ts.
 */
import { Buffer } from "node:buffer";
import { authHeaders } from "@strata/edge";
import { TablesClient } from "@strata/tables/client";
import { openRoomStream, type RoomStream } from "@strata/tables/rooms";
import { TimeSeriesClient } from "@strata/tables/time_series";
import { decodePointKey } from "@strata/tables/time_series_keys";
import { z } from "zod";
import type { PlaygroundTablesProcess } from "./playground.ts";
import { PlaygroundError } from "./playground_error.ts";
import {
  messageText,
  type PublishAnswer,
  RoomsBoard,
  type RoomsView,
} from "./rooms_view.ts";
import { CODE_BY_STATUS, fromTablesError } from "./tables_error_map.ts";
import { locateRow } from "./tables_view.ts";
import { type TimeSeriesView, timeSeriesView } from "./time_series_view.ts";

/** The time-series table the demo writes (created on first use). */
export const SERIES_TABLE = "metrics";
/** Its buckets: one second (the smallest a table takes), so a few seconds of writes fill several. */
export const SERIES_BUCKET_MS = 1000;
/** Tablets it is pre-split into (at equal hash ranges). */
export const SERIES_TABLETS = 3;
/** Rows a view reads at most. */
const MAX_SCAN_ROWS = 20_000;

/** The answer to a publish from the dashboard. */
export interface RoomPublishResult extends PublishAnswer {
  room: string;
  /** The playground's number of the message. */
  n: number;
  via: string;
  tookMs: number;
}

const publishAnswer = z.object({
  seq: z.number().int(),
  servers: z.number().int(),
  delivered: z.number().int(),
});

/** Options of {@link TablesDataDemo}. */
export interface TablesDataDemoOptions {
  /** The tables masters' URLs. */
  masters: string[];
  /** Every tablet server (id and URL, also while killed). */
  servers: () => readonly PlaygroundTablesProcess[];
  /** Whether a tablet server's process runs. */
  running: (id: string) => boolean;
  /** The cell's admin token. */
  token: string;
  /** Trusts the cell's certificate (TLS). */
  httpClient?: Deno.HttpClient;
}

/** See the module doc. Call {@link close} at the end (it closes the streams). */
export class TablesDataDemo {
  readonly #o: TablesDataDemoOptions;
  readonly #board = new RoomsBoard();
  readonly #streams = new Map<number, RoomStream>();
  readonly #tables: TablesClient;
  readonly #series: TimeSeriesClient;
  #tableReady: Promise<void> | undefined;

  constructor(o: TablesDataDemoOptions) {
    this.#o = o;
    this.#tables = new TablesClient(o.masters, {
      token: o.token,
      timeoutMs: 5000,
      retryForMs: 15_000,
      ...(o.httpClient ? { httpClient: o.httpClient } : {}),
    });
    this.#series = new TimeSeriesClient(this.#tables);
  }

  #server(id: string): PlaygroundTablesProcess {
    const s = this.#o.servers().find((x) => x.id === id);
    if (!s) {
      throw new PlaygroundError(
        "not_found",
        `there is no tablet server ${id}; there are ${
          this.#o.servers().map((x) => x.id).join(", ")
        }`,
      );
    }
    if (!this.#o.running(id)) {
      throw new PlaygroundError("conflict", `tablet server ${id} is killed`);
    }
    return s;
  }

  // ---- rooms

  /**
   * Opens an event stream subscribed to `room` on tablet server `server`;
   * resolves once the server says the room's home counts it in.
   */
  async subscribe(
    room: string,
    server: string,
  ): Promise<{ id: number; room: string; server: string }> {
    const s = this.#server(server);
    if (this.#board.full) {
      throw new PlaygroundError(
        "conflict",
        "the playground holds 12 subscribers at most",
      );
    }
    const id = this.#board.addSubscriber(room, server);
    const stream = openRoomStream({
      url: s.url,
      token: this.#o.token,
      rooms: [room],
      ...(this.#o.httpClient ? { httpClient: this.#o.httpClient } : {}),
      onMessage: (e) => this.#board.delivered(id, e.data, performance.now()),
    });
    this.#streams.set(id, stream);
    stream.ended.then(() => {
      this.#board.ended(id, "the stream ended (server killed?)");
      this.#streams.delete(id);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("not subscribed within 15 s")),
        15_000,
      );
    });
    try {
      await Promise.race([stream.subscribed, timeout]);
    } catch (e) {
      stream.close();
      this.#board.ended(id, e instanceof Error ? e.message : String(e));
      throw new PlaygroundError(
        "unavailable",
        `${server} did not subscribe to ${room}: ${
          e instanceof Error ? e.message : e
        }`,
      );
    } finally {
      clearTimeout(timer);
    }
    this.#board.subscribed(id);
    return { id, room, server };
  }

  /** Publishes `data` to `room` through tablet server `via` (default: the first running one). */
  async publish(
    room: string,
    data: string,
    via?: string,
  ): Promise<RoomPublishResult> {
    const id = via ??
      this.#o.servers().find((s) => this.#o.running(s.id))?.id;
    if (id === undefined) {
      throw new PlaygroundError("unavailable", "every tablet server is down");
    }
    const s = this.#server(id);
    const t0 = performance.now();
    const n = this.#board.publishing(room, data, id, t0);
    try {
      const res = await fetch(
        `${s.url}/v1/rooms/${encodeURIComponent(room)}/messages`,
        {
          method: "POST",
          headers: {
            ...authHeaders(this.#o.token),
            "content-type": "application/json",
          },
          body: JSON.stringify({ data: messageText(n, data) }),
          signal: AbortSignal.timeout(25_000),
          ...(this.#o.httpClient ? { client: this.#o.httpClient } : {}),
        },
      );
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        throw new PlaygroundError(
          CODE_BY_STATUS[res.status] ?? "unavailable",
          body?.error?.message ?? `${id} answered HTTP ${res.status}`,
        );
      }
      const answer = publishAnswer.parse(body);
      this.#board.published(n, answer);
      return {
        room,
        n,
        via: id,
        ...answer,
        tookMs: performance.now() - t0,
      };
    } catch (e) {
      this.#board.failed(n);
      if (e instanceof PlaygroundError) throw e;
      throw new PlaygroundError(
        "unavailable",
        `publishing through ${id} failed: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  }

  /** The rooms panel. */
  rooms(): RoomsView {
    return this.#board.view(this.#o.servers().map((s) => s.id));
  }

  // ---- time series

  /** Creates the demo table unless it exists (once per run). */
  #ensureTable(): Promise<void> {
    this.#tableReady ??= (async () => {
      const tables = await this.#tables.listTables();
      if (tables.some((t) => t.name === SERIES_TABLE)) return;
      await this.#series.create(SERIES_TABLE, {
        bucketMs: SERIES_BUCKET_MS,
        tablets: SERIES_TABLETS,
      });
    })().catch((e) => {
      this.#tableReady = undefined;
      throw e;
    });
    return this.#tableReady;
  }

  /**
   * Writes `points` points of `series`, their timestamps spread evenly
   * over the last `spanMs` ms (so they fall in several one-second buckets).
   */
  async writeSeries(
    series: string,
    points: number,
    spanMs: number,
  ): Promise<
    { table: string; series: string; written: number; tookMs: number }
  > {
    try {
      await this.#ensureTable();
      const now = Date.now();
      const step = spanMs / points;
      const t0 = performance.now();
      await this.#series.write(
        SERIES_TABLE,
        series,
        Array.from({ length: points }, (_, i) => ({
          t: Math.floor(now - spanMs + i * step),
          value: String(i),
        })),
      );
      return {
        table: SERIES_TABLE,
        series,
        written: points,
        tookMs: performance.now() - t0,
      };
    } catch (e) {
      throw fromTablesError(e);
    }
  }

  /** The series' points by bucket and tablet, read back with one scan of the table. */
  async seriesView(series: string): Promise<TimeSeriesView> {
    try {
      await this.#ensureTable();
      const spec = await this.#series.spec(SERIES_TABLE);
      const tablets = (await this.#tables.tablets(SERIES_TABLE)).map((t) => ({
        id: t.id,
        table: t.table,
        start: Buffer.from(t.start).toString("base64"),
        end: t.end === null ? null : Buffer.from(t.end).toString("base64"),
        server: t.server,
        url: t.url,
      }));
      const points = [];
      for await (
        const row of this.#tables.scan(SERIES_TABLE, { limit: MAX_SCAN_ROWS })
      ) {
        const p = decodePointKey(spec, row.key);
        if (p.series !== series) continue;
        points.push({
          t: p.t,
          tablet: locateRow(tablets, SERIES_TABLE, row.key)?.id ?? null,
        });
      }
      return timeSeriesView({
        table: SERIES_TABLE,
        series,
        bucketMs: spec.bucketMs,
        tablets,
        points,
      });
    } catch (e) {
      throw fromTablesError(e);
    }
  }

  /** Closes every room stream. */
  close(): void {
    for (const s of this.#streams.values()) s.close();
    this.#streams.clear();
  }
}
