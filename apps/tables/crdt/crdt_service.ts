/**
 * `crdt_service.ts`: the CRDT ranges of one tablet server. It follows the
 * declarations in kv (`tables/crdt/`, read again at once when a watch on
 * it or on `tables/servers/` sees a change, and every `pollMs` in case a
 * watch missed one) and opens a
 * replica of each range that names this server, loaded from its data
 * directory; it applies clients' operations there without asking anyone
 * (so a range stays writable while its home or kv is unreachable) and
 * pushes changed key states to the range's other replicas (anti-entropy):
 * every `syncMs`, one request in flight per range and peer, a failed push
 * kept for the next round; after a peer answers again following failures,
 * and every `fullSyncMs`, every key goes to it once more. Replicas serve
 * whether or not this server's kv session is alive.
 */
import { join } from "node:path";
import type { KvClient } from "@strata/kv";
import { abortableSleep, kickOnChanges } from "../shared/kv_watch_kick.ts";
import { EdgeError, failedToConnect } from "@strata/edge";
import { SERVER_PREFIX, serverRecordSchema } from "../shared/kv_layout.ts";
import { TablesError } from "../shared/tables_error.ts";
import { HybridClock } from "./hlc.ts";
import { CrdtLog } from "./crdt_log.ts";
import { CrdtReplica } from "./crdt_replica.ts";
import {
  canonicalValue,
  type CrdtOp,
  type CrdtValue,
  type CrdtView,
  viewOf,
} from "./crdt_value.ts";
import {
  CRDT_PREFIX,
  type CrdtRangeRecord,
  crdtRangeRecordSchema,
  type crdtSyncBody,
  SYNC_BATCH_KEYS,
} from "./crdt_wire.ts";
import type { z } from "zod";

/** Options of {@link CrdtService}. */
export interface CrdtServiceOptions {
  /** This server's id (the replicas' node id). */
  id: string;
  /** Replicas live in `<dataDir>/crdt/<range>/`. */
  dataDir: string;
  kv: KvClient;
  /** The peer secret (sent to other servers' `_sync`). */
  peerToken?: string;
  httpClient?: Deno.HttpClient;
  log(line: string): void;
  /** Anti-entropy period, ms (default 500). */
  syncMs?: number;
  /** Every key to every peer again this often, ms (default 30 000). */
  fullSyncMs?: number;
  /** A push not answered in this time failed, ms (default 3000). */
  peerTimeoutMs?: number;
  /**
   * kv read period when the watches saw no change, ms (default 5000): a
   * declaration made while a watch was reconnecting is picked up by then.
   */
  pollMs?: number;
  /** The wall clock of the hybrid logical clock (tests). */
  wallClock?: () => number;
}

const decoder = new TextDecoder();

/** A key as a reader sees it. */
export type KeyView = { key: string } & CrdtView;

/** The CRDT ranges held by this server. */
export class CrdtService {
  readonly clock: HybridClock;
  #replicas = new Map<string, CrdtReplica>();
  #opening = new Map<string, Promise<CrdtReplica>>();
  #decls = new Map<string, CrdtRangeRecord>();
  /** Last known URL of each server (kept while its kv key is gone). */
  #urls = new Map<string, string>();
  /** Peers whose last push failed. */
  #down = new Set<string>();
  #inFlight = new Set<string>();
  #abort = new AbortController();
  #kick = Promise.withResolvers<void>();
  /** Resolved when a replica opens (wakes a sync loop that had none). */
  #opened = Promise.withResolvers<void>();
  #loops: Promise<unknown> | undefined;
  readonly #root: string;

  /** @param o id, data dir, kv, peer secret, periods. */
  constructor(private readonly o: CrdtServiceOptions) {
    this.clock = new HybridClock({
      node: o.id,
      ...(o.wallClock ? { wallClock: o.wallClock } : {}),
    });
    this.#root = join(o.dataDir, "crdt");
  }

