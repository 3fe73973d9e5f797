/**
 * The flags every tables process uses to reach the kv service (strata's
 * Chubby): its endpoints and the token (kv's `write.token` or
 * `admin.token`).
 */
import { z } from "zod";
import { KvClient, readKvToken } from "@strata/kv";

/** `--kv`, `--kv-token-file`, `--session-ttl-ms`. */
export const KV_FLAGS = {
  kv: z.string({ error: "required" }).min(1),
  "kv-token-file": z.string().min(1).optional(),
  "session-ttl-ms": z.coerce.number().int().min(1000).max(600_000).default(
    10_000,
  ),
};

/** Usage lines of {@link KV_FLAGS}. */
export const KV_FLAGS_USAGE =
  `  --kv LIST           the kv service's HTTP endpoints, comma-separated (host:port or
                      https://host:port for kv nodes serving TLS, trusted via --ca-cert)
  --kv-token-file F   a kv token with the write role (default: STRATA_KV_TOKEN, else none)
  --session-ttl-ms N  TTL of this process's kv session (default 10000; min 1000)`;

/**
 * A KvClient from the parsed flags; `httpClient` trusts the kv nodes' TLS
 * certificate (the process's `--ca-cert`).
 * @throws Error when the token file cannot be read.
 */
export async function kvClientFromFlags(
  f: { kv: string; "kv-token-file"?: string },
  httpClient?: Deno.HttpClient,
): Promise<KvClient> {
  const token = f["kv-token-file"]
    ? await readKvToken({ tokenFile: f["kv-token-file"] })
    : Deno.env.get("STRATA_KV_TOKEN");
  return new KvClient(f.kv.split(",").map((s) => s.trim()).filter(Boolean), {
    ...(token ? { token } : {}),
    ...(httpClient ? { httpClient } : {}),
    timeoutMs: 3000,
  });
}
