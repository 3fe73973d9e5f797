/**
 * Transport suite: RPC over loopback TCP vs HTTP POST to Hono on
 * Deno.serve; differential encoding vs the plain codec on a Raft-like
 * stream; multi-packet compression vs concatenation, gzip and zstd.
 *
 *   deno task bench:transport        (STRATA_BENCH_QUICK=1 for a smoke run)
 */
import { Hono } from "hono";
import {
  constants as zlibConstants,
  gunzipSync,
  gzipSync,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { z } from "zod";
import {
  defineMessage,
  defineMessageSet,
  type MessageType,
} from "@strata/codec";
import {
  connectTcp,
  DifferentialDecoder,
  DifferentialEncoder,
  listenTcp,
  pack,
  packedSizeBound,
  unpack,
  unpackOne,
} from "@strata/transport";
import { QUICK, Suite } from "./harness.ts";
import { loadBenchResult, runLoad } from "./http_load.ts";

const suite = new Suite(
  "transport",
  "TCP RPC vs HTTP/Hono, differential encoding vs plain codec, multi-packet compression vs gzip/zstd",
);

// ---------------------------------------------------------------- RPC ----

const Payload = defineMessage(
  "Payload",
  z.object({ seq: z.number().int(), data: z.instanceof(Uint8Array) }),
);
const rpcSet = defineMessageSet([Payload]);
type RpcSet = readonly [typeof Payload];

async function rpcBench(): Promise<void> {
  const durationMs = QUICK ? 300 : 3_000;
  const warmupMs = QUICK ? 100 : 500;
  const server = listenTcp<RpcSet>({
    set: rpcSet,
    handlers: { onRequest: (req) => req },
  });
  const client = await connectTcp<RpcSet>({ port: server.port }, {
    set: rpcSet,
  });
  const app = new Hono();
  app.post("/echo", async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    return c.body(body, 200, { "content-type": "application/octet-stream" });
  });
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.fetch,
  );
  const url = `http://127.0.0.1:${http.addr.port}/echo`;
  // Every call carries 1 KiB that differs from the last one, so the
  // differential encoding saves nothing here: this measures the RPC path.
  const data = (seq: number) => {
    const d = new Uint8Array(1024);
    for (let i = 0; i < 1024; i += 64) d[i] = (seq + i) & 0xff;
    return d;
  };
  try {
    for (const inFlight of [1, 16, 64]) {
      const group = `RPC 1 KiB round trip, ${inFlight} in flight`;
      const tcp = await runLoad(inFlight, durationMs, async (w, seq) => {
        const r = await client.call(Payload, {
          seq: w * 1e6 + seq,
          data: data(seq),
        });
        return r.message.data.length === 1024;
      }, warmupMs);
      const h = await runLoad(inFlight, durationMs, async (_w, seq) => {
        const res = await fetch(url, { method: "POST", body: data(seq) });
        const body = await res.arrayBuffer();
        return res.ok && body.byteLength === 1024;
      }, warmupMs);
      for (
        const [name, r] of [["strata TCP RPC", tcp], [
          "HTTP POST (Hono)",
          h,
        ]] as const
      ) {
        suite.record({
          ...loadBenchResult(group, name, r),
          mbPerSec: (r.opsPerSec * 2048) / 1e6,
        });
        if (r.errors > 0) suite.metric(`${group} · ${name} errors`, r.errors);
      }
      suite.compare(
        `${group}: throughput vs HTTP`,
        "throughput",
        tcp.opsPerSec,
        h.opsPerSec,
        { op: ">=", value: 1 },
      );
      suite.compare(
        `${group}: p50 latency vs HTTP`,
        "time",
        tcp.p50Ns,
        h.p50Ns,
        { op: "<=", value: 1 },
      );
      suite.compare(
        `${group}: p99 latency vs HTTP`,
        "time",
        tcp.p99Ns,
        h.p99Ns,
      );
    }
  } finally {
    await client.close();
    await server.close();
    await http.shutdown();
  }
}

