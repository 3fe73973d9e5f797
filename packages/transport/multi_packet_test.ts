import assert from "node:assert/strict";
import fc from "fast-check";
import {
  pack,
  packedCount,
  packedSizeBound,
  unpack,
  unpackOne,
} from "./multi_packet.ts";
import { isTransportError } from "./transport_error.ts";
import { encodeVarint, varintLength } from "@strata/codec";
import { zstdCompressSync } from "node:zlib";

const runs = Deno.env.get("STRATA_LONG") === "1" ? 2000 : 200;

/** Fan-out-like batches: a shared body with per-packet headers and edits. */
const similarBatch = fc.record({
  body: fc.uint8Array({ minLength: 0, maxLength: 3000 }),
  headers: fc.array(fc.uint8Array({ maxLength: 40 }), {
    minLength: 1,
    maxLength: 12,
  }),
  cut: fc.nat(),
}).map(({ body, headers, cut }) =>
  headers.map((h, i) => {
    // Every third packet carries only a prefix of the body.
    const tail = i % 3 === 2 ? body.subarray(0, cut % (body.length + 1)) : body;
    const out = new Uint8Array(h.length + tail.length);
    out.set(h);
    out.set(tail, h.length);
    return out;
  })
);

/** Packets made from one base by random inserts and deletes anywhere. */
const editedBatch = fc.record({
  base: fc.uint8Array({ minLength: 0, maxLength: 4000 }),
  edits: fc.array(
    fc.array(
      fc.record({
        at: fc.nat(),
        del: fc.nat({ max: 300 }),
        ins: fc.uint8Array({ maxLength: 200 }),
      }),
      { maxLength: 4 },
    ),
    { minLength: 1, maxLength: 10 },
  ),
}).map(({ base, edits }) =>
  edits.map((ops) => {
    let p = base;
    for (const op of ops) {
      const at = op.at % (p.length + 1);
      const out = new Uint8Array(
        p.length - Math.min(op.del, p.length - at) + op.ins.length,
      );
      out.set(p.subarray(0, at));
      out.set(op.ins, at);
      out.set(
        p.subarray(at + Math.min(op.del, p.length - at)),
        at + op.ins.length,
      );
      p = out;
    }
    return p;
  })
);

/**
 * Fan-out batches: one message per receiver with header fields that count
 * up (receiver id, commit), vary at random, cycle among a few values, or
 * change length (an id crossing a power of ten), around a shared body.
 */
const fanOutBatch = fc.record({
  body: fc.uint8Array({ minLength: 0, maxLength: 2000 }),
  count: fc.integer({ min: 1, max: 40 }),
  start: fc.integer({ min: 0, max: 200 }),
  lag: fc.array(fc.nat({ max: 300 }), { minLength: 40, maxLength: 40 }),
  tail: fc.uint8Array({ maxLength: 30 }),
  cycle: fc.integer({ min: 1, max: 5 }),
}).map(({ body, count, start, lag, tail, cycle }) =>
  Array.from({ length: count }, (_, i) => {
    const head = new TextEncoder().encode(
      `{"to":"node-${start + i}","index":${90_000 - lag[i]!},"commit":${
        1000 + i
      },"term":${7 + (i % cycle) * 1111},"entries":`,
    );
    const out = new Uint8Array(head.length + body.length + tail.length);
    out.set(head);
    out.set(body, head.length);
    out.set(tail, head.length + body.length);
    return out;
  })
);

/**
 * Fan-out batches whose bodies come from a small alphabet (1, 2, 63, 64
 * or 65 symbols, or any other up to 80: base64, digits, bits), with a
 * header per receiver and, at times, packets of the alphabet unrelated
 * to the others (stored whole): what format 6's packed literals code.
 */
const smallAlphabetBatch = fc.record({
  size: fc.oneof(
    fc.constantFrom(1, 2, 63, 64, 65),
    fc.integer({ min: 1, max: 80 }),
  ),
  base: fc.nat({ max: 255 }),
  picks: fc.array(fc.nat(), { maxLength: 2500 }),
  count: fc.integer({ min: 1, max: 12 }),
  unrelated: fc.array(fc.array(fc.nat(), { maxLength: 400 }), {
    maxLength: 3,
  }),
}).map(({ size, base, picks, count, unrelated }) => {
  const symbol = (i: number) => (base + 3 * (i % size)) & 0xff;
  const body = Uint8Array.from(picks, symbol);
  const packets = Array.from({ length: count }, (_, i) => {
    const head = new TextEncoder().encode(`{"to":"node-${i}","value":"`);
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  });
  return [...packets, ...unrelated.map((u) => Uint8Array.from(u, symbol))];
});

