/**
 * `room_events.ts`: a small client of a tablet server's room event
 * stream (`GET /v1/rooms/events`), for tests, benchmarks and tools: it
 * parses the server-sent events and hands each message to a callback.
 */

/** One message as the stream carries it. */
export interface RoomEvent {
  room: string;
  data: string;
  encoding?: "base64";
  pattern?: string;
}

/** Options of {@link openRoomStream}. */
export interface RoomStreamOptions {
  /** The server's base URL. */
  url: string;
  token?: string;
  rooms?: string[];
  patterns?: string[];
  /** A fetch client that trusts the cell's certificate (HTTPS cells). */
  httpClient?: Deno.HttpClient;
  onMessage(e: RoomEvent): void;
}

/** An open stream. */
export interface RoomStream {
  /** Resolves once the server confirmed the subscriptions (to the server id). */
  subscribed: Promise<string>;
  /** Resolves when the stream ended (the server went away, or `close`). */
  ended: Promise<void>;
  close(): void;
}

/** Opens a stream; `subscribed` rejects if the server refuses it. */
export function openRoomStream(o: RoomStreamOptions): RoomStream {
  const q = new URLSearchParams();
  for (const r of o.rooms ?? []) q.append("room", r);
  for (const p of o.patterns ?? []) q.append("pattern", p);
  const abort = new AbortController();
  const subscribed = Promise.withResolvers<string>();
  subscribed.promise.catch(() => {});
  const ended = (async () => {
    try {
      const res = await fetch(`${o.url}/v1/rooms/events?${q}`, {
        headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
        signal: abort.signal,
        ...(o.httpClient ? { client: o.httpClient } : {}),
      });
      if (!res.ok) {
        throw new Error(`${res.status} ${await res.text()}`);
      }
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data) continue;
          const json = JSON.parse(data);
          if (event === "subscribed") subscribed.resolve(json.server);
          else if (event === "message") o.onMessage(json);
        }
      }
    } catch (e) {
      subscribed.reject(e);
      return;
    }
    subscribed.reject(new Error("the stream ended before it was subscribed"));
  })();
  return {
    subscribed: subscribed.promise,
    ended,
    close: () => abort.abort(),
  };
}