// ------------------------------------------------------- differential ----

const Entry = z.object({
  index: z.number().int(),
  term: z.number().int(),
  data: z.instanceof(Uint8Array),
});
const Heartbeat = defineMessage(
  "Heartbeat",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    commit: z.number().int(),
    context: z.instanceof(Uint8Array).optional(),
  }),
);
const HeartbeatResponse = defineMessage(
  "HeartbeatResponse",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    reject: z.boolean(),
  }),
);
const AppendEntries = defineMessage(
  "AppendEntries",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    logTerm: z.number().int(),
    index: z.number().int(),
    commit: z.number().int(),
    entries: z.array(Entry),
  }),
);
const AppendResponse = defineMessage(
  "AppendResponse",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    index: z.number().int(),
    reject: z.boolean(),
    rejectHint: z.number().int(),
  }),
);
const RequestVote = defineMessage(
  "RequestVote",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    logTerm: z.number().int(),
    index: z.number().int(),
  }),
);
const VoteResponse = defineMessage(
  "VoteResponse",
  z.object({
    term: z.number().int(),
    from: z.string(),
    to: z.string(),
    granted: z.boolean(),
  }),
);
const raftSet = defineMessageSet([
  AppendEntries,
  AppendResponse,
  Heartbeat,
  HeartbeatResponse,
  RequestVote,
  VoteResponse,
]);

// deno-lint-ignore no-explicit-any
type Item = { type: MessageType<string, any>; message: unknown };

/** A kind's type id: its position in the set's sorted kinds, plus one. */
const idOf = (type: Item["type"]): number => raftSet.types.indexOf(type) + 1;

/** A deterministic PRNG so every run streams the same messages. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One leader↔follower connection of a mostly idle Raft group: heartbeats
 * every tick with their responses (≈90% of messages), an occasional
 * AppendEntries of 1–3 small entries with its response, and an election
 * now and then. Both directions share the count; each has its own state.
 */
function raftStream(count: number): { toFollower: Item[]; toLeader: Item[] } {
  const random = prng(7);
  const leader = "raft-node-1.dc-eu-west-1";
  const follower = "raft-node-3.dc-eu-west-1";
  let term = 12;
  let index = 48_210;
  let commit = index;
  const toFollower: Item[] = [];
  const toLeader: Item[] = [];
  while (toFollower.length + toLeader.length < count) {
    const r = random();
    if (r < 0.9) {
      toFollower.push({
        type: Heartbeat,
        message: { term, from: leader, to: follower, commit },
      });
      toLeader.push({
        type: HeartbeatResponse,
        message: { term, from: follower, to: leader, reject: false },
      });
    } else if (r < 0.995) {
      const n = 1 + Math.floor(random() * 3);
      const entries = Array.from({ length: n }, (_, i) => ({
        index: index + 1 + i,
        term,
        data: crypto.getRandomValues(
          new Uint8Array(40 + Math.floor(random() * 80)),
        ),
      }));
      toFollower.push({
        type: AppendEntries,
        message: {
          term,
          from: leader,
          to: follower,
          logTerm: term,
          index,
          commit,
          entries,
        },
      });
      index += n;
      toLeader.push({
        type: AppendResponse,
        message: {
          term,
          from: follower,
          to: leader,
          index,
          reject: false,
          rejectHint: 0,
        },
      });
      commit = index;
    } else {
      term++;
      toFollower.push({
        type: RequestVote,
        message: { term, from: leader, to: follower, logTerm: term - 1, index },
      });
      toLeader.push({
        type: VoteResponse,
        message: { term, from: follower, to: leader, granted: true },
      });
    }
  }
  return { toFollower, toLeader };
}

