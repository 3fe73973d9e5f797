/**
 * `peer_link.ts`: the one channel from this server to one other server's
 * internal rooms route. Items queue in order and go as one POST per batch
 * (one in flight, over fetch's kept-alive connection), so a burst of
 * publishes or deliveries costs a few requests, not one per message.
 * Order is kept: a batch is retried whole before the next one goes.
 * A `pub` is never re-sent after a request that may have reached the peer
 * (it would be published twice); every other item is idempotent at the
 * receiver and is re-sent until the link is closed.
 */
import { failedToConnect, onceBody } from "@strata/edge";
import {
  type BatchItem,
  batchResultSchema,
  type ItemResult,
} from "./rooms_wire.ts";

/** Why an item was not answered. */
export class LinkError extends Error {
  /** True when the item surely did not reach the peer. */
  readonly notSent: boolean;
  /** @param message what happened; @param notSent surely not applied. */
  constructor(message: string, notSent: boolean) {
    super(message);
    this.name = "LinkError";
    this.notSent = notSent;
  }
}

interface Queued {
  item: BatchItem;
  bytes: number;
  resolve: (r: ItemResult) => void;
  reject: (e: LinkError) => void;
}

/** Who sends: this server's id, kv session and URL (undefined while unregistered). */
export type Sender = () =>
  | { from: string; session: number; url: string }
  | undefined;

const BATCH_BYTES = 1 << 20;
const BATCH_ITEMS = 5000;

/** The channel to one peer incarnation. */
export class PeerLink {
  #queue: Queued[] = [];
  #running = false;
  #closed: LinkError | undefined;
  /** The first items of the queue that are in the request now on its way. */
  #inFlight = 0;
  /** When it was made (monotonic ms). */
  readonly createdAt = performance.now();

  /**
   * @param id the peer's server id; @param session its kv session;
   * @param url its base URL; @param token the peer secret;
   * @param sender this server.
   */
  constructor(
    readonly id: string,
    readonly session: number,
    readonly url: string,
    private readonly token: string | undefined,
    private readonly sender: Sender,
    /** Trusts the cell's certificate when the servers serve HTTPS. */
    private readonly httpClient?: Deno.HttpClient,
  ) {}

  /** Queues `item`; resolves to the peer's answer to it. */
  send(item: BatchItem): Promise<ItemResult> {
    if (this.#closed) return Promise.reject(this.#closed);
    const p = Promise.withResolvers<ItemResult>();
    const bytes = "data" in item ? item.data.length + 100 : 100;
    this.#queue.push({ item, bytes, resolve: p.resolve, reject: p.reject });
    if (!this.#running) this.#run();
    return p.promise;
  }

  /** Fails everything queued and refuses new items (the peer is gone). */
  close(why: string): void {
    this.#closed ??= new LinkError(`server ${this.id}: ${why}`, true);
    // What is on its way may have been applied: its outcome is unknown.
    const unknown = new LinkError(`server ${this.id}: ${why}`, false);
    this.#queue.splice(0).forEach((q, i) =>
      q.reject(i < this.#inFlight ? unknown : this.#closed!)
    );
  }

  async #run(): Promise<void> {
    this.#running = true;
    let failures = 0;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        let n = 0;
        for (let bytes = 0; n < this.#queue.length && n < BATCH_ITEMS; n++) {
          bytes += this.#queue[n]!.bytes;
          if (bytes > BATCH_BYTES && n > 0) break;
        }
        const batch = this.#queue.slice(0, n);
        const me = this.sender();
        if (!me) {
          await sleep(200);
          continue;
        }
        this.#inFlight = n;
        try {
          const results = await this.#post({
            ...me,
            items: batch.map((q) => q.item),
          });
          this.#inFlight = 0;
          if (this.#closed) break; // close() answered them
          this.#queue.splice(0, n);
          batch.forEach((q, i) =>
            q.resolve(
              results[i] ??
                { error: { code: "internal", message: "no answer" } },
            )
          );
          failures = 0;
        } catch (e) {
          this.#inFlight = 0;
          if (this.#closed) break;
          const notSent = e instanceof LinkError
            ? e.notSent
            : failedToConnect(e);
          // A publish leaves the queue: not sent, its caller asks the
          // directory for the room's home again; maybe sent, its outcome is
          // unknown and it is not sent twice. The rest is idempotent: retried.
          const why = `server ${this.id}: ${
            e instanceof Error ? e.message : e
          }`;
          for (const q of batch) {
            if (q.item.op !== "pub") continue;
            this.#queue.splice(this.#queue.indexOf(q), 1);
            q.reject(new LinkError(why, notSent));
          }
          await sleep(Math.min(1000, 50 * 2 ** Math.min(failures++, 5)));
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #post(body: unknown): Promise<ItemResult[]> {
    const res = await fetch(`${this.url}/v1/rooms/_batch`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      // Not replayable: Deno would re-send it on a stale connection.
      body: onceBody(JSON.stringify(body)),
      signal: AbortSignal.timeout(30_000),
      ...(this.httpClient ? { client: this.httpClient } : {}),
    });
    const json = await res.json().catch(() => undefined);
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } })
        ?.error;
      // The peer refused the whole batch before doing anything.
      throw new LinkError(
        `${res.status} ${err?.code ?? ""} ${err?.message ?? ""}`.trim(),
        res.status !== 500 && res.status !== 504,
      );
    }
    return batchResultSchema.parse(json).results;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
