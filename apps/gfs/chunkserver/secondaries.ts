import type { z } from "zod";
import { authHeaders } from "@strata/edge";
import { DataPorts } from "../client/data_connection.ts";
import { DATA_RECORD_MAX_BYTES } from "../shared/data_protocol.ts";
import { fetchJson, parseResponse } from "../shared/http_json.ts";
import { type ApplySchema, OkSchema } from "../shared/messages.ts";

/** How long a secondary may take to apply one mutation. */
const APPLY_TIMEOUT_MS = 60_000;

/** Which secondaries applied a mutation and which did not. */
export interface FanOutResult {
  ok: string[];
  failed: string[];
}

/**
 * A primary's calls to its secondaries (with the cell's peer secret): a
 * mutation goes to every secondary at once, and the result lists those
 * that failed instead of failing the mutation (the caller decides).
 * A record-append batch goes over the secondary's data port (the client's
 * connection pool, proving the peer secret) when it has one, else over
 * HTTP (a TLS cell, an older server, a batch over 16 MiB).
 */
export class Secondaries {
  readonly #ports: DataPorts;

  /** @param peerToken the cell's peer secret; @param client fetch client (the cell's TLS roots). */
  constructor(
    private readonly peerToken: string | undefined,
    private readonly client: Deno.HttpClient | undefined,
  ) {
    this.#ports = new DataPorts({ token: peerToken, httpClient: client });
  }

  /** Closes the data port connections. */
  close(): Promise<void> {
    return this.#ports.close();
  }

  /** `POST /v1/chunks/:handle/apply` (staged data by id, or padding) on each. */
  apply(
    secondaries: string[],
    handle: number,
    body: z.input<typeof ApplySchema>,
    signal?: AbortSignal,
  ): Promise<FanOutResult> {
    return fanOut(secondaries, async (s) => {
      await fetchJson(`${s}/v1/chunks/${handle}/apply`, OkSchema, {
        body,
        timeoutMs: APPLY_TIMEOUT_MS,
        token: this.peerToken,
        client: this.client,
        signal,
      });
    });
  }

  /**
   * `data` at `offset` as mutation `seq`, on each: `ApplyBytes` on its data
   * port, or `POST /v1/chunks/:handle/apply-bytes` when it has none.
   */
  applyBytes(
    secondaries: string[],
    handle: number,
    q: { version: number; offset: number; seq: number },
    data: Uint8Array,
    signal?: AbortSignal,
  ): Promise<FanOutResult> {
    return fanOut(secondaries, async (s) => {
      if (data.length <= DATA_RECORD_MAX_BYTES) {
        // A failure here fails this secondary (no second try over HTTP:
        // the batch may have been applied, and its number is taken).
        const r = await this.#ports.applyBytes(
          s,
          { handle, ...q, data },
          APPLY_TIMEOUT_MS,
          signal,
        );
        if (r !== null) return;
      }
      const u =
        `${s}/v1/chunks/${handle}/apply-bytes?version=${q.version}&offset=${q.offset}&seq=${q.seq}`;
      const res = await fetch(u, {
        method: "POST",
        headers: {
          ...authHeaders(this.peerToken),
          "content-type": "application/octet-stream",
        },
        client: this.client,
        body: data as Uint8Array<ArrayBuffer>,
        signal: signal === undefined
          ? AbortSignal.timeout(APPLY_TIMEOUT_MS)
          : AbortSignal.any([signal, AbortSignal.timeout(APPLY_TIMEOUT_MS)]),
      });
      await parseResponse(res, OkSchema, u);
    });
  }
}

/** Runs `send` against every secondary at once and splits them by outcome. */
async function fanOut(
  secondaries: readonly string[],
  send: (s: string) => Promise<void>,
): Promise<FanOutResult> {
  const results = await Promise.all(secondaries.map(async (s) => {
    try {
      await send(s);
      return { s, ok: true };
    } catch {
      return { s, ok: false };
    }
  }));
  return {
    ok: results.filter((r) => r.ok).map((r) => r.s),
    failed: results.filter((r) => !r.ok).map((r) => r.s),
  };
}