  /** Opens the replicas found on disk, then follows kv and syncs. */
  async start(): Promise<void> {
    await Deno.mkdir(this.#root, { recursive: true });
    for await (const d of Deno.readDir(this.#root)) {
      if (!d.isDirectory) continue;
      try {
        const decl = crdtRangeRecordSchema.parse(
          JSON.parse(
            await Deno.readTextFile(join(this.#root, d.name, "decl.json")),
          ),
        );
        this.#decls.set(decl.name, decl);
        await this.#open(decl);
      } catch (e) {
        this.o.log(`crdt: cannot load ${d.name}: ${(e as Error).message}`);
      }
    }
    this.#loops = Promise.all([
      this.#pollLoop(),
      this.#syncLoop(),
      kickOnChanges(
        this.o.kv,
        CRDT_PREFIX,
        this.#abort.signal,
        () => this.#kick.resolve(),
      ),
      kickOnChanges(
        this.o.kv,
        SERVER_PREFIX,
        this.#abort.signal,
        () => this.#kick.resolve(),
      ),
    ]);
  }

  /** Stops the loops and closes every replica. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loops;
    await Promise.all([...this.#replicas.values()].map((r) => r.close()));
  }

  /** Reads declarations and server URLs from kv. */
  async refresh(): Promise<void> {
    const decls = new Map<string, CrdtRangeRecord>();
    for await (const e of this.o.kv.scan(CRDT_PREFIX)) {
      const r = crdtRangeRecordSchema.safeParse(
        JSON.parse(decoder.decode(e.value)),
      );
      if (r.success) decls.set(r.data.name, r.data);
    }
    // Peers' URLs matter only to a server holding a replica (a cell without
    // CRDT ranges costs one small kv read per server per second).
    const mine = [...decls.values()].some((d) =>
      d.replicas.includes(this.o.id)
    );
    if (mine || this.#replicas.size) {
      for await (const e of this.o.kv.scan(SERVER_PREFIX)) {
        const r = serverRecordSchema.safeParse(
          JSON.parse(decoder.decode(e.value)),
        );
        if (r.success) this.#urls.set(r.data.id, r.data.url);
      }
    }
    this.#decls = decls;
    for (const d of decls.values()) {
      if (d.replicas.includes(this.o.id)) await this.#open(d);
    }
    for (const [name, r] of this.#replicas) {
      const d = decls.get(name);
      if (d?.replicas.includes(this.o.id) && d.incarnation === r.incarnation) {
        continue;
      }
      // Deleted (or declared again since): this copy goes.
      this.#replicas.delete(name);
      await r.close();
      await Deno.remove(join(this.#root, name), { recursive: true });
      this.o.log(
        `crdt: range ${name} dropped (${d ? "declared again" : "deleted"})`,
      );
      if (d?.replicas.includes(this.o.id)) await this.#open(d);
    }
  }

  async #open(decl: CrdtRangeRecord): Promise<CrdtReplica> {
    const peers = decl.replicas.filter((p) => p !== this.o.id);
    const have = this.#replicas.get(decl.name);
    if (have) {
      have.setPeers(peers);
      return have;
    }
    const opening = this.#opening.get(decl.name);
    if (opening) return opening;
    const p = (async () => {
      const dir = join(this.#root, decl.name);
      const { log, values, skipped } = await CrdtLog.open(dir, () => values);
      await Deno.writeTextFile(join(dir, "decl.json"), JSON.stringify(decl));
      const replica = new CrdtReplica(
        decl.name,
        decl.incarnation,
        this.o.id,
        this.clock,
        values,
        log,
        peers,
      );
      for (const v of values.values()) if (v.r) this.clock.observe(v.r.ts);
      this.#replicas.set(decl.name, replica);
      this.#opened.resolve();
      this.o.log(
        `crdt: replica of ${decl.name} open (${values.size} keys${
          skipped ? `, ${skipped} torn lines skipped` : ""
        }), peers ${peers.join(",") || "none"}`,
      );
      return replica;
    })().finally(() => this.#opening.delete(decl.name));
    this.#opening.set(decl.name, p);
    return await p;
  }

  /**
   * The replica of `range` here.
   * @throws EdgeError `not_found` (no such range), TablesError
   *   `not_serving` 409 (its replicas are elsewhere: `replicas` says where).
   */
  async replica(range: string): Promise<CrdtReplica> {
    const r = this.#replicas.get(range);
    if (r) return r;
    // Declared a moment ago? Read kv once before answering.
    await this.refresh().catch(() => {});
    const again = this.#replicas.get(range);
    if (again) return again;
    const d = this.#decls.get(range);
    if (!d) {
      throw new EdgeError("not_found", `no CRDT range ${range}`);
    }
    throw new TablesError(
      "not_serving",
      409,
      `tablet server ${this.o.id} holds no replica of CRDT range ${range}`,
      { replicas: d.replicas },
    );
  }

  /** Applies `op` to `key` here; resolves to the key's value once durable. */
  async update(range: string, key: string, op: CrdtOp): Promise<KeyView> {
    const r = await this.replica(range);
    return { key, ...viewOf(await r.update(key, op)) };
  }

  /** The value of `key` at this replica (empty when never written). */
  async read(range: string, key: string): Promise<KeyView> {
    const r = await this.replica(range);
    return { key, ...viewOf(r.values.get(key) ?? {}) };
  }

  /** Keys with `prefix` after `after`, in key order, at most `limit`. */
  async scan(
    range: string,
    q: { prefix: string; after?: string | undefined; limit: number },
  ): Promise<{ keys: KeyView[]; more: boolean }> {
    const r = await this.replica(range);
    const keys = [...r.values.keys()].filter((k) =>
      k.startsWith(q.prefix) && (q.after === undefined || k > q.after)
    ).sort();
    return {
      keys: keys.slice(0, q.limit).map((k) => ({
        key: k,
        ...viewOf(r.values.get(k)!),
      })),
      more: keys.length > q.limit,
    };
  }

  /**
   * A digest of the whole replica (SHA-256 of every key's state in key
   * order): two replicas with the same digest hold the same state.
   */
  async digest(range: string): Promise<{ keys: number; digest: string }> {
    const r = await this.replica(range);
    const text = [...r.values.keys()].sort().map((k) =>
      JSON.stringify([k, canonicalValue(r.values.get(k)!)])
    ).join("\n");
    const hash = await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(text),
    );
    return {
      keys: r.values.size,
      digest: [...new Uint8Array(hash)].map((b) =>
        b.toString(16).padStart(2, "0")
      ).join(""),
    };
  }

  /** Merges another replica's push. */
  async handleSync(
    b: z.infer<typeof crdtSyncBody>,
  ): Promise<{ changed: number }> {
    const r = await this.replica(b.range);
    if (r.incarnation !== b.incarnation) {
      // One side has not yet seen the range dropped and declared again.
      throw new EdgeError(
        "conflict",
        `CRDT range ${b.range} here is declaration ${r.incarnation}, not ${b.incarnation}`,
      );
    }
    if (!r.dirty.has(b.from)) {
      throw new EdgeError(
        "forbidden",
        `${b.from} holds no replica of CRDT range ${b.range}`,
      );
    }
    return { changed: await r.merge(b.from, b.entries) };
  }

  /** What this server holds, and what its peers have not acknowledged. */
  status(): Record<string, unknown> {
    return {
      server: this.o.id,
      ranges: [...this.#replicas.values()].map((r) => ({
        name: r.range,
        replicas: this.#decls.get(r.range)?.replicas ?? [],
        keys: r.values.size,
        applied: r.applied,
        merged: r.merged,
        pending: r.pending(),
      })),
      unreachable: [...this.#down].sort(),
      clockRejected: this.clock.rejected,
    };
  }

  async #pollLoop(): Promise<void> {
    const signal = this.#abort.signal;
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.refresh();
        failing = false;
      } catch (e) {
        // kv unreachable: the replicas known so far keep serving.
        if (!failing) this.o.log(`crdt: reading kv: ${(e as Error).message}`);
        failing = true;
      }
      await Promise.race([
        this.#kick.promise,
        abortableSleep(this.o.pollMs ?? 5000, signal),
      ]);
      this.#kick = Promise.withResolvers<void>();
    }
  }

