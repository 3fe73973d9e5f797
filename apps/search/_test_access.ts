/**
 * Test helper: the access of an in-process search app with real tokens
 * (generated in a temp dir), and request headers for each role.
 */
import { type ClusterSecrets, resolveAccess, type Role } from "@strata/edge";
import type { SearchAccess } from "./search_access.ts";

/**
 * Access with tokens, the secrets, and `as(role)` → an Authorization
 * header. The secrets are kept in memory; their temp dir is gone.
 */
export async function testAccess(): Promise<{
  access: SearchAccess;
  secrets: ClusterSecrets;
  as: (who: Role | "peer") => { authorization: string };
}> {
  const dir = await Deno.makeTempDir({ prefix: "search-auth-" });
  const access = await resolveAccess({
    listenHost: "127.0.0.1",
    secretsDir: dir,
  }).finally(() => Deno.remove(dir, { recursive: true }));
  const secrets = access.secrets!;
  return {
    access,
    secrets,
    as: (who) => ({
      authorization: `Bearer ${
        who === "peer" ? secrets.peerSecret : secrets.tokens[who]
      }`,
    }),
  };
}

/**
 * `fetch` as a client with `token`: the bearer token on every request, and
 * a string body without a content type sent as application/x-ndjson (fetch
 * would send text/plain, which the edge refuses on a POST).
 */
export function fetchAs(token: string | undefined): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    if (token !== undefined && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${token}`);
    }
    if (typeof init?.body === "string" && !headers.has("content-type")) {
      headers.set("content-type", "application/x-ndjson");
    }
    return fetch(input, { ...init, headers });
  };
}