async function differentialBench(): Promise<void> {
  const count = QUICK ? 2_000 : 20_000;
  const { toFollower, toLeader } = raftStream(count);
  const directions = [toFollower, toLeader];
  const frameOverhead = 14; // codec frame header + CRC32C
  let plainPayload = 0;
  let diffPayload = 0;
  let frames = 0;
  for (const stream of directions) {
    const enc = new DifferentialEncoder();
    const dec = new DifferentialDecoder();
    for (const item of stream) {
      const id = idOf(item.type);
      const plain = item.type.encode(item.message);
      plainPayload += plain.length;
      const body = enc.encode(id, item.type, item.message);
      body.commit();
      diffPayload += body.bytes.length;
      dec.decode(id, item.type, body.bytes, body.differential);
      frames++;
    }
  }
  const group = `Raft stream of ${frames} messages (≈90% heartbeats)`;
  const plainWire = plainPayload + frames * frameOverhead;
  const diffWire = diffPayload + frames * frameOverhead;
  suite.metric(`${group}: plain payload bytes`, plainPayload);
  suite.metric(`${group}: differential payload bytes`, diffPayload);
  suite.metric(`${group}: plain bytes on the wire (frames)`, plainWire);
  suite.metric(`${group}: differential bytes on the wire (frames)`, diffWire);
  const all = [...toFollower, ...toLeader];
  const ids = all.map((i) => idOf(i.type));
  await suite.bench(group, "plain codec encode+decode", () => {
    for (let i = 0; i < all.length; i++) {
      const item = all[i]!;
      item.type.decode(item.type.encode(item.message));
    }
  }, { opsPerCall: all.length, bytes: plainWire });
  await suite.bench(group, "differential encode+decode", () => {
    for (const stream of directions) {
      const enc = new DifferentialEncoder();
      const dec = new DifferentialDecoder();
      let k = stream === toFollower ? 0 : toFollower.length;
      for (const item of stream) {
        const id = ids[k++]!;
        const body = enc.encode(id, item.type, item.message);
        body.commit();
        dec.decode(id, item.type, body.bytes, body.differential);
      }
    }
  }, { opsPerCall: all.length, bytes: diffWire });
  suite.compare(
    `${group}: bytes on the wire (frames included) vs plain codec`,
    "bytes",
    diffWire,
    plainWire,
    { op: "<=", value: 1 / 3 },
  );
  suite.compare(
    `${group}: payload bytes vs plain codec`,
    "bytes",
    diffPayload,
    plainPayload,
    { op: "<=", value: 1 / 3 },
  );
  suite.compare(
    `${group}: encode+decode CPU vs plain codec`,
    "time",
    suite.get(group, "differential encode+decode").meanNs,
    suite.get(group, "plain codec encode+decode").meanNs,
  );
}

// ------------------------------------------------------- multi-packet ----

function appendBatch(n: number, binary = false): Uint8Array[] {
  const random = prng(11);
  const entries = Array.from({ length: 16 }, (_, i) => ({
    index: 90_001 + i,
    term: 12,
    // A Raft command: JSON with a base64 value (compressible text), or
    // opaque bytes (already compressed or encrypted by the client).
    data: binary
      ? crypto.getRandomValues(new Uint8Array(256))
      : new TextEncoder().encode(
        `{"op":"put","key":"user/${100_000 + i}/profile","value":"${
          btoa(
            String.fromCharCode(...crypto.getRandomValues(new Uint8Array(180))),
          )
        }"}`,
      ),
  }));
  return Array.from({ length: n }, (_, i) =>
    AppendEntries.encode({
      term: 12,
      from: "raft-node-1.dc-eu-west-1",
      to: `raft-node-${i + 2}.dc-us-east-2`,
      logTerm: 12,
      // Followers are at different points: their headers differ.
      index: 90_000 - Math.floor(random() * 3),
      commit: 89_990 + i,
      entries,
    }));
}

