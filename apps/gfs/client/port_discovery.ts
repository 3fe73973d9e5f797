import { authHeaders } from "@strata/edge";
import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";
import { throwIfFailed } from "../shared/http_json.ts";

/** The TCP ports a chunkserver advertises beside HTTP (null: none). */
export interface ServerPorts {
  /** Framed transport port: small reads, record appends (data_connection.ts). */
  dataPort: number | null;
  /** Raw bulk port: large reads and uploads (bulk_connection.ts). */
  bulkPort: number | null;
}

const Health = z.object({
  dataPort: z.number().int().nullable().optional(),
  bulkPort: z.number().int().nullable().optional(),
});
// A server's ports (or their lack) are asked again after this long.
const DISCOVERY_TTL_MS = 60_000;
const NONE: ServerPorts = { dataPort: null, bulkPort: null };

/**
 * Learns each chunkserver's extra ports from its `/v1/health` once and
 * caches them: a server without the route or the fields (an older one), or
 * serving HTTPS (its ports stay off under TLS), has none, and the caller
 * uses HTTP.
 */
export class PortDiscovery {
  readonly #known = new Map<
    string,
    { at: number; ports: Promise<ServerPorts> }
  >();

  /** @param token the caller's token; @param httpClient fetch client (TLS roots). */
  constructor(
    readonly token?: string,
    readonly httpClient?: Deno.HttpClient,
  ) {}

  /**
   * The ports `server` advertises (cached).
   * @throws GfsError `unavailable` (unreachable), or as its health refused.
   */
  get(server: string, timeoutMs: number): Promise<ServerPorts> {
    const now = performance.now();
    const known = this.#known.get(server);
    if (known !== undefined && now - known.at < DISCOVERY_TTL_MS) {
      return known.ports;
    }
    const entry = { at: now, ports: this.#ask(server, timeoutMs) };
    this.#known.set(server, entry);
    entry.ports.catch(() => {
      if (this.#known.get(server) === entry) this.#known.delete(server);
    });
    return entry.ports;
  }

  /** Forgets `server`'s ports (a failed dial: a restarted server may listen elsewhere). */
  forget(server: string): void {
    this.#known.delete(server);
  }

  async #ask(server: string, timeoutMs: number): Promise<ServerPorts> {
    if (server.startsWith("https:")) return NONE;
    const url = `${server}/v1/health`;
    let body: unknown;
    try {
      const res = await fetch(url, {
        headers: authHeaders(this.token),
        client: this.httpClient,
        signal: AbortSignal.timeout(Math.min(5_000, timeoutMs)),
      });
      if (res.status === 404) {
        await res.body?.cancel();
        return NONE;
      }
      await throwIfFailed(res, url);
      body = await res.json().catch(() => null);
    } catch (e) {
      if (e instanceof GfsError) throw e;
      throw new GfsError("unavailable", `cannot reach ${server}: ${e}`);
    }
    const h = Health.safeParse(body);
    return h.success
      ? { dataPort: h.data.dataPort ?? null, bulkPort: h.data.bulkPort ?? null }
      : NONE;
  }
}
