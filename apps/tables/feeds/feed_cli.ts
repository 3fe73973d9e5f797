/**
 * `deno task tables:cli feed …`: the feed commands of the tables CLI
 * (create, append, read, consume, commit, trim, info), through
 * {@link FeedClient}. One JSON object a line on stdout.
 */
import type { TablesClient } from "../client/tables_client.ts";
import { FeedClient, FeedError, type FeedMessage } from "./feed_client.ts";

/** The CLI's flags this uses. */
export interface FeedCliFlags {
  partitions?: number;
  "retention-ms"?: number;
  "retention-bytes"?: number;
  max?: number;
  commit?: boolean;
}

/** Usage lines of the feed commands. */
export const FEED_HELP =
  `  feed create <feed> --partitions N [--retention-ms MS] [--retention-bytes B]
  feed append <feed> <key> <value>               → {"partition","offset"} once durable
  feed read <feed> <partition> <offset> [--max N] messages from an offset
  feed consume <feed> <group> [--max N] [--commit]  from the group's offsets (commit after printing)
  feed commit <feed> <group> <partition> <offset> commit (forward only) the next offset to consume
  feed trim <feed>                               enforce retention now
  feed info <feed>                               settings, low watermark and tail per partition`;

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const show = (m: FeedMessage) =>
  JSON.stringify({
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
    key: text(m.key),
    value: text(m.value),
  });
const int = (s: string | undefined, what: string): number => {
  const n = Number(s);
  if (s === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new FeedError(
      "bad_request",
      `give ${what} as a non-negative integer`,
    );
  }
  return n;
};

/** Runs one feed command. @throws FeedError on bad input or a failed call. */
export async function feedCommand(
  client: TablesClient,
  args: string[],
  f: FeedCliFlags,
): Promise<void> {
  const feeds = new FeedClient(client);
  const [sub, name, ...rest] = args;
  if (!name) throw new FeedError("bad_request", `usage:\n${FEED_HELP}`);
  switch (sub) {
    case "create": {
      const cfg = await feeds.createFeed(name, {
        partitions: int(String(f.partitions), "--partitions"),
        ...(f["retention-ms"] ? { retentionMs: f["retention-ms"] } : {}),
        ...(f["retention-bytes"]
          ? { retentionBytes: f["retention-bytes"] }
          : {}),
      });
      console.log(JSON.stringify({ created: name, ...cfg }));
      return;
    }
    case "append": {
      const [key, value] = rest;
      if (key === undefined || value === undefined) {
        throw new FeedError("bad_request", "feed append <feed> <key> <value>");
      }
      console.log(JSON.stringify(await feeds.append(name, key, value)));
      return;
    }
    case "read": {
      const r = await feeds.read(
        name,
        int(rest[0], "the partition"),
        int(rest[1], "the offset"),
        f.max ?? 100,
      );
      for (const m of r.messages) console.log(show(m));
      console.log(JSON.stringify({ next: r.next, low: r.low }));
      return;
    }
    case "consume": {
      const group = rest[0];
      if (!group) {
        throw new FeedError("bad_request", "feed consume <feed> <group>");
      }
      for (const b of await feeds.fetch(name, group, { max: f.max ?? 100 })) {
        for (const m of b.messages) console.log(show(m));
        const done = f.commit && b.messages.length > 0
          ? await feeds.commit(name, group, b.partition, b.next)
          : undefined;
        console.log(JSON.stringify({
          partition: b.partition,
          from: b.from,
          next: b.next,
          ...(done ? { committed: done.committed } : {}),
        }));
      }
      return;
    }
    case "commit": {
      const group = rest[0];
      if (!group) {
        throw new FeedError(
          "bad_request",
          "feed commit <feed> <group> <partition> <offset>",
        );
      }
      const r = await feeds.commit(
        name,
        group,
        int(rest[1], "the partition"),
        int(rest[2], "the offset"),
      );
      console.log(JSON.stringify(r));
      return;
    }
    case "trim":
      console.log(JSON.stringify({ low: await feeds.trim(name) }));
      return;
    case "info": {
      const cfg = await feeds.config(name);
      const partitions = [];
      for (let p = 0; p < cfg.partitions; p++) {
        partitions.push({
          partition: p,
          low: await feeds.lowWatermark(name, p),
          tail: await feeds.tail(name, p),
        });
      }
      console.log(JSON.stringify({ feed: name, ...cfg, partitions }));
      return;
    }
    default:
      throw new FeedError("bad_request", `usage:\n${FEED_HELP}`);
  }
}
