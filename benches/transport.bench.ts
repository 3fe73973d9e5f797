/**
 * Transport suite: RPC over loopback TCP vs HTTP POST to Hono on
 * Deno.serve; differential encoding vs the plain codec on a Raft-like
 * stream; multi-packet compression vs concatenation, gzip and zstd.
 *
 *   deno task bench:transport        (STRATA_BENCH_QUICK=1 for a smoke run)
 */
import { Hono } from "hono";
import {
  gunzipSync,
  gzipSync,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { z } from "zod";
import {
  appendBatch,
  AppendEntries,
  prng,
  seededBytes,
} from "./fanout_batches.ts";
import {
  defineMessage,
  defineMessageSet,
  type MessageType,
  readVarint,
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
import { type BenchOptions, percentile, QUICK, Suite } from "./harness.ts";
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

function concat(packets: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(packets.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of packets) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Times `cases` in turn, round after round (each round a batch of calls
 * of about 2 ms per case, at least 10; in a new seeded order each round),
 * so that load on a shared machine
 * weighs on every case alike instead of on whichever ran while it peaked.
 * A round's time per call is one sample; the result has their median,
 * mean and p99, and a metric `<name> fastest round ns`: on a loaded
 * machine most rounds are stretched by descheduling, and the fastest
 * round is the best estimate of what a call costs.
 */
function interleaved(
  group: string,
  cases: [string, () => unknown][],
  options: Record<string, BenchOptions>,
): void {
  const rounds = QUICK ? 5 : 200;
  // Calls per round, found after a warm-up of at least 20 ms per case
  // (the JIT settles first).
  const reps = cases.map(([, fn]) => {
    const warm = performance.now();
    while (performance.now() - warm < (QUICK ? 2 : 20)) fn();
    let n = 1;
    for (;;) {
      const t = performance.now();
      for (let i = 0; i < n; i++) fn();
      const ms = performance.now() - t;
      if (ms >= 5) return Math.max(10, Math.round(n * 2 / ms));
      n *= 2;
    }
  });
  const samples: number[][] = cases.map(() => []);
  const random = prng(5);
  const order = cases.map((_, c) => c);
  for (let r = 0; r < rounds; r++) {
    // A new order each round (seeded): what runs before a case (and what
    // it leaves in the caches, or for the collector) varies.
    for (let s = order.length - 1; s > 0; s--) {
      const t = Math.floor(random() * (s + 1));
      [order[s], order[t]] = [order[t]!, order[s]!];
    }
    for (const c of order) {
      const fn = cases[c]![1];
      const t = performance.now();
      for (let i = 0; i < reps[c]!; i++) fn();
      samples[c]!.push((performance.now() - t) * 1e6 / reps[c]!);
    }
  }
  cases.forEach(([name], c) => {
    const sorted = samples[c]!.sort((a, b) => a - b);
    const meanNs = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    const o = options[name] ?? {};
    suite.record({
      group,
      name,
      opsPerSec: 1e9 / meanNs,
      meanNs,
      p50Ns: percentile(sorted, 0.5),
      p99Ns: percentile(sorted, 0.99),
      samples: sorted.length * reps[c]!,
      bytes: o.bytes,
      mbPerSec: o.payloadBytes === undefined
        ? undefined
        : (o.payloadBytes * 1e9 / meanNs) / 1e6,
    });
    suite.metric(`${group}: ${name} fastest round ns`, sorted[0]!);
  });
}

/** The edits format with a zstd frame that keeps zstd's magic. */
const ZSTD_FRAME_FORMAT = 5;

/**
 * The zstd frame of an edits blob that keeps zstd's magic (format 5, see
 * packages/transport's README): `u8 format · varint (count << 1 |
 * editsFramed) · varint editsLength · [edits, when not framed] · frame`.
 */
function packFrame(blob: Uint8Array): Uint8Array | undefined {
  if (blob[0] !== ZSTD_FRAME_FORMAT) return undefined;
  const head = readVarint(blob, 1);
  const edits = readVarint(blob, head.next);
  return blob.subarray(edits.next + (head.value % 2 === 0 ? edits.value : 0));
}

// A zstd frame of 10 bytes: decoding it is what any zstd call costs.
const tinyZstd = zstdCompressSync(new Uint8Array(10));

function multiPacketBench(): void {
  const cases: [string, Uint8Array[], boolean][] = [
    ["3 AppendEntries", appendBatch(3), true],
    ["10 AppendEntries", appendBatch(10), true],
    ["100 AppendEntries", appendBatch(100), true],
    ["100 AppendEntries, binary entries", appendBatch(100, true), true],
    [
      "10 unrelated random packets",
      Array.from({ length: 10 }, (_, i) => seededBytes(prng(i), 4096)),
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
    // zstd told the input's size (pledgedSrcSize: the frame states it,
    // and zstd sizes its tables to it); its receiver can then decode into
    // one buffer of that size (chunkSize), as unpackOne does with the size
    // pack's frame states. Decoding zs with chunkSize is the same: the
    // receiver knows the size from elsewhere.
    const sized = { pledgedSrcSize: bytes };
    const zsSized = zstdCompressSync(plain, sized);
    const exact = { chunkSize: bytes + 1 };
    // unpackOne's one zstd call alone, as unpackOne makes it (into one
    // buffer of the size the frame states): what the rest of unpackOne
    // (reading the blob's header and records, patching the packet) adds,
    // and how much of it is the fixed cost of a zstd call.
    const frame = packFrame(blob);
    const frameSize = frame && zstdDecompressSync(frame).length;
    const frameOptions = frameSize === undefined
      ? undefined
      : { chunkSize: frameSize + 1, maxOutputLength: frameSize };
    // Correctness before speed.
    const back = unpack(blob);
    if (
      back.length !== packets.length ||
      back.some((p, i) => !wireBytesEqual(p, packets[i]!))
    ) {
      throw new Error(`pack round trip failed for ${label}`);
    }
    const last = packets.length - 1;
    if (!wireBytesEqual(unpackOne(blob, last), packets[last]!)) {
      throw new Error(`unpackOne failed for ${label}`);
    }
    const bound = packedSizeBound(packets);
    suite.metric(`${group}: plain concatenation bytes`, bytes);
    suite.metric(`${group}: strata pack bytes`, blob.length);
    suite.metric(`${group}: strata pack format`, blob[0]!);
    suite.metric(`${group}: packedSizeBound bytes`, bound);
    suite.metric(`${group}: gzip bytes`, gz.length);
    suite.metric(`${group}: zstd bytes`, zs.length);
    suite.metric(`${group}: zstd with size bytes`, zsSized.length);
    interleaved(group, [
      ["strata pack", () => pack(packets)],
      ["zstd (concatenation)", () => zstdCompressSync(plain)],
      ["zstd with size (concatenation)", () => zstdCompressSync(plain, sized)],
      ["gzip (concatenation)", () => gzipSync(plain)],
      ["strata unpackOne", () => unpackOne(blob, last)],
      ["strata unpack (all)", () => unpack(blob)],
      ["zstd decompress whole", () => zstdDecompressSync(zs)],
      [
        "zstd decompress whole, size known",
        () => zstdDecompressSync(zs, exact),
      ],
      ["gzip decompress whole", () => gunzipSync(gz)],
      ...(frame
        ? [
          [
            "zstd decompress of pack's frame alone",
            () => zstdDecompressSync(frame, frameOptions),
          ] as [string, () => unknown],
          ["zstd decompress of a 10-byte frame", () =>
            zstdDecompressSync(tinyZstd)] as [string, () => unknown],
        ]
        : []),
    ], {
      "strata pack": { bytes: blob.length, payloadBytes: bytes },
      "zstd (concatenation)": { bytes: zs.length, payloadBytes: bytes },
      "zstd with size (concatenation)": {
        bytes: zsSized.length,
        payloadBytes: bytes,
      },
      "gzip (concatenation)": { bytes: gz.length, payloadBytes: bytes },
      "strata unpackOne": { payloadBytes: packets[last]!.length },
      "strata unpack (all)": { payloadBytes: bytes },
      "zstd decompress whole": { payloadBytes: bytes },
      "zstd decompress whole, size known": { payloadBytes: bytes },
      "gzip decompress whole": { payloadBytes: bytes },
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
      `${group}: size vs zstd with size (no goal)`,
      "bytes",
      blob.length,
      zsSized.length,
    );
    suite.compare(`${group}: size vs gzip`, "bytes", blob.length, gz.length);
    suite.compare(
      `${group}: size vs plain concatenation`,
      "bytes",
      blob.length,
      bytes,
    );
    // The bound: the concatenation plus one byte per receiver and
    // run-length encoded sizes; packedSizeBound is n bytes under it.
    suite.compare(
      `${group}: size vs bound (concatenation + 1 byte per receiver + RLE sizes)`,
      "bytes",
      blob.length,
      bound + packets.length,
      { op: "<=", value: 1 },
    );
    const fastest = (name: string) =>
      suite.metrics[`${group}: ${name} fastest round ns`] as number;
    const stats: [string, (name: string) => number][] = [
      ["fastest round", fastest],
      ["median", (name) => suite.get(group, name).p50Ns],
      ["mean", (name) => suite.get(group, name).meanNs],
    ];
    for (const [stat, time] of stats) {
      // Time goals on the fastest rounds (see interleaved); the median and
      // the mean carry this shared machine's stalls.
      const g = stat === "fastest round" ? goal : undefined;
      suite.compare(
        `${group}: pack time vs zstd compress (${stat})`,
        "time",
        time("strata pack"),
        time("zstd (concatenation)"),
        g,
      );
      // Against the faster way to decode the whole zstd blob: node:zlib's
      // default 16 KiB output chunks, or one buffer of the known size.
      suite.compare(
        `${group}: unpackOne time vs zstd decompress whole, faster way (${stat})`,
        "time",
        time("strata unpackOne"),
        Math.min(
          time("zstd decompress whole"),
          time("zstd decompress whole, size known"),
        ),
        g,
      );
    }
    // zstd told the size sizes its tables to the batch: what a sender
    // that knows its batch could call. Reported, no goal (the is
    // against zstd at its default level as node:zlib calls it).
    suite.compare(
      `${group}: pack time vs zstd with size compress (fastest round, no goal)`,
      "time",
      fastest("strata pack"),
      fastest("zstd with size (concatenation)"),
    );
    if (frame) {
      // Where unpackOne's time goes (fastest rounds): a zstd call's fixed
      // cost (the 10-byte frame's own metric), decoding pack's frame, and
      // what unpackOne adds to that call.
      const alone = fastest("zstd decompress of pack's frame alone");
      const whole = Math.min(
        fastest("zstd decompress whole"),
        fastest("zstd decompress whole, size known"),
      );
      suite.metric(
        `${group}: unpackOne beyond its zstd call ns (reading the blob, patching; fastest rounds)`,
        fastest("strata unpackOne") - alone,
      );
      suite.compare(
        `${group}: pack's frame alone vs zstd decompress whole, faster way (fastest round, no goal)`,
        "time",
        alone,
        whole,
      );
    }
    suite.compare(
      `${group}: unpack all time vs zstd decompress whole (fastest round)`,
      "time",
      fastest("strata unpack (all)"),
      fastest("zstd decompress whole"),
    );
  }
}

/** Byte equality of two packets. */
function wireBytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

multiPacketBench();
await differentialBench();
await rpcBench();
await suite.finish();
