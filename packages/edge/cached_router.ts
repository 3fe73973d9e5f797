/**
 * A Hono router that remembers its answers by method and path. Hono's
 * default `SmartRouter` falls back from its RegExpRouter to its TrieRouter
 * when two routes put a static segment and a `:param` at the same place
 * (`/v1/rooms/_batch` next to `/v1/rooms/:room/messages`), and the
 * TrieRouter's search builds arrays and objects for every request (~2 KB
 * a request on a tablet server's puts, a tenth of a put's garbage). A
 * service's hot paths are few (one per table for row writes), so most
 * requests are answered from the map.
 */
import type { Result, Router } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";

/** Paths longer than this are matched every time, never remembered. */
const MAX_CACHED_PATH = 256;

/**
 * Wraps a router (default: Hono's own default, `SmartRouter` over
 * RegExpRouter and TrieRouter) and remembers up to `maxEntries` answers;
 * the map is emptied when it is full and whenever a route is added. An
 * answer depends only on the method, the path and the routes, and Hono
 * only reads it (its RegExpRouter hands out shared answers too).
 * `new Hono({ router: new CachedRouter() })`.
 */
export class CachedRouter<T> implements Router<T> {
  readonly #inner: Router<T>;
  readonly #maxEntries: number;
  /** Method → path → answer (two levels: no key string built per request). */
  #cache = new Map<string, Map<string, Result<T>>>();
  #entries = 0;

  /**
   * @param inner the router that matches (default: Hono's default).
   * @param maxEntries answers remembered before the map is emptied.
   */
  constructor(
    inner: Router<T> = new SmartRouter<T>({
      routers: [new RegExpRouter<T>(), new TrieRouter<T>()],
    }),
    maxEntries = 1024,
  ) {
    this.#inner = inner;
    this.#maxEntries = maxEntries;
  }

  /** The inner router's name (SmartRouter's names the router it chose). */
  get name(): string {
    return `CachedRouter(${this.#inner.name})`;
  }

  /** Adds a route to the inner router and forgets every answer. */
  add(method: string, path: string, handler: T): void {
    this.#cache.clear();
    this.#entries = 0;
    this.#inner.add(method, path, handler);
  }

  /** The inner router's answer, remembered for short paths. */
  match(method: string, path: string): Result<T> {
    let byPath = this.#cache.get(method);
    const hit = byPath?.get(path);
    if (hit !== undefined) return hit;
    const r = this.#inner.match(method, path);
    if (path.length > MAX_CACHED_PATH) return r;
    if (this.#entries >= this.#maxEntries) {
      this.#cache.clear();
      this.#entries = 0;
      byPath = undefined;
    }
    if (byPath === undefined) this.#cache.set(method, byPath = new Map());
    byPath.set(path, r);
    this.#entries++;
    return r;
  }
}
