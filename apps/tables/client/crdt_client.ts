/**
 * `crdt_client.ts`: the client of CRDT ranges. It asks a master where a
 * range's replicas are (cached) and sends each operation to one of them:
 * the one that answered last, else the home (the declaration's first),
 * else the next. A replica that refuses the connection is skipped at once
 * (nothing was sent). Before a write goes to a replica other than the one
 * that answered last, a cheap read (`GET /v1/crdt`) checks that it answers:
 * one that does not (paused, cut off) is skipped with nothing sent, and
 * tried last for 10 s. A write whose answer does not come is not re-sent
 * elsewhere: it may still be applied when that server resumes, and a
 * re-sent `incr` would count twice, so it fails with `unknown_outcome`
 * (and that replica is tried last for 10 s).
 * Reads go on to the next replica on any failure. Each replica answers
 * from its own state: a read may not show a write made at another replica
 * until anti-entropy brings it (usually within a second).
 */
import { TablesClientError } from "./tables_client_error.ts";
import type { TablesClient } from "./tables_client.ts";

/** A key's value at one replica. */
export interface CrdtKeyValue {
  key: string;
  /** The replica (server id) that answered. */
  replica: string;
  counter?: number;
  set?: string[];
  register?: {
    value: string;
    ts: { wall: number; logical: number; node: string };
  };
}

/** A range's declaration: its replicas, the home first. */
export interface CrdtRangeInfo {
  name: string;
  replicas: { id: string; url: string | null }[];
}

/** Which replica to use for one call. */
export interface CrdtCallOptions {
  /** Only this replica (server id): no failover. */
  replica?: string;
}

/** Options of {@link CrdtClient}. */
export interface CrdtClientOptions {
  /** Per-request deadline at a replica, ms (default 2000). */
  timeoutMs?: number;
  /** How long a replica that did not answer is tried last, ms (default 10 000). */
  suspectMs?: number;
}

const SENT = new Set(["timeout", "lost"]);

/** Client of the CRDT ranges of a tables cell. */
export class CrdtClient {
  #ranges = new Map<string, CrdtRangeInfo>();
  /** Range → the replica that answered last. */
  #sticky = new Map<string, string>();
  /** Server id → until when (monotonic ms) it is tried last. */
  #suspect = new Map<string, number>();
  readonly #timeoutMs: number;
  readonly #suspectMs: number;

  /** @param tables the cell's client (masters, token, TLS). */
  constructor(
    private readonly tables: TablesClient,
    o: CrdtClientOptions = {},
  ) {
    this.#timeoutMs = o.timeoutMs ?? 2000;
    this.#suspectMs = o.suspectMs ?? 10_000;
  }

  /** Declares a range held by `replicas` servers (admin). */
  async createRange(name: string, replicas = 3): Promise<CrdtRangeInfo> {
    const r = await this.tables.masterCall("POST", "/v1/crdt", {
      name,
      replicas,
    }) as unknown as CrdtRangeInfo;
    this.#ranges.set(name, r);
    return r;
  }

  /** Deletes a range (admin): every replica drops its copy. */
  async deleteRange(name: string): Promise<void> {
    await this.tables.masterCall("DELETE", `/v1/crdt/${name}`);
    this.#ranges.delete(name);
  }

  /** Every range and its replicas. */
  async ranges(): Promise<CrdtRangeInfo[]> {
    const r = await this.tables.masterCall("GET", "/v1/crdt");
    return r.ranges as CrdtRangeInfo[];
  }

  /** A range's replicas (from the cache unless `refresh`). */
  async range(name: string, refresh = false): Promise<CrdtRangeInfo> {
    const have = this.#ranges.get(name);
    if (have && !refresh) return have;
    const r = await this.tables.masterCall(
      "GET",
      `/v1/crdt/${name}`,
    ) as unknown as CrdtRangeInfo;
    // A replica whose server is not registered now (paused, restarting)
    // keeps the URL known before: it may answer again.
    for (const x of r.replicas) {
      x.url ??= have?.replicas.find((y) => y.id === x.id)?.url ?? null;
    }
    this.#ranges.set(name, r);
    return r;
  }

  /** Adds `by` (default 1; negative: subtracts) to the key's counter. */
  incr(range: string, key: string, by = 1, o: CrdtCallOptions = {}) {
    return this.#update(range, { key, op: "incr", by }, o);
  }

  /** Adds elements to the key's set. */
  add(range: string, key: string, elements: string[], o: CrdtCallOptions = {}) {
    return this.#update(range, { key, op: "add", elements }, o);
  }

