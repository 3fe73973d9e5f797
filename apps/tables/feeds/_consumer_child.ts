/**
 * A consumer process for feeds_stack_test.ts: fetches from a group's
 * committed offsets, prints each message as a JSON line
 * (`{"p","o","v"}`), then commits, until killed. Args: masters (comma-
 * separated), feed, group, and how long to wait between printing a batch
 * and committing it (ms: a kill then likely lands in between); the token
 * in STRATA_TOKEN.
 */
import { TablesClient } from "../client/tables_client.ts";
import { FeedClient } from "./feed_client.ts";

const [masters, feed, group, delay] = Deno.args;
const commitDelayMs = Number(delay ?? 0);
const client = new TablesClient(masters!.split(","), {
  token: Deno.env.get("STRATA_TOKEN")!,
});
const feeds = new FeedClient(client);
const dec = new TextDecoder();
const out = Deno.stdout;
const enc = new TextEncoder();
console.error("consumer ready");
for (;;) {
  let got = 0;
  for (const b of await feeds.fetch(feed!, group!, { max: 50 })) {
    if (b.messages.length === 0) continue;
    got += b.messages.length;
    const lines = b.messages.map((m) =>
      JSON.stringify({ p: m.partition, o: m.offset, v: dec.decode(m.value) })
    ).join("\n") + "\n";
    const bytes = enc.encode(lines);
    for (let off = 0; off < bytes.length;) {
      off += await out.write(bytes.subarray(off));
    }
    if (commitDelayMs > 0) {
      await new Promise((r) =>
        setTimeout(r, commitDelayMs)
      );
    }
    await feeds.commit(feed!, group!, b.partition, b.next);
  }
  if (got === 0) await new Promise((r) => setTimeout(r, 50));
}