const anyBatch = fc.array(fc.uint8Array({ maxLength: 600 }), {
  maxLength: 20,
});

/** Unrelated packets in runs of equal sizes (what the plain layout codes). */
const sameSizes = fc.array(
  fc.tuple(fc.integer({ min: 1, max: 20 }), fc.nat({ max: 100 })).chain((
    [k, size],
  ) =>
    fc.array(fc.uint8Array({ minLength: size, maxLength: size }), {
      minLength: k,
      maxLength: k,
    })
  ),
  { maxLength: 4 },
).map((runs) => runs.flat());

/** Every kind of batch above: the properties that hold for any input. */
const everyBatch = fc.oneof(
  anyBatch,
  similarBatch,
  editedBatch,
  fanOutBatch,
  sameSizes,
  smallAlphabetBatch,
);

Deno.test("pack then unpack restores any list of packets exactly", () => {
  fc.assert(
    fc.property(
      everyBatch,
      (packets) => {
        const blob = pack(packets);
        assert.deepEqual(unpack(blob), packets);
        assert.equal(packedCount(blob), packets.length);
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("unpackOne extracts exactly the packet unpack would", () => {
  fc.assert(
    fc.property(
      everyBatch.filter((p) => p.length > 0),
      fc.nat(),
      (packets, pick) => {
        const i = pick % packets.length;
        assert.deepEqual(unpackOne(pack(packets), i), packets[i]);
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("small-alphabet batches: every receiver's packet comes back exact, within the bound", () => {
  fc.assert(
    fc.property(smallAlphabetBatch, (packets) => {
      const blob = pack(packets);
      assert.ok(blob.length <= statedBound(packets) - packets.length);
      for (let i = 0; i < packets.length; i++) {
        assert.deepEqual(unpackOne(blob, i), packets[i]);
      }
    }),
    { numRuns: runs },
  );
});

Deno.test("a fan-out batch of base64 values is sent as format 6, its literals packed to 6 bits", () => {
  // 3 packets of 16 JSON commands with base64 values of random bytes,
  // as in bench:transport: zstd's frame would be larger, and a receiver
  // of format 6 decodes without a zstd call.
  const value = () =>
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(180))));
  const body = new TextEncoder().encode(
    Array.from(
      { length: 16 },
      (_, i) => `{"op":"put","key":"user/${100_000 + i}","value":"${value()}"}`,
    ).join(","),
  );
  const packets = Array.from({ length: 3 }, (_, i) => {
    const head = new TextEncoder().encode(`{"to":"node-${i + 2}","entries":[`);
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  });
  const blob = pack(packets);
  assert.equal(blob[0], 6);
  // 3,840 base64 characters at 6 bits: 2,880 bytes, plus the rest of
  // one packet (its JSON, mostly matches: ≈ 200 bytes) and the edits.
  assert.ok(blob.length < 2880 + 240, `${blob.length} bytes`);
  for (let i = 0; i < 3; i++) assert.deepEqual(unpackOne(blob, i), packets[i]);
});

/**
 * The bound the issue states, computed here on its own: the plain
 * concatenation plus one byte per receiver plus the sizes run-length
 * encoded (a varint count and a varint size per run of equal sizes), plus
 * a format byte and the packet count.
 */
function statedBound(packets: Uint8Array[]): number {
  let size = 1 + varintLength(packets.length) + packets.length;
  for (let i = 0; i < packets.length;) {
    let j = i + 1;
    while (j < packets.length && packets[j]!.length === packets[i]!.length) j++;
    size += varintLength(j - i) + varintLength(packets[i]!.length);
    i = j;
  }
  return size + packets.reduce((s, p) => s + p.length, 0);
}

Deno.test("no input packs larger than the concatenation plus one byte per receiver and run-length encoded sizes", () => {
  fc.assert(
    fc.property(
      everyBatch,
      (packets) => {
        const blob = pack(packets);
        const bound = packedSizeBound(packets);
        assert.ok(blob.length <= bound, `${blob.length} > ${bound}`);
        // What pack promises is n bytes under the stated bound.
        assert.equal(bound, statedBound(packets) - packets.length);
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("similar packets share their common content once", () => {
  const body = crypto.getRandomValues(new Uint8Array(8192));
  const packets = Array.from({ length: 10 }, (_, i) => {
    const header = new TextEncoder().encode(
      `AppendEntries to=node-${i} term=7 prevIndex=${1000 + i * 3}`,
    );
    const out = new Uint8Array(header.length + body.length);
    out.set(header);
    out.set(body, header.length);
    return out;
  });
  const blob = pack(packets);
  const plain = packets.reduce((s, p) => s + p.length, 0);
  assert.ok(
    blob.length < body.length + 10 * 300,
    `${blob.length} bytes for ${plain} plain`,
  );
  assert.deepEqual(unpack(blob), packets);
});

Deno.test("packets edited anywhere still share what they have in common", () => {
  const base = crypto.getRandomValues(new Uint8Array(20_000));
  const packets = Array.from({ length: 8 }, (_, i) => {
    // A lagging follower's packet: extra entries in front, a new header.
    const extra = crypto.getRandomValues(new Uint8Array(500 * (i % 3)));
    const out = new Uint8Array(extra.length + base.length);
    out.set(extra);
    out.set(base, extra.length);
    out[out.length - 5000] = i; // and one byte changed deep inside
    return out;
  });
  const blob = pack(packets);
  assert.deepEqual(unpack(blob), packets);
  assert.ok(blob.length < base.length + 8 * 1500, `${blob.length} bytes`);
});

Deno.test("edits with long runs of equal bytes and large values round-trip", () => {
  // Two header fields 240 bytes apart, one counting by 1 (small values),
  // one jumping by 37 (large ones): runs of zeros longer than 127.
  const base = crypto.getRandomValues(new Uint8Array(1000));
  const packets = Array.from({ length: 50 }, (_, i) => {
    const p = base.slice();
    p[10] = i;
    p[250] = (i * 37) & 0xff;
    return p;
  });
  const blob = pack(packets);
  assert.notEqual(blob[0], 3, "an edits format, not the plain layout");
  assert.ok(blob.length < 1100, `${blob.length} bytes`);
  assert.deepEqual(unpack(blob), packets);
  for (const i of [0, 1, 2, 17, 49]) {
    assert.deepEqual(unpackOne(blob, i), packets[i]);
  }
});

Deno.test("unrelated random packets pack to the plain layout", () => {
  const packets = Array.from(
    { length: 5 },
    () => crypto.getRandomValues(new Uint8Array(2000)),
  );
  assert.equal(pack(packets).length, packedSizeBound(packets));
});

Deno.test("a fan-out batch packs smaller than zstd on the concatenation", () => {
  // A Raft AppendEntries shape: JSON commands with base64 values, a
  // header per receiver. zstd's default level, as the bench compares.
  const body = new TextEncoder().encode(
    Array.from(
      { length: 12 },
      (_, i) =>
        `{"op":"put","key":"user/${i}","value":"${
          btoa(
            String.fromCharCode(...crypto.getRandomValues(new Uint8Array(120))),
          )
        }"}`,
    ).join(","),
  );
  for (const count of [3, 20, 100]) {
    const packets = Array.from({ length: count }, (_, i) => {
      const head = new TextEncoder().encode(
        `{"to":"node-${i + 2}","index":${90_000 - (i * 7) % 3},"commit":${
          5000 + i
        },"entries":[`,
      );
      const out = new Uint8Array(head.length + body.length + 2);
      out.set(head);
      out.set(body, head.length);
      out.set([93, 125], head.length + body.length);
      return out;
    });
    const blob = pack(packets);
    const concat = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
    packets.reduce((at, p) => (concat.set(p, at), at + p.length), 0);
    const zstd = zstdCompressSync(concat).length;
    assert.ok(blob.length < zstd, `${count}: ${blob.length} ≥ zstd ${zstd}`);
    assert.deepEqual(unpack(blob), packets);
    assert.deepEqual(unpackOne(blob, count - 1), packets[count - 1]);
  }
});

Deno.test("identical packets (one change to many learners) pack smaller than zstd", () => {
  const frame = new TextEncoder().encode(
    `{"from":1000,"to":1000,"changes":[{"key":"p/17","value":"${
      "v".repeat(100)
    }","revision":1000}]}`,
  );
  for (const count of [2, 10, 500]) {
    const packets = Array.from({ length: count }, () => frame);
    const concat = new Uint8Array(count * frame.length);
    packets.forEach((p, i) => concat.set(p, i * frame.length));
    const blob = pack(packets);
    const zstd = zstdCompressSync(concat).length;
    assert.ok(blob.length < zstd, `${count}: ${blob.length} ≥ zstd ${zstd}`);
    assert.deepEqual(unpackOne(blob, count - 1), frame);
  }
});

Deno.test("corrupted blobs are typed errors or packets, never a crash or hang", () => {
  fc.assert(
    fc.property(
      fc.oneof(similarBatch, fanOutBatch, editedBatch),
      fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 255 }) }), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(),
      (packets, flips, cut) => {
        const blob = pack(packets).slice();
        for (const f of flips) blob[f.at % blob.length] = f.value;
        const bad = [blob, blob.subarray(0, cut % (blob.length + 1))];
        for (const b of bad) {
          for (const f of [() => unpack(b), () => unpackOne(b, 0)]) {
            try {
              f();
            } catch (e) {
              assert.ok(
                isTransportError(e, "protocol_error") ||
                  e instanceof RangeError,
                String(e),
              );
            }
          }
        }
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("the plain layout: run-length encoded sizes, then the packets", () => {
  const blob = new Uint8Array([
    3, // format
    4, // count
    2,
    2, // 2 packets of 2 bytes
    1,
    0, // 1 empty packet
    1,
    3, // 1 packet of 3 bytes
    ...new TextEncoder().encode("abcdXYZ"),
  ]);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.deepEqual(unpack(blob).map(text), ["ab", "cd", "", "XYZ"]);
  assert.equal(text(unpackOne(blob, 3)), "XYZ");
  assert.equal(packedCount(blob), 4);
  // Formats 1 and 2 (earlier versions) are not read.
  for (const f of [1, 2]) {
    assert.throws(
      () => unpack(new Uint8Array([f, ...blob.subarray(1)])),
      (e) => isTransportError(e, "protocol_error"),
    );
  }
});

Deno.test("malformed blobs are typed errors, never crashes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), (bytes, i) => {
      for (const f of [() => unpack(bytes), () => unpackOne(bytes, i % 4)]) {
        try {
          f();
        } catch (e) {
          assert.ok(
            isTransportError(e, "protocol_error") || e instanceof RangeError,
            String(e),
          );
        }
      }
    }),
    { numRuns: runs },
  );
  const blob = pack([new Uint8Array([1, 2, 3]), new Uint8Array([4])]);
  for (let cut = 0; cut < blob.length; cut++) {
    assert.throws(
      () => unpack(blob.subarray(0, cut)),
      (e) => isTransportError(e, "protocol_error"),
    );
  }
  assert.throws(() => unpackOne(blob, 2), RangeError);
});

Deno.test("a small blob that would unpack to too many bytes is rejected", () => {
  // Plain: 65 536 packets of 1 MiB announced (64 GiB), 1 MiB present.
  const head3 = [
    3,
    ...encodeVarint(65_536),
    ...encodeVarint(65_536),
    ...encodeVarint(1 << 20),
  ];
  const blob3 = new Uint8Array(head3.length + (1 << 20));
  blob3.set(head3);
  assert.throws(
    () => unpack(blob3),
    (e) => isTransportError(e, "protocol_error"),
  );
  // Edits: a 1 MiB reference of zeros (a tiny zstd frame) and 4 095
  // copies of it as one edit group (4 GiB); format 6 (an lz section): a
  // 16 KiB reference and 65 535 copies (1 GiB).
  for (
    const [format, size, copies] of [[4, 1 << 20, 4095], [6, 1 << 14, 65_535]]
  ) {
    const packets = Array.from({ length: 3 }, () => new Uint8Array(size!));
    const blob = pack(packets);
    // format · count 3 << 1, edits raw · edits length · record head
    // (k = 2 << 3 | kind 1) · the rest of the record · frame or section.
    assert.deepEqual([...blob.subarray(0, 2)], [format, 3 << 1]);
    assert.equal(blob[3], 2 * 8 + 1);
    const record = encodeVarint(copies! * 8 + 1);
    const more = new Uint8Array([
      format!,
      ...encodeVarint((copies! + 1) << 1),
      blob[2]! + record.length - 1,
      ...record,
      ...blob.subarray(4),
    ]);
    assert.throws(
      () => unpack(more),
      (e) => isTransportError(e, "protocol_error"),
    );
    assert.equal(unpackOne(more, copies!).length, size);
  }
  // An lz section stating 1 TiB: refused before anything is allocated.
  const hugeLz = new Uint8Array([6, 1 << 1, 0, ...encodeVarint(2 ** 40), 0]);
  assert.throws(
    () => unpack(hugeLz),
    (e) => isTransportError(e, "protocol_error") && /announced/.test(e.message),
  );
  // A frame stating 1 TiB of content: refused before anything is
  // allocated for it (unpacking sizes its buffer from the frame).
  const huge = new Uint8Array([
    5, // format
    1 << 1, // one packet, edits raw
    0, // no edits
    ...[0x28, 0xb5, 0x2f, 0xfd], // zstd magic
    0xe0, // 8-byte content size, single segment
    ...[0, 0, 0, 0, 0, 1, 0, 0], // 2^40
    ...[1, 0, 0], // the start of a block
  ]);
  for (const f of [() => unpack(huge), () => unpackOne(huge, 0)]) {
    assert.throws(
      f,
      (e) =>
        isTransportError(e, "protocol_error") && /announced/.test(e.message),
    );
  }
});

Deno.test("an empty batch and empty packets round-trip", () => {
  assert.deepEqual(unpack(pack([])), []);
  const packets = [new Uint8Array(0), new Uint8Array([9]), new Uint8Array(0)];
  assert.deepEqual(unpack(pack(packets)), packets);
  assert.deepEqual(unpackOne(pack(packets), 2), new Uint8Array(0));
});

/** `n` words of a small vocabulary, seeded (the same text every run). */
function words(n: number): Uint8Array {
  const vocabulary = ("the quick brown fox jumps over a lazy dog while raft " +
    "leaders append entries to followers and learners").split(" ");
  let seed = 3;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  return new TextEncoder().encode(
    Array.from({ length: n }, () => vocabulary[next() % vocabulary.length])
      .join(" "),
  );
}

Deno.test("frames of 1 KiB or more keep zstd's magic (format 5), smaller ones leave it out (format 4); both read", () => {
  const fanOut = (body: Uint8Array, count: number) =>
    Array.from({ length: count }, (_, i) => {
      const head = new TextEncoder().encode(`{"to":"node-${i}","entries":`);
      const out = new Uint8Array(head.length + body.length);
      out.set(head);
      out.set(body, head.length);
      return out;
    });
  // Text of words: many short matches, literals of ≈ 4 bits each, what
  // zstd codes better than the lz section of format 6.
  const big = fanOut(words(2000), 3);
  const small = fanOut(words(80), 3);
  const blob5 = pack(big);
  const blob4 = pack(small);
  assert.equal(blob5[0], 5);
  assert.equal(blob4[0], 4);
  // The same blob less the magic, as format 4 (what the previous version
  // wrote for every size), unpacks to the same packets.
  const head = 3 + (blob5[1]! % 2 === 0 ? blob5[2]! : 0);
  assert.deepEqual([...blob5.subarray(head, head + 4)], [40, 181, 47, 253]);
  const old = new Uint8Array(blob5.length - 4);
  old.set(blob5.subarray(0, head));
  old.set(blob5.subarray(head + 4), head);
  old[0] = 4;
  assert.deepEqual(unpack(old), big);
  for (const [blob, packets] of [[blob5, big], [blob4, small]] as const) {
    assert.deepEqual(unpack(blob), packets);
    for (let i = 0; i < packets.length; i++) {
      // unpackOne builds the packet in freshly decoded memory (patched in
      // place): what the caller does with it touches neither the blob nor
      // a later call.
      const before = blob.slice();
      const one = unpackOne(blob, i);
      assert.deepEqual(one, packets[i]);
      one.fill(0);
      assert.deepEqual(blob, before);
      assert.deepEqual(unpackOne(blob, i), packets[i]);
    }
  }
});
