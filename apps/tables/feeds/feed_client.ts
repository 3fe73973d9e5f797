/**
 * Durable feeds on tables (Kafka's basics): a feed is a table of appended
 * messages split into partitions by a hash of the message key, plus a row
 * per consumer group holding its committed offsets. See feed_layout.ts for
 * the rows and README "Durable feeds" for the guarantees.
 *
 * Offsets. An append claims offset `n` of its partition by creating the
 * row `m/<p>/<n>` with a check-and-mutate on that row ("`m:id` absent →
 * put key, value, id"): the tablet applies it atomically and durably, so of
 * any producers racing for `n` exactly one wins, and no offset is ever
 * taken twice. A producer tries `n` only after seeing `n − 1` exist (its
 * own last append, a lost race on `n − 1`, or a scan of the tail), so the
 * rows of a partition are contiguous from its low watermark to its tail:
 * a reader never meets a hole it must wait for. Retention raises the low
 * watermark (check-and-mutate on `h:low`) before deleting rows below it; a
 * producer whose claim landed below the watermark (it was slow and the
 * rows around it were trimmed meanwhile) sees it when it re-reads `h:low`
 * after the claim, does not acknowledge that offset and appends again.
 */
import type { z } from "zod";
import { TablesClientError } from "../client/tables_client.ts";
import { FeedError } from "./feed_error.ts";
import type { FeedStore, Row } from "./feed_store.ts";
import {
  CONFIG_ROW,
  FEED_FAMILIES,
  type FeedConfig,
  feedConfigSchema,
  feedNameSchema,
  feedSplits,
  feedTable,
  groupNameSchema,
  groupRow,
  headRow,
  MAX_OFFSET,
  messageRow,
  offsetBytes,
  parseMessageRow,
  parseOffset,
  partitionEnd,
  partitionOf,
  partitionStart,
} from "./feed_layout.ts";
import { type RetainedMessage, retentionLow } from "./retention.ts";

export { FeedError };
export type { FeedConfig };

/** A message read from a feed. */
export interface FeedMessage {
  partition: number;
  offset: number;
  key: Uint8Array;
  value: Uint8Array;
  /** When it was appended (the tablet's timestamp), ms. */
  timestamp: number;
}

/** What {@link FeedClient.read} returns. */
export interface ReadResult {
  /** Contiguous messages from the offset asked for, at most `max`. */
  messages: FeedMessage[];
  /** The offset to read next. */
  next: number;
  /** The partition's low watermark when read. */
  low: number;
}

/** One partition's part of a {@link FeedClient.fetch}. */
export interface FetchedBatch extends ReadResult {
  partition: number;
  /** Where it read from (the group's committed offset, or the low watermark). */
  from: number;
}

/** Options of {@link FeedClient}. */
export interface FeedClientOptions {
  /** Names this producer's appends (default a random UUID). */
  producerId?: string;
  /** Run retention on a partition after every this many of its offsets (default 256; 0 = never). */
  trimEvery?: number;
  /** Give up an append after this long, ms (default 60 s). */
  appendTimeoutMs?: number;
}

type Bytes = string | Uint8Array;
const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (b: Bytes) => (typeof b === "string" ? enc.encode(b) : b);
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
const cell = (row: Row, family: string, qualifier: string) =>
  row.cells.find((c) =>
    c.family === family && dec.decode(c.qualifier) === qualifier
  );
/** A lost race is followed by the next offset; after this many in a row, the tail is looked up. */
const RACES_BEFORE_RESCAN = 8;
const TAIL_SCAN_ROWS = 1000;
const HINT_EVERY = 64;
/** Tries of a check-and-mutate loop (settings, commits) before giving up. */
const MAX_ATTEMPTS = 20;

