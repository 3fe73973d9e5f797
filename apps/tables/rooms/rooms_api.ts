/**
 * `rooms_api.ts`: the rooms' HTTP routes on a tablet server.
 *
 * - `GET /v1/rooms/:room/events` and `GET /v1/rooms/events?room=a&room=b&pattern=p*`
 *   (read): one server-sent-event stream subscribed to those rooms and
 *   patterns; first `event: subscribed` once every home counts this
 *   server in, then `event: message` `{"room","data","encoding"?,"pattern"?}`.
 * - `POST /v1/rooms/:room/messages` (write) `{"data","encoding"?}` →
 *   `{"room","seq","servers","delivered"}`.
 * - `GET /v1/rooms` (read): counts and this process's memory (`gc=1`
 *   collects garbage first when the process runs with `--expose-gc`).
 * - `POST /v1/rooms/_batch` (peer secret only): another server's batch.
 */
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import {
  EdgeError,
  readJson,
  readQuery,
  requirePeer,
  requireRole,
} from "@strata/edge";
import { encodingSchema, renderBytes, toBytes } from "../shared/wire.ts";
import { roomNameSchema } from "./room_key.ts";
import { RoomsError, type RoomsPubSub } from "./rooms_service.ts";
import {
  batchSchema,
  MAX_BATCH_BYTES,
  MAX_MESSAGE_BYTES,
  publishBody,
} from "./rooms_wire.ts";

/** Rooms one stream may subscribe to. */
export const MAX_STREAM_ROOMS = 1000;
/** Messages a stream may have waiting for a slow reader before it is cut. */
const MAX_QUEUED = 10_000;
const PING_MS = 15_000;

const eventsQuery = z.object({ encoding: encodingSchema });

const roomParam = (raw: string | undefined): string => {
  const r = roomNameSchema.safeParse(raw);
  if (!r.success) {
    throw new EdgeError("bad_request", `room: ${r.error.issues[0]?.message}`);
  }
  return r.data;
};

const edgeOf = (e: unknown): unknown =>
  e instanceof RoomsError ? new EdgeError(e.code, e.message) : e;

/** The routes; mount them behind the server's edge guard (with the peer secret). */
export function createRoomsApi(rooms: RoomsPubSub, serverId: string): Hono {
  const app = new Hono();

  app.post("/v1/rooms/_batch", requirePeer(), async (c) => {
    const b = await readJson(c, batchSchema, { maxBytes: MAX_BATCH_BYTES });
    return c.json({
      results: await rooms.handleBatch(b.from, b.session, b.url, b.items),
    });
  });

  app.get("/v1/rooms", requireRole("read"), (c) => {
    // `gc=1`: collect first, when the process runs with --expose-gc (tests
    // measuring memory per room start it so); otherwise ignored.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (c.req.query("gc") === "1" && gc) gc();
    const m = Deno.memoryUsage();
    return c.json({
      server: serverId,
      ...rooms.stats(),
      memory: { rss: m.rss, heapUsed: m.heapUsed },
    });
  });

  app.post("/v1/rooms/:room/messages", requireRole("write"), async (c) => {
    const room = roomParam(c.req.param("room"));
    const body = await readJson(c, publishBody, {
      maxBytes: MAX_MESSAGE_BYTES * 2 + 1024,
    });
    const data = toBytes(body.data, body.encoding, "data", Infinity);
    if (data.length > MAX_MESSAGE_BYTES) {
      throw new EdgeError(
        "too_large",
        `data is ${data.length} bytes; a message is at most ${MAX_MESSAGE_BYTES}`,
      );
    }
    try {
      return c.json({ room, ...await rooms.publishAt(room, data) });
    } catch (e) {
      throw edgeOf(e);
    }
  });

  const stream = (
    c: Context,
    names: string[],
    patterns: string[],
  ) => {
    const { encoding } = readQuery(c, eventsQuery);
    if (names.length + patterns.length === 0) {
      throw new EdgeError(
        "bad_request",
        "name at least one room (room=NAME) or pattern (pattern=GLOB)",
      );
    }
    if (names.length + patterns.length > MAX_STREAM_ROOMS) {
      throw new EdgeError(
        "bad_request",
        `one stream subscribes to at most ${MAX_STREAM_ROOMS} rooms and patterns`,
      );
    }
    const roomsWanted = [...new Set(names.map(roomParam))];
    const patternsWanted = [...new Set(patterns.map(roomParam))];
    return streamSSE(c, async (sse) => {
      const queue: string[] = [];
      let overflow = false;
      let closed = false;
      let wake: (() => void) | undefined;
      const push = (json: string) => {
        if (queue.length >= MAX_QUEUED) overflow = true;
        else queue.push(json);
        wake?.();
      };
      const render = (room: string, m: Uint8Array, pattern?: string) => {
        const text = renderBytes(m, encoding);
        push(JSON.stringify({
          room,
          ...(pattern === undefined ? {} : { pattern }),
          data: text ?? renderBytes(m, "base64"),
          ...(text === undefined || encoding === "base64"
            ? { encoding: "base64" }
            : {}),
        }));
      };
      const subs = [
        ...roomsWanted.map((r) => rooms.subscribe(r, (ch, m) => render(ch, m))),
        ...patternsWanted.map((p) =>
          rooms.psubscribe(p, (pat, ch, m) => render(ch, m, pat))
        ),
      ];
      const ended = Promise.withResolvers<void>();
      const end = () => {
        closed = true;
        wake?.();
        ended.resolve();
      };
      sse.onAbort(end);
      rooms.closing.addEventListener("abort", end);
      if (rooms.closing.aborted) end();
      const ping = setInterval(() => wake?.(), PING_MS);
      try {
        await Promise.race([
          Promise.all(subs.map((s) => s.ready)),
          ended.promise,
        ]);
        if (closed) return;
        await sse.writeSSE({
          event: "subscribed",
          data: JSON.stringify({
            server: serverId,
            rooms: roomsWanted,
            patterns: patternsWanted,
          }),
        });
        while (!closed) {
          if (overflow) {
            await sse.writeSSE({
              event: "error",
              data: JSON.stringify({
                error: {
                  code: "too_slow",
                  message:
                    `more than ${MAX_QUEUED} messages waited for this stream; it is closed (reconnect and resubscribe)`,
                },
              }),
            });
            return;
          }
          if (queue.length === 0) {
            await new Promise<void>((r) => wake = r);
            wake = undefined;
            if (queue.length === 0 && !closed) await sse.write(": ping\n\n");
            continue;
          }
          const batch = queue.splice(0);
          await sse.write(
            batch.map((d) => `event: message\ndata: ${d}\n\n`).join(""),
          );
        }
      } finally {
        clearInterval(ping);
        rooms.closing.removeEventListener("abort", end);
        for (const s of subs) s();
      }
    });
  };

  app.get(
    "/v1/rooms/events",
    requireRole("read"),
    (c) =>
      stream(c, c.req.queries("room") ?? [], c.req.queries("pattern") ?? []),
  );
  app.get(
    "/v1/rooms/:room/events",
    requireRole("read"),
    (c) => stream(c, [c.req.param("room")], []),
  );

  return app;
}