  async #syncLoop(): Promise<void> {
    const signal = this.#abort.signal;
    let lastFull = performance.now();
    while (!signal.aborted) {
      if (this.#replicas.size === 0) {
        // Nothing to push: sleep until a replica opens instead of waking
        // every syncMs (most servers hold no CRDT range at all).
        await Promise.race([
          this.#opened.promise,
          new Promise<void>((r) =>
            signal.addEventListener("abort", () => r(), { once: true })
          ),
        ]);
        this.#opened = Promise.withResolvers<void>();
        continue;
      }
      if (performance.now() - lastFull >= (this.o.fullSyncMs ?? 30_000)) {
        lastFull = performance.now();
        for (const r of this.#replicas.values()) {
          for (const p of r.dirty.keys()) r.markAll(p);
        }
      }
      for (const r of this.#replicas.values()) {
        for (const [peer, keys] of r.dirty) {
          const slot = `${r.range}\u0000${peer}`;
          if (keys.size === 0 || this.#inFlight.has(slot)) continue;
          const url = this.#urls.get(peer);
          if (!url) continue;
          this.#inFlight.add(slot);
          this.#push(r, peer, url).finally(() => this.#inFlight.delete(slot));
        }
      }
      await abortableSleep(this.o.syncMs ?? 500, signal);
    }
  }

  /** Sends `peer` the keys it has not acknowledged, a batch at a time. */
  async #push(r: CrdtReplica, peer: string, url: string): Promise<void> {
    while (!this.#abort.signal.aborted) {
      const keys = r.takeDirty(peer, SYNC_BATCH_KEYS);
      if (keys.length === 0) return;
      const entries: { key: string; value: CrdtValue }[] = keys.flatMap((k) => {
        const value = r.durable.get(k);
        return value ? [{ key: k, value }] : [];
      });
      try {
        const res = await fetch(`${url}/v1/crdt/_sync`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(this.o.peerToken
              ? { authorization: `Bearer ${this.o.peerToken}` }
              : {}),
          },
          body: JSON.stringify({
            from: this.o.id,
            range: r.range,
            incarnation: r.incarnation,
            entries,
          }),
          signal: AbortSignal.timeout(this.o.peerTimeoutMs ?? 3000),
          ...(this.o.httpClient ? { client: this.o.httpClient } : {}),
        });
        const text = await res.text();
        if (!res.ok) {
          throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
        }
        r.sent(peer, keys);
      } catch (e) {
        r.unsent(peer, keys);
        if (!this.#down.has(peer)) {
          this.#down.add(peer);
          const why = e instanceof TypeError && failedToConnect(e)
            ? "refused"
            : (e as Error).message;
          this.o.log(`crdt: push of ${r.range} to ${peer} failed (${why})`);
        }
        return;
      }
      if (this.#down.delete(peer)) {
        // Back after failures: exchange every key with it once (each side
        // does, so each learns what the other took while apart).
        this.o.log(`crdt: ${peer} answers again: full exchange`);
        for (const x of this.#replicas.values()) x.markAll(peer);
      }
    }
  }
}