function check<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    throw new FeedError(
      "bad_request",
      `${what}: ${r.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return r.data;
}

/** Feeds on a tables cell (through a {@link FeedStore}, e.g. a `TablesClient`). */
export class FeedClient {
  readonly #store: FeedStore;
  readonly #producer: string;
  readonly #trimEvery: number;
  readonly #appendTimeoutMs: number;
  #seq = 0;
  #configs = new Map<string, FeedConfig>();
  /** `feed/partition` → the offset this producer tries next. */
  #next = new Map<string, number>();
  /** `feed/partition` → the last append queued there by this client. */
  #lanes = new Map<string, Promise<unknown>>();

  constructor(store: FeedStore, options: FeedClientOptions = {}) {
    this.#store = store;
    this.#producer = options.producerId ?? crypto.randomUUID();
    this.#trimEvery = options.trimEvery ?? 256;
    this.#appendTimeoutMs = options.appendTimeoutMs ?? 60_000;
  }

  /**
   * Creates a feed: its table, pre-split per partition, and its settings.
   * Creating it again with the same settings is a no-op.
   * @throws FeedError `exists` when it exists with other settings.
   */
  async createFeed(name: string, config: FeedConfig): Promise<FeedConfig> {
    check(feedNameSchema, name, "feed name");
    const cfg = check(feedConfigSchema, config, "feed settings");
    const table = feedTable(name);
    try {
      await this.#store.createTable(
        table,
        FEED_FAMILIES,
        feedSplits(cfg.partitions),
      );
    } catch (e) {
      // Exists: a creation that stopped before writing the settings, or a feed.
      if (!(e instanceof TablesClientError && e.code === "conflict")) throw e;
    }
    const json = enc.encode(JSON.stringify(cfg));
    for (let attempt = 1;; attempt++) {
      if (attempt > MAX_ATTEMPTS) {
        throw new FeedError(
          "unavailable",
          `feed ${name}: settings not written`,
        );
      }
      const ok = await this.#store.checkAndMutate(table, CONFIG_ROW, {
        family: "c",
        qualifier: "config",
        equals: null,
      }, [{ op: "put", family: "c", qualifier: "config", value: json }])
        .catch((e) => {
          if (e instanceof TablesClientError && e.code === "unknown_outcome") {
            return false; // read it back below
          }
          throw e;
        });
      if (ok) break;
      const got = await this.config(name, true).catch(() => undefined);
      if (got === undefined) continue;
      if (JSON.stringify(got) !== JSON.stringify(cfg)) {
        throw new FeedError(
          "exists",
          `feed ${name} exists with other settings: ${JSON.stringify(got)}`,
        );
      }
      break;
    }
    this.#configs.set(name, cfg);
    return cfg;
  }

  /** A feed's settings (cached). @throws FeedError `not_found`. */
  async config(name: string, refresh = false): Promise<FeedConfig> {
    const cached = refresh ? undefined : this.#configs.get(name);
    if (cached) return cached;
    check(feedNameSchema, name, "feed name");
    let row: Row;
    try {
      row = await this.#store.getRow(feedTable(name), CONFIG_ROW);
    } catch (e) {
      if (e instanceof TablesClientError && e.code === "not_found") {
        throw new FeedError("not_found", `no feed ${name}`);
      }
      throw e;
    }
    const c = cell(row, "c", "config");
    if (c === undefined) throw new FeedError("not_found", `no feed ${name}`);
    let cfg: FeedConfig;
    try {
      cfg = feedConfigSchema.parse(JSON.parse(dec.decode(c.value)));
    } catch {
      throw new FeedError(
        "not_found",
        `table ${feedTable(name)} holds no readable feed settings`,
      );
    }
    this.#configs.set(name, cfg);
    return cfg;
  }

  /** The partition a key's messages go to. */
  async partitionFor(name: string, key: Bytes): Promise<number> {
    return partitionOf(bytes(key), (await this.config(name)).partitions);
  }

  /**
   * Appends a message to the partition of its key. Resolves once it is
   * durable (the tablet's commit log) at the offset returned. Appends of
   * one client to one partition are made one after another, in call
   * order (so one key's messages keep their order).
   * @throws FeedError `unavailable` when no offset was acknowledged in
   *   `appendTimeoutMs` (the message may then be stored once, unacknowledged).
   */
  async append(
    name: string,
    key: Bytes,
    value: Bytes,
  ): Promise<{ partition: number; offset: number }> {
    const cfg = await this.config(name);
    const k = bytes(key);
    const v = bytes(value);
    const p = partitionOf(k, cfg.partitions);
    const slot = `${name}/${p}`;
    // One append at a time per partition from this client: its appends
    // land in call order and do not race each other for offsets.
    const before = this.#lanes.get(slot);
    const mine = (before ?? Promise.resolve()).catch(() => {}).then(() =>
      this.#appendInTurn(name, cfg, k, v, p)
    );
    this.#lanes.set(slot, mine);
    try {
      return await mine;
    } finally {
      if (this.#lanes.get(slot) === mine) this.#lanes.delete(slot);
    }
  }

  async #appendInTurn(
    name: string,
    cfg: FeedConfig,
    k: Uint8Array,
    v: Uint8Array,
    p: number,
  ): Promise<{ partition: number; offset: number }> {
    const table = feedTable(name);
    const slot = `${name}/${p}`;
    const id = enc.encode(`${this.#producer}:${this.#seq++}`);
    const giveUpAt = performance.now() + this.#appendTimeoutMs;
    let n = this.#next.get(slot) ?? await this.#tail(table, p);
    let races = 0;
    // Offsets this append sent a claim for without learning the outcome.
    const unsure = new Set<number>();
    const retains = cfg.retentionMs !== undefined ||
      cfg.retentionBytes !== undefined;
    while (performance.now() < giveUpAt) {
      if (n > MAX_OFFSET) throw new FeedError("bad_request", "offsets ran out");
      let won: boolean | undefined;
      try {
        won = await this.#store.checkAndMutate(table, messageRow(p, n), {
          family: "m",
          qualifier: "id",
          equals: null,
        }, [
          { op: "put", family: "m", qualifier: "k", value: k },
          { op: "put", family: "m", qualifier: "v", value: v },
          { op: "put", family: "m", qualifier: "id", value: id },
        ]);
      } catch (e) {
        if (!(e instanceof TablesClientError && e.code === "unknown_outcome")) {
          throw e;
        }
        unsure.add(n);
      }
      if (won !== true) {
        // Lost the race, or do not know: whose is offset n? (Surely not
        // ours when no claim of ours on n had an unknown outcome.)
        const holder = won === false && !unsure.has(n) ? undefined : cell(
          await this.#store.getRow(table, messageRow(p, n), {
            columns: ["m:id"],
          }),
          "m",
          "id",
        )?.value;
        if (won === undefined && holder === undefined) continue; // not applied: claim n again
        if (holder === undefined || !sameBytes(holder, id)) {
          n = ++races >= RACES_BEFORE_RESCAN
            ? (races = 0, await this.#tail(table, p))
            : n + 1;
          continue;
        }
      }
      // Ours. Acknowledged only if retention had not passed n meanwhile
      // (a feed without retention never raises its watermark).
      const low = retains ? await this.#low(table, p) : 0;
      if (n < low) {
        n = await this.#tail(table, p);
        continue;
      }
      this.#next.set(slot, n + 1);
      await this.#afterAppend(name, table, cfg, p, n);
      return { partition: p, offset: n };
    }
    throw new FeedError(
      "unavailable",
      `append to ${name} partition ${p}: no offset acknowledged in ${this.#appendTimeoutMs} ms`,
    );
  }

  /** Hint and retention upkeep, best effort (the append is already durable). */
  async #afterAppend(
    name: string,
    table: string,
    cfg: FeedConfig,
    p: number,
    n: number,
  ): Promise<void> {
    try {
      if ((n + 1) % HINT_EVERY === 0) {
        await this.#store.mutateRow(table, headRow(p), [{
          op: "put",
          family: "h",
          qualifier: "hint",
          value: offsetBytes(n + 1),
        }]);
      }
      const retains = cfg.retentionMs !== undefined ||
        cfg.retentionBytes !== undefined;
      if (retains && this.#trimEvery > 0 && (n + 1) % this.#trimEvery === 0) {
        await this.trimPartition(name, p);
      }
    } catch { /* upkeep; the next append or trim does it */ }
  }

  /** The partition's low watermark (0 before any retention). */
  async #low(table: string, p: number): Promise<number> {
    const row = await this.#store.getRow(table, headRow(p), {
      columns: ["h:low"],
    });
    return parseOffset(cell(row, "h", "low")?.value) ?? 0;
  }

  /** The partition's next free offset, found by scanning from the hint. */
  async #tail(table: string, p: number): Promise<number> {
    const head = await this.#store.getRow(table, headRow(p));
    const low = parseOffset(cell(head, "h", "low")?.value) ?? 0;
    let tail = Math.max(low, parseOffset(cell(head, "h", "hint")?.value) ?? 0);
    for (;;) {
      let rows = 0;
      for await (
        const r of this.#store.scan(table, {
          start: messageRow(p, tail),
          end: partitionEnd(p),
          columns: ["m:id"],
          limit: TAIL_SCAN_ROWS,
        })
      ) {
        const m = parseMessageRow(r.key);
        if (m) tail = Math.max(tail, m.offset + 1);
        rows++;
      }
      if (rows < TAIL_SCAN_ROWS) return tail;
    }
  }

  /** The partition's low watermark: offsets below it were deleted by retention. */
  async lowWatermark(name: string, partition: number): Promise<number> {
    await this.#partition(name, partition);
    return await this.#low(feedTable(name), partition);
  }

  /** The partition's next offset (one past the last message). */
  async tail(name: string, partition: number): Promise<number> {
    await this.#partition(name, partition);
    return await this.#tail(feedTable(name), partition);
  }

  async #partition(name: string, partition: number): Promise<FeedConfig> {
    const cfg = await this.config(name);
    if (
      !Number.isSafeInteger(partition) || partition < 0 ||
      partition >= cfg.partitions
    ) {
      throw new FeedError(
        "bad_request",
        `feed ${name} has partitions 0..${cfg.partitions - 1}`,
      );
    }
    return cfg;
  }

  /**
   * Up to `max` messages of a partition from offset `from` on, in offset
   * order with no gaps (fewer at the tail).
   * @throws FeedError `below_low_watermark` (with `low`) when `from` was
   *   deleted by retention.
   */
  async read(
    name: string,
    partition: number,
    from: number,
    max = 100,
  ): Promise<ReadResult> {
    await this.#partition(name, partition);
    if (!Number.isSafeInteger(from) || from < 0 || from > MAX_OFFSET) {
      throw new FeedError("bad_request", "an offset is a non-negative integer");
    }
    if (!Number.isSafeInteger(max) || max < 1 || max > 10_000) {
      throw new FeedError("bad_request", "max is 1..10000");
    }
    const table = feedTable(name);
    const messages: FeedMessage[] = [];
    for await (
      const r of this.#store.scan(table, {
        start: messageRow(partition, from),
        end: partitionEnd(partition),
        limit: max,
      })
    ) {
      const m = parseMessageRow(r.key);
      // Rows from a live offset on are contiguous; stop at anything else.
      if (!m || m.offset !== from + messages.length) break;
      const k = cell(r, "m", "k");
      const v = cell(r, "m", "v");
      if (!k || !v) break;
      messages.push({
        partition,
        offset: m.offset,
        key: k.value,
        value: v.value,
        timestamp: v.timestamp,
      });
    }
    // Read after the scan: if retention had deleted any row from `from`
    // on before the scan, it had raised the watermark past `from` first.
    const low = await this.#low(table, partition);
    if (from < low) {
      throw new FeedError(
        "below_low_watermark",
        `feed ${name} partition ${partition}: offset ${from} was deleted by retention; the low watermark is ${low}`,
        low,
      );
    }
    return { messages, next: from + messages.length, low };
  }

  /** A consumer group's committed offsets (the next offset to consume), by partition. */
  async committed(name: string, group: string): Promise<Map<number, number>> {
    await this.config(name);
    check(groupNameSchema, group, "group name");
    const row = await this.#store.getRow(feedTable(name), groupRow(group));
    const out = new Map<number, number>();
    for (const c of row.cells) {
      const p = Number(dec.decode(c.qualifier));
      const o = parseOffset(c.value);
      if (c.family === "g" && Number.isSafeInteger(p) && o !== undefined) {
        out.set(p, o);
      }
    }
    return out;
  }

  /**
   * Reads, for each partition (default all), up to `max` messages from
   * the group's committed offset (from the low watermark when it has
   * none). Commit after processing for at-least-once delivery.
   * @throws FeedError `below_low_watermark` when a committed offset was
   *   deleted by retention (unless `fromLowWhenTrimmed`: then it reads from
   *   the low watermark, and `from` shows where).
   */
  async fetch(
    name: string,
    group: string,
    options: {
      max?: number;
      partitions?: number[];
      fromLowWhenTrimmed?: boolean;
    } = {},
  ): Promise<FetchedBatch[]> {
    const cfg = await this.config(name);
    const committed = await this.committed(name, group);
    const parts = options.partitions ??
      Array.from({ length: cfg.partitions }, (_, i) => i);
    const out: FetchedBatch[] = [];
    for (const p of parts) {
      let from = committed.get(p) ??
        await this.lowWatermark(name, p);
      let r: ReadResult;
      try {
        r = await this.read(name, p, from, options.max);
      } catch (e) {
        if (
          !(e instanceof FeedError && e.code === "below_low_watermark" &&
            options.fromLowWhenTrimmed)
        ) throw e;
        from = e.low!;
        r = await this.read(name, p, from, options.max);
      }
      out.push({ partition: p, from, ...r });
    }
    return out;
  }

  /**
   * Commits `offset` (the next offset to consume) for a group's partition,
   * only forward: a check-and-mutate on the group's cell, so a stale or
   * slow consumer can neither move it back nor overwrite a newer commit.
   * @returns the committed offset now, and whether this call moved it.
   */
  async commit(
    name: string,
    group: string,
    partition: number,
    offset: number,
  ): Promise<{ committed: number; moved: boolean }> {
    await this.#partition(name, partition);
    check(groupNameSchema, group, "group name");
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > MAX_OFFSET) {
      throw new FeedError("bad_request", "an offset is a non-negative integer");
    }
    const table = feedTable(name);
    const qualifier = String(partition);
    for (let attempt = 1;; attempt++) {
      if (attempt > MAX_ATTEMPTS) {
        throw new FeedError(
          "unavailable",
          `commit of ${name}/${group}/${partition}: no outcome after ${MAX_ATTEMPTS} tries`,
        );
      }
      const row = await this.#store.getRow(table, groupRow(group), {
        columns: [`g:${qualifier}`],
      });
      const curBytes = cell(row, "g", qualifier)?.value;
      const cur = parseOffset(curBytes);
      if (cur !== undefined && cur >= offset) {
        return { committed: cur, moved: false };
      }
      try {
        const ok = await this.#store.checkAndMutate(table, groupRow(group), {
          family: "g",
          qualifier,
          equals: curBytes ?? null,
        }, [{ op: "put", family: "g", qualifier, value: offsetBytes(offset) }]);
        if (ok) return { committed: offset, moved: true };
      } catch (e) {
        if (!(e instanceof TablesClientError && e.code === "unknown_outcome")) {
          throw e;
        }
        // Read it back and decide again.
      }
    }
  }

  /**
   * Enforces retention on one partition: raises its low watermark past
   * messages older than `retentionMs` or beyond `retentionBytes`, then
   * deletes the rows below it. @returns the low watermark.
   */
  async trimPartition(
    name: string,
    partition: number,
    now = Date.now(),
  ): Promise<number> {
    const cfg = await this.#partition(name, partition);
    const table = feedTable(name);
    const head = await this.#store.getRow(table, headRow(partition), {
      columns: ["h:low"],
    });
    const lowBytes = cell(head, "h", "low")?.value;
    const low = parseOffset(lowBytes) ?? 0;
    let target = low;
    if (cfg.retentionMs !== undefined || cfg.retentionBytes !== undefined) {
      const seen: RetainedMessage[] = [];
      for await (
        const r of this.#store.scan(table, {
          start: messageRow(partition, low),
          end: partitionEnd(partition),
          columns: ["m:k", "m:v"],
        })
      ) {
        const m = parseMessageRow(r.key);
        const k = cell(r, "m", "k");
        const v = cell(r, "m", "v");
        if (!m || !k || !v || m.offset !== low + seen.length) break;
        seen.push({
          offset: m.offset,
          timestamp: v.timestamp,
          bytes: k.value.length + v.value.length,
        });
      }
      target = retentionLow(seen, low, now, cfg);
    }
    if (target > low) {
      const ok = await this.#store.checkAndMutate(table, headRow(partition), {
        family: "h",
        qualifier: "low",
        equals: lowBytes ?? null,
      }, [{
        op: "put",
        family: "h",
        qualifier: "low",
        value: offsetBytes(target),
      }]).catch((e) => {
        if (e instanceof TablesClientError && e.code === "unknown_outcome") {
          return false;
        }
        throw e;
      });
      // Another trim won, or the outcome is unknown: go by what is stored.
      if (!ok) target = await this.#low(table, partition);
    }
    // Deletes below the watermark, also what an earlier trim left behind.
    const doomed: string[] = [];
    for await (
      const r of this.#store.scan(table, {
        start: partitionStart(partition),
        end: messageRow(partition, target),
        columns: ["m:id"],
      })
    ) doomed.push(dec.decode(r.key));
    for (let i = 0; i < doomed.length; i += 16) {
      await Promise.all(
        doomed.slice(i, i + 16).map((row) => this.#deleteRow(table, row)),
      );
    }
    return target;
  }

  /** Deletes a row, re-sent after an unknown outcome (deleting twice is harmless). */
  async #deleteRow(table: string, row: string): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#store.mutateRow(table, row, [{ op: "deleteRow" }]);
      } catch (e) {
        const unknown = e instanceof TablesClientError &&
          e.code === "unknown_outcome";
        if (!unknown || attempt >= 5) throw e;
      }
    }
  }

  /** {@link trimPartition} on every partition. */
  async trim(name: string, now = Date.now()): Promise<number[]> {
    const cfg = await this.config(name);
    const lows: number[] = [];
    for (let p = 0; p < cfg.partitions; p++) {
      lows.push(await this.trimPartition(name, p, now));
    }
    return lows;
  }
}