function concat(packets: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(packets.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of packets) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function multiPacketBench(): Promise<void> {
  const cases: [string, Uint8Array[], boolean][] = [
    ["3 AppendEntries", appendBatch(3), true],
    ["10 AppendEntries", appendBatch(10), true],
    ["100 AppendEntries", appendBatch(100), true],
    ["100 AppendEntries, binary entries", appendBatch(100, true), true],
    [
      "10 unrelated random packets",
      Array.from(
        { length: 10 },
        () => crypto.getRandomValues(new Uint8Array(4096)),
      ),
      false,
    ],
  ];
  for (const [label, packets, similar] of cases) {
    const group = `fan-out pack: ${label}`;
    const plain = concat(packets);
    const bytes = plain.length;
    const blob = pack(packets);
    const gz = gzipSync(plain);
    const zs = zstdCompressSync(plain);
    // zstd at the level pack codes its reference with, for scale (sizes
    // only: not a goal).
    const zs7 = zstdCompressSync(plain, {
      params: { [zlibConstants.ZSTD_c_compressionLevel]: 7 },
    });
    // Correctness before speed.
    const back = unpack(blob);
    if (
      back.length !== packets.length ||
      back.some((p, i) => !wireBytesEqual(p, packets[i]!))
    ) {
      throw new Error(`pack round trip failed for ${label}`);
    }
    suite.metric(`${group}: plain concatenation bytes`, bytes);
    suite.metric(`${group}: strata pack bytes`, blob.length);
    suite.metric(`${group}: strata pack format`, blob[0]!);
    suite.metric(`${group}: stated bound bytes`, packedSizeBound(packets));
    suite.metric(`${group}: gzip bytes`, gz.length);
    suite.metric(`${group}: zstd bytes`, zs.length);
    suite.metric(`${group}: zstd level 7 bytes`, zs7.length);
    await suite.bench(group, "strata pack", () => pack(packets), {
      bytes: blob.length,
      payloadBytes: bytes,
    });
    await suite.bench(group, "gzip (concatenation)", () => gzipSync(plain), {
      bytes: gz.length,
      payloadBytes: bytes,
    });
    await suite.bench(
      group,
      "zstd (concatenation)",
      () => zstdCompressSync(plain),
      { bytes: zs.length, payloadBytes: bytes },
    );
    const last = packets.length - 1;
    await suite.bench(group, "strata unpackOne", () => unpackOne(blob, last), {
      payloadBytes: packets[last]!.length,
    });
    await suite.bench(group, "strata unpack (all)", () => unpack(blob), {
      payloadBytes: bytes,
    });
    await suite.bench(
      group,
      "zstd decompress whole",
      () => zstdDecompressSync(zs),
      { payloadBytes: bytes },
    );
    await suite.bench(group, "gzip decompress whole", () => gunzipSync(gz), {
      payloadBytes: bytes,
    });
    const goal = similar ? { op: "<=" as const, value: 1 } : undefined;
    suite.compare(
      `${group}: size vs zstd`,
      "bytes",
      blob.length,
      zs.length,
      goal,
    );
    suite.compare(
      `${group}: size vs zstd level 7`,
      "bytes",
      blob.length,
      zs7.length,
    );
    suite.compare(`${group}: size vs gzip`, "bytes", blob.length, gz.length);
    suite.compare(
      `${group}: size vs plain concatenation`,
      "bytes",
      blob.length,
      bytes,
    );
    suite.compare(
      `${group}: size vs stated bound`,
      "bytes",
      blob.length,
      packedSizeBound(packets),
      { op: "<=", value: 1 },
    );
    suite.compare(
      `${group}: pack time vs zstd compress`,
      "time",
      suite.get(group, "strata pack").meanNs,
      suite.get(group, "zstd (concatenation)").meanNs,
      goal,
    );
    suite.compare(
      `${group}: unpackOne time vs zstd decompress`,
      "time",
      suite.get(group, "strata unpackOne").meanNs,
      suite.get(group, "zstd decompress whole").meanNs,
      { op: "<=", value: 1 },
    );
    suite.compare(
      `${group}: unpack all time vs zstd decompress`,
      "time",
      suite.get(group, "strata unpack (all)").meanNs,
      suite.get(group, "zstd decompress whole").meanNs,
    );
  }
}

/** Byte equality of two packets. */
function wireBytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

await multiPacketBench();
await differentialBench();
await rpcBench();
await suite.finish();
