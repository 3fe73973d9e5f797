/**
 * maxmemory on the RESP listener, in process (one memory tablet served by
 * a stand-in host, the listener on a real socket): CONFIG SET/GET of the
 * bound and policy (admin token only), noeviction answering -OOM to writes
 * while reads and deletes go on, allkeys-lru keeping the bound by evicting
 * keys nobody read lately, INFO's figures.
 */
import assert from "node:assert/strict";
import { TokenAuth } from "@strata/edge";
import { startRespServer } from "./resp_server.ts";
import { MemoryTablet } from "../cache/memory_tablet.ts";
import type { TabletHost } from "../server/tablet_host.ts";
import type { TabletMap } from "./tablet_map.ts";
import type { PubSubPort } from "../shared/pubsub_port.ts";
import { RespTestClient } from "./_resp_test_client.ts";

const range = { start: new Uint8Array(0), end: null };

Deno.test("RESP maxmemory: noeviction answers -OOM, allkeys-lru evicts the least recently used keys", async () => {
  const tablet = new MemoryTablet(
    { name: "redis", families: [{ name: "v" }] } as never,
    range,
  );
  const open = { record: { table: "redis" }, range, tablet, frozen: false };
  const server = startRespServer({
    hostname: "127.0.0.1",
    port: 0,
    serverId: "s1",
    auth: new TokenAuth({ admin: "adm", write: "wr" }),
    host: { find: () => open, list: () => [open] } as unknown as TabletHost,
    serving: () => true,
    map: { table: "redis", known: true } as unknown as TabletMap,
    pubsub: {} as PubSubPort,
    log: () => {},
  });
  const admin = await RespTestClient.connect(server.address);
  const writer = await RespTestClient.connect(server.address);
  const used = async () =>
    Number(/used_memory:(\d+)/.exec(await admin.js("INFO") as string)![1]);
  try {
    assert.equal(await admin.js("AUTH", "adm"), "OK");
    assert.equal(await writer.js("AUTH", "wr"), "OK");
    assert.deepEqual(await admin.js("CONFIG", "GET", "maxmemory*"), [
      "maxmemory",
      "0",
      "maxmemory-policy",
      "noeviction",
      "maxmemory-samples",
      "5",
    ]);
    assert.match(
      (await writer.js("CONFIG", "SET", "maxmemory", "1mb") as {
        error: string;
      }).error,
      /^NOPERM/,
    );
    assert.match(
      (await admin.js("CONFIG", "SET", "maxmemory-policy", "lru") as {
        error: string;
      }).error,
      /must be one of/,
    );
    const v = "x".repeat(100);
    for (let i = 0; i < 100; i++) {
      assert.equal(await writer.js("SET", `k${i}`, v), "OK");
    }
    const full = await used();

    // noeviction: over the bound, writes are refused; reads and deletes
    // go on, and a delete makes room again.
    assert.equal(
      await admin.js("CONFIG", "SET", "maxmemory", String(full - 1)),
      "OK",
    );
    assert.deepEqual(await writer.js("SET", "new", v), {
      error: "OOM command not allowed when used memory > 'maxmemory'.",
    });
    assert.deepEqual(await writer.js("INCR", "n"), {
      error: "OOM command not allowed when used memory > 'maxmemory'.",
    });
    assert.equal(await writer.js("GET", "k1"), v);
    assert.equal(await writer.js("DEL", "k0"), 1);
    assert.equal(await writer.js("SET", "new", v), "OK");
    assert.equal(tablet.rowCount, 100);

    // allkeys-lru: k1-k49 read now, then 50 more keys at a bound of 100:
    // the bound holds, and the 50 evicted are (nearly all) unread ones.
    assert.equal(
      await admin.js(
        "CONFIG",
        "SET",
        "maxmemory-policy",
        "allkeys-lru",
        "maxmemory",
        String(full),
      ),
      "OK",
    );
    await new Promise((r) => setTimeout(r, 5)); // reads strictly later
    for (let i = 1; i < 50; i++) {
      assert.equal(await writer.js("GET", `k${i}`), v);
    }
    for (let i = 0; i < 50; i++) {
      assert.equal(await writer.js("SET", `m${i}`, v), "OK");
    }
    // Checked before each write, as Redis: over by one write at most.
    assert.ok(await used() <= full + 300, `${await used()} > ${full}`);
    let readKept = 0;
    for (let i = 1; i < 50; i++) {
      if (await writer.js("EXISTS", `k${i}`) === 1) readKept++;
    }
    // Sampled, not exact: 42-48 kept in runs here; evicting at random
    // keeps about 25.
    assert.ok(readKept >= 35, `only ${readKept} of 49 keys read lately kept`);
    const info = await admin.js("INFO") as string;
    assert.match(info, /maxmemory_policy:allkeys-lru/);
    assert.ok(Number(/evicted_keys:(\d+)/.exec(info)![1]) >= 45, info);
  } finally {
    admin.close();
    writer.close();
    await server.close();
  }
});