  /** Removes elements (the adds this replica has seen) from the key's set. */
  remove(
    range: string,
    key: string,
    elements: string[],
    o: CrdtCallOptions = {},
  ) {
    return this.#update(range, { key, op: "remove", elements }, o);
  }

  /** Writes the key's last-writer-wins register. */
  set(range: string, key: string, value: string, o: CrdtCallOptions = {}) {
    return this.#update(range, { key, op: "set", value }, o);
  }

  /** The key's value at one replica. */
  get(range: string, key: string, o: CrdtCallOptions = {}) {
    return this.#call(
      range,
      "GET",
      `/get?key=${encodeURIComponent(key)}`,
      undefined,
      o,
    ) as Promise<unknown> as Promise<CrdtKeyValue>;
  }

  /** Keys (with `prefix`, after `after`) and their values at one replica. */
  async scan(
    range: string,
    q: { prefix?: string; after?: string; limit?: number } = {},
    o: CrdtCallOptions = {},
  ): Promise<{ keys: CrdtKeyValue[]; more: boolean; replica: string }> {
    const p = new URLSearchParams();
    if (q.prefix) p.set("prefix", q.prefix);
    if (q.after !== undefined) p.set("after", q.after);
    if (q.limit) p.set("limit", String(q.limit));
    const r = await this.#call(range, "GET", `/scan?${p}`, undefined, o);
    return r as unknown as {
      keys: CrdtKeyValue[];
      more: boolean;
      replica: string;
    };
  }

  /** A digest of a replica's whole state (equal digests: equal states). */
  async digest(
    range: string,
    o: CrdtCallOptions = {},
  ): Promise<{ keys: number; digest: string; replica: string }> {
    const r = await this.#call(range, "GET", "/digest", undefined, o);
    return r as unknown as { keys: number; digest: string; replica: string };
  }

  #update(range: string, body: unknown, o: CrdtCallOptions) {
    return this.#call(range, "POST", "/update", body, o) as Promise<
      unknown
    > as Promise<CrdtKeyValue>;
  }

  /** The replicas to try, in order. */
  #order(info: CrdtRangeInfo, o: CrdtCallOptions) {
    if (o.replica) {
      const r = info.replicas.find((x) => x.id === o.replica);
      if (!r) {
        throw new TablesClientError(
          "bad_request",
          `${o.replica} holds no replica of ${info.name}`,
        );
      }
      return [r];
    }
    const now = performance.now();
    const sticky = this.#sticky.get(info.name);
    const rank = (id: string) =>
      (this.#suspect.get(id) ?? 0) > now ? 2 : id === sticky ? 0 : 1;
    // Stable sort: the home first among equals.
    return [...info.replicas].sort((a, b) => rank(a.id) - rank(b.id));
  }

  async #call(
    range: string,
    method: string,
    path: string,
    body: unknown,
    o: CrdtCallOptions,
  ): Promise<Record<string, unknown>> {
    let info = await this.range(range);
    let last: unknown;
    for (let round = 0; round < 2; round++) {
      for (const r of this.#order(info, o)) {
        if (!r.url) continue;
        const probe = method !== "GET" && !o.replica &&
          this.#sticky.get(range) !== r.id;
        try {
          // Nothing is sent if this fails: the next replica may take it.
          if (probe) {
            await this.tables.serverCall(
              `${r.url}/v1/crdt`,
              "GET",
              undefined,
              this.#timeoutMs,
            ).catch((e) => {
              throw e instanceof TablesClientError && SENT.has(e.code)
                ? new TablesClientError("unreachable", e.message)
                : e;
            });
          }
          const out = await this.tables.serverCall(
            `${r.url}/v1/crdt/${range}${path}`,
            method,
            body,
            this.#timeoutMs,
          );
          this.#sticky.set(range, r.id);
          this.#suspect.delete(r.id);
          return out;
        } catch (e) {
          if (!(e instanceof TablesClientError)) throw e;
          last = e;
          if (probe && e.code === "unreachable") {
            this.#suspect.set(r.id, performance.now() + this.#suspectMs);
          }
          if (SENT.has(e.code)) {
            this.#suspect.set(r.id, performance.now() + this.#suspectMs);
            if (method !== "GET") {
              throw new TablesClientError(
                "unknown_outcome",
                `replica ${r.id} did not answer (${e.message}); the write may still be applied there`,
              );
            }
          } else if (
            !(e.code === "unreachable" || e.code === "not_serving" ||
              e.code === "unavailable")
          ) {
            throw e; // bad input, auth, no such range: the same anywhere
          }
        }
      }
      // Every replica failed: the declaration may have changed.
      info = await this.range(range, true);
    }
    throw last ?? new TablesClientError(
      "unavailable",
      `no replica of ${range} has a known address`,
    );
  }
}
