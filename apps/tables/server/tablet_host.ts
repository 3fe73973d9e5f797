/**
 * The tablets one server has open, by table and range, and the fencing of
 * the master's orders: an order carrying a fencing token lower than one
 * already seen comes from a deposed master and is refused.
 */
import { compareBytes } from "@strata/lsm";
import { fromB64, type TableSchemaJson } from "../shared/wire.ts";
import type { TabletRecord } from "../shared/kv_layout.ts";
import type { PortRange, TabletOpener, TabletPort } from "./tablet_port.ts";

/** An open tablet. */
export interface OpenTablet {
  record: TabletRecord;
  range: PortRange;
  schema: TableSchemaJson;
  tablet: TabletPort;
}

/** Why the host refused an order. */
export class HostError extends Error {
  /** `stale_master` (lower token) or `opening` (being opened or closed). */
  readonly code: "stale_master" | "busy";
  /** @param code why; @param message what happened. */
  constructor(code: "stale_master" | "busy", message: string) {
    super(message);
    this.name = "HostError";
    this.code = code;
  }
}

/** Whether `key` falls in `range`. */
export function inRange(key: Uint8Array, range: PortRange): boolean {
  return compareBytes(key, range.start) >= 0 &&
    (range.end === null || compareBytes(key, range.end) < 0);
}

/** The tablets a server serves. */
export class TabletHost {
  #tablets = new Map<string, OpenTablet>();
  /** Tablets being opened or closed (their ids). */
  #busy = new Set<string>();
  #highestToken = 0;

  /** @param open opens a tablet's storage. */
  constructor(private readonly open: TabletOpener) {}

  /** The highest master fencing token seen. */
  get masterToken(): number {
    return this.#highestToken;
  }

  /** Every open tablet. */
  list(): OpenTablet[] {
    return [...this.#tablets.values()];
  }

  /** The open tablet of `table` holding row `key`, if any. */
  find(table: string, key: Uint8Array): OpenTablet | undefined {
    for (const t of this.#tablets.values()) {
      if (t.record.table === table && inRange(key, t.range)) return t;
    }
    return undefined;
  }

  /**
   * Checks an order's fencing token and remembers the highest.
   * @throws HostError `stale_master`.
   */
  fence(token: number): void {
    if (token < this.#highestToken) {
      throw new HostError(
        "stale_master",
        `fencing token ${token} is older than ${this.#highestToken}: the order comes from a deposed master`,
      );
    }
    this.#highestToken = token;
  }

  /**
   * Opens the tablet of `record` (no-op when already open with the same range).
   * @throws HostError; whatever opening the storage throws.
   */
  async openTablet(
    record: TabletRecord,
    schema: TableSchemaJson,
    token: number,
  ): Promise<OpenTablet> {
    this.fence(token);
    const have = this.#tablets.get(record.id);
    if (
      have && have.record.start === record.start &&
      have.record.end === record.end
    ) {
      have.record = record;
      return have;
    }
    if (this.#busy.has(record.id)) {
      throw new HostError(
        "busy",
        `tablet ${record.id} is being opened or closed`,
      );
    }
    this.#busy.add(record.id);
    try {
      if (have) {
        this.#tablets.delete(record.id);
        await have.tablet.close();
      }
      const range: PortRange = {
        start: fromB64(record.start),
        end: record.end === null ? null : fromB64(record.end),
      };
      const tablet = await this.open(record.dir, schema, range);
      const t: OpenTablet = { record, range, schema, tablet };
      this.#tablets.set(record.id, t);
      return t;
    } finally {
      this.#busy.delete(record.id);
    }
  }

  /** Closes tablet `id` (no-op when not open). @throws HostError `stale_master`. */
  async closeTablet(id: string, token: number): Promise<boolean> {
    this.fence(token);
    const t = this.#tablets.get(id);
    if (!t) return false;
    this.#tablets.delete(id);
    await t.tablet.close();
    return true;
  }

  /** Closes every tablet (the session is lost, or the server stops). */
  async closeAll(): Promise<void> {
    const all = [...this.#tablets.values()];
    this.#tablets.clear();
    await Promise.allSettled(all.map((t) => t.tablet.close()));
  }
}
