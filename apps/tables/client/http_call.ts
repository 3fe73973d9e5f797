/**
 * One HTTP call of the tables client, its failure classified the way the
 * retry rules need: `unreachable` (the connection was refused: nothing was
 * sent), `timeout` / `lost` (sent, the answer did not come: the outcome is
 * unknown), or the server's own error code.
 */
import { failedToConnect, onceBody } from "@strata/edge";
import { TablesClientError } from "./tables_client_error.ts";

/** A fetch failure as a client error. */
export function transportError(url: string, e: unknown): TablesClientError {
  const refused = e instanceof TypeError && failedToConnect(e);
  const timedOut = e instanceof DOMException &&
    (e.name === "TimeoutError" || e.name === "AbortError");
  return new TablesClientError(
    refused ? "unreachable" : timedOut ? "timeout" : "lost",
    `${url}: ${e instanceof Error ? e.message : e}`,
  );
}

/** Options of one call. */
export interface CallOptions {
  method?: string;
  body?: unknown;
  headers: Record<string, string>;
  timeoutMs: number;
  client?: Deno.HttpClient;
}

/**
 * Sends one request; the response when it is 2xx.
 * @throws TablesClientError: transport failures as above; an error answer
 *   as its envelope's code (`not_serving`, `no_leader`, `bad_request`, ...).
 */
export async function send(url: string, o: CallOptions): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: o.method ?? (o.body === undefined ? "GET" : "POST"),
      headers: o.body === undefined
        ? o.headers
        : { ...o.headers, "content-type": "application/json" },
      body: o.body === undefined ? undefined : onceBody(JSON.stringify(o.body)),
      signal: AbortSignal.timeout(o.timeoutMs),
      ...(o.client ? { client: o.client } : {}),
    });
  } catch (e) {
    throw transportError(url, e);
  }
  if (res.ok) return res;
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw transportError(url, e);
  }
  let err: Record<string, unknown> = {};
  try {
    err = (JSON.parse(text) as { error?: Record<string, unknown> }).error ?? {};
  } catch { /* not JSON */ }
  const { code, message, ...details } = err;
  throw new TablesClientError(
    typeof code === "string" ? code : "http_error",
    typeof message === "string" ? message : `HTTP ${res.status}`,
    res.status,
    Object.keys(details).length ? details : undefined,
  );
}

/** {@link send}, then the JSON body. */
export async function sendJson(
  url: string,
  o: CallOptions,
): Promise<Record<string, unknown>> {
  const res = await send(url, o);
  try {
    return await res.json();
  } catch (e) {
    throw transportError(url, e);
  }
}
