import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";
import type { MasterEndpoints } from "../shared/http_json.ts";

/**
 * The peers a chunkserver may contact (SSRF guard): the origins of the
 * chunkservers registered with the master, from every heartbeat reply and,
 * for a name not seen yet (a server that just joined), one fresh lookup.
 * A push chain, a primary's secondaries and a clone source named by a
 * request must all be registered chunkservers.
 */
export class PeerRegistry {
  #registered = new Set<string>();
  #lookingUp: Promise<void> | null = null;
  /**
   * Parsed origins by URL: a primary is named the same few secondaries in
   * every record append, and parsing a URL is a visible part of a small
   * append's CPU (bounded: cleared when it grows past a few hundred).
   */
  readonly #parsed = new Map<string, string | null>();

  /**
   * @param lookup the masters, asked for `/v1/chunkservers` (short timeout);
   * @param closing ends a lookup when the chunkserver closes.
   */
  constructor(
    private readonly lookup: MasterEndpoints,
    private readonly closing: AbortSignal,
  ) {}

  /** Replaces the registered set with the origins of `urls`. */
  set(urls: string[]): void {
    this.#registered = new Set(urls.flatMap((u) => {
      const o = originOf(u);
      return o === null ? [] : [o];
    }));
  }

  /**
   * The origins of `urls` when every one is a registered chunkserver.
   * @throws GfsError `bad_request` (not an http URL), `forbidden` (not
   *   registered with the master).
   */
  async origins(urls: string[], what: string): Promise<string[]> {
    const origins = urls.map((u) => {
      const o = this.#originOf(u);
      if (o === null) {
        throw new GfsError("bad_request", `${what} ${u} is not an http URL`);
      }
      return o;
    });
    if (origins.some((o) => !this.#registered.has(o))) await this.#lookUp();
    const stranger = origins.find((o) => !this.#registered.has(o));
    if (stranger !== undefined) {
      throw new GfsError(
        "forbidden",
        `${what} ${stranger} is not a chunkserver registered with the master`,
      );
    }
    return origins;
  }

  #originOf(u: string): string | null {
    let o = this.#parsed.get(u);
    if (o === undefined) {
      if (this.#parsed.size >= 256) this.#parsed.clear();
      this.#parsed.set(u, o = originOf(u));
    }
    return o;
  }

  /** One lookup at a time; a failed lookup leaves the set as it was. */
  #lookUp(): Promise<void> {
    return this.#lookingUp ??= this.lookup.call(
      "/v1/chunkservers",
      z.object({ chunkservers: z.array(z.object({ url: z.string() })) }),
      { timeoutMs: 2000, signal: this.closing },
    ).then((r) => this.set(r.chunkservers.map((s) => s.url)), () => {})
      .finally(() => this.#lookingUp = null);
  }
}

/** `scheme://host:port` of an http(s) URL, or null for anything else. */
function originOf(u: string): string | null {
  try {
    const url = new URL(u);
    return url.protocol === "http:" || url.protocol === "https:"
      ? url.origin
      : null;
  } catch {
    return null;
  }
}
