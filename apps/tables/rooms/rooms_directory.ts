/**
 * `rooms_directory.ts`: a tablet server's view, read from kv, of what the
 * rooms need: the live servers (`tables/servers/`: id, URL, kv session)
 * and the tablets of the `strata.rooms` table with the server each is assigned
 * to, so that any server finds any room's home. Refreshed on every kv
 * change under those prefixes (watch) and every `pollMs` anyway, from the
 * first time rooms are used on this server (or it is asked as a home). Creates
 * the `strata.rooms` table (through the active master) the first time rooms are
 * used in a cell that has none.
 */
import type { KvClient } from "@strata/kv";
import { abortableSleep, kickOnChanges } from "../shared/kv_watch_kick.ts";
import {
  MASTER_ADDRESS_KEY,
  SERVER_PREFIX,
  serverRecordSchema,
  TABLET_PREFIX,
  tabletRecordSchema,
} from "../shared/kv_layout.ts";
import { compareBytes } from "@strata/lsm";
import { fromB64 } from "../shared/wire.ts";
import {
  homeKey,
  ROOMS_FAMILY,
  ROOMS_SPLITS,
  ROOMS_TABLE,
} from "./room_key.ts";

/** A live server. */
export interface ServerEntry {
  id: string;
  url: string;
  session: number;
}

/** A tablet of `strata.rooms`. */
export interface RoomsTablet {
  id: string;
  start: Uint8Array;
  end: Uint8Array | null;
  /** Assigned server id (null while unassigned). */
  server: string | null;
}

const decoder = new TextDecoder();

/** Options of {@link RoomsDirectory}. */
export interface DirectoryOptions {
  kv: KvClient;
  /** A token with the admin role, to create the table at the master. */
  adminToken?: string;
  /** The fetch client for the master (trusts the cell's TLS certificate). */
  httpClient?: Deno.HttpClient;
  log: (line: string) => void;
  /** Full refresh period, ms (default 1000). */
  pollMs?: number;
}

/** The kv view. */
export class RoomsDirectory {
  servers = new Map<string, ServerEntry>();
  tablets: RoomsTablet[] = [];
  /** When the current view's kv reads started (monotonic ms). */
  readAt = 0;
  #fingerprint = "";
  #wanted = false;
  #creating = false;
  #listeners = new Set<() => void>();
  #kick = Promise.withResolvers<void>();
  #abort = new AbortController();
  #loop: Promise<void> | undefined;

  /** @param o kv client, admin token, log. */
  constructor(private readonly o: DirectoryOptions) {}

  /** Calls `f` after every refresh that changed the view. */
  onChange(f: () => void): void {
    this.#listeners.add(f);
  }

  #first = Promise.withResolvers<void>();
  /** Resolves once the view was read from kv (after {@link start}). */
  readonly firstRead: Promise<void> = this.#first.promise;

  /**
   * Rooms are in use here: starts following kv, and the table is made if
   * the cell has none.
   */
  want(): void {
    this.start();
    if (!this.#wanted) {
      this.#wanted = true;
      this.#kick.resolve();
    }
  }

  /** The `strata.rooms` tablet holding home key `key` (see {@link homeKey}). */
  tabletOf(key: Uint8Array): RoomsTablet | undefined {
    return this.tablets.find((t) =>
      compareBytes(key, t.start) >= 0 &&
      (t.end === null || compareBytes(key, t.end) < 0)
    );
  }

  /** The live server that is the home of the room at home key `key`. */
  homeAt(key: Uint8Array): ServerEntry | undefined {
    const server = this.tabletOf(key)?.server;
    return server ? this.servers.get(server) : undefined;
  }

  /** The live server that is `room`'s home, if known. */
  homeOf(room: string): ServerEntry | undefined {
    return this.homeAt(homeKey(room));
  }

  /** Starts following kv (once; a server that never uses rooms never does). */
  start(): void {
    this.#loop ??= Promise.all([
      this.#poll(),
      kickOnChanges(
        this.o.kv,
        SERVER_PREFIX,
        this.#abort.signal,
        () => this.#kick.resolve(),
      ),
      kickOnChanges(
        this.o.kv,
        `${TABLET_PREFIX}${ROOMS_TABLE}/`,
        this.#abort.signal,
        () => this.#kick.resolve(),
      ),
    ]).then(() => {});
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#kick.resolve();
    await this.#loop;
  }

  async #poll(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await this.refresh();
        if (this.#wanted && this.tablets.length === 0) await this.#create();
      } catch (e) {
        this.o.log(`rooms: reading kv: ${e instanceof Error ? e.message : e}`);
      }
      await Promise.race([
        this.#kick.promise,
        abortableSleep(this.o.pollMs ?? 1000, signal),
      ]);
      this.#kick = Promise.withResolvers<void>();
    }
  }

  /** Reads the view from kv now. */
  async refresh(): Promise<void> {
    const readAt = performance.now();
    const servers = new Map<string, ServerEntry>();
    for await (const e of this.o.kv.scan(SERVER_PREFIX)) {
      const r = serverRecordSchema.safeParse(
        JSON.parse(decoder.decode(e.value)),
      );
      if (r.success) servers.set(r.data.id, r.data);
    }
    const tablets: RoomsTablet[] = [];
    for await (const e of this.o.kv.scan(`${TABLET_PREFIX}${ROOMS_TABLE}/`)) {
      const r = tabletRecordSchema.safeParse(
        JSON.parse(decoder.decode(e.value)),
      );
      if (!r.success) continue;
      tablets.push({
        id: r.data.id,
        start: fromB64(r.data.start),
        end: r.data.end === null ? null : fromB64(r.data.end),
        server: r.data.server,
      });
    }
    tablets.sort((a, b) => compareBytes(a.start, b.start));
    const fingerprint = JSON.stringify([
      [...servers.values()],
      tablets.map((t) => [t.id, t.server]),
    ]);
    this.readAt = readAt;
    this.#first.resolve();
    if (fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    this.servers = servers;
    this.tablets = tablets;
    for (const f of this.#listeners) f();
  }

  /** Asks the active master to create `strata.rooms` (409: someone else did). */
  async #create(): Promise<void> {
    if (this.#creating) return;
    this.#creating = true;
    try {
      const master = await this.o.kv.get(MASTER_ADDRESS_KEY);
      if (!master) return;
      const res = await fetch(`${decoder.decode(master.value)}/v1/tables`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(this.o.adminToken
            ? { authorization: `Bearer ${this.o.adminToken}` }
            : {}),
        },
        body: JSON.stringify({
          name: ROOMS_TABLE,
          families: [{ name: ROOMS_FAMILY }],
          splits: ROOMS_SPLITS,
        }),
        signal: AbortSignal.timeout(10_000),
        ...(this.o.httpClient ? { client: this.o.httpClient } : {}),
      });
      const answer = await res.text();
      if (res.ok) this.o.log(`rooms: created the ${ROOMS_TABLE} table`);
      else if (res.status !== 409) {
        this.o.log(`rooms: creating ${ROOMS_TABLE}: ${res.status} ${answer}`);
      }
      this.#kick.resolve();
    } finally {
      this.#creating = false;
    }
  }
}
