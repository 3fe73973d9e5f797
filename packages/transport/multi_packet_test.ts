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
import { varintLength } from "@strata/codec";
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
 * up (receiver id, commit), vary at random, or change length (an id
 * crossing a power of ten), around a shared body.
 */
const fanOutBatch = fc.record({
  body: fc.uint8Array({ minLength: 0, maxLength: 2000 }),
  count: fc.integer({ min: 1, max: 40 }),
  start: fc.integer({ min: 0, max: 200 }),
  lag: fc.array(fc.nat({ max: 300 }), { minLength: 40, maxLength: 40 }),
  tail: fc.uint8Array({ maxLength: 30 }),
}).map(({ body, count, start, lag, tail }) =>
  Array.from({ length: count }, (_, i) => {
    const head = new TextEncoder().encode(
      `{"to":"node-${start + i}","index":${90_000 - lag[i]!},"commit":${
        1000 + i
      },"entries":`,
    );
    const out = new Uint8Array(head.length + body.length + tail.length);
    out.set(head);
    out.set(body, head.length);
    out.set(tail, head.length + body.length);
    return out;
  })
);

const anyBatch = fc.array(fc.uint8Array({ maxLength: 600 }), {
  maxLength: 20,
});

Deno.test("pack then unpack restores any list of packets exactly", () => {
  fc.assert(
    fc.property(
      fc.oneof(anyBatch, similarBatch, editedBatch, fanOutBatch),
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
      fc.oneof(anyBatch, similarBatch, editedBatch, fanOutBatch).filter((p) =>
        p.length > 0
      ),
      fc.nat(),
      (packets, pick) => {
        const i = pick % packets.length;
        assert.deepEqual(unpackOne(pack(packets), i), packets[i]);
      },
    ),
    { numRuns: runs },
  );
});

Deno.test("no input packs larger than plain concatenation plus the stated bound", () => {
  fc.assert(
    fc.property(
      fc.oneof(anyBatch, similarBatch, editedBatch, fanOutBatch),
      (packets) => {
        const blob = pack(packets);
        const bound = packedSizeBound(packets);
        assert.ok(blob.length <= bound, `${blob.length} > ${bound}`);
        // The bound itself: ≤ 2 bytes a packet over the concatenation plus
        // varint lengths (fewer than 16 383 packets), plus a 12-byte header.
        const plainWithLengths = packets.reduce(
          (s, p) => s + p.length + (p.length ? varintLength(p.length) : 0),
          0,
        );
        assert.ok(bound <= plainWithLengths + 12 + packets.length * 2);
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

Deno.test("format 1 blobs with shared chunks (earlier versions) still unpack", () => {
  // 3 packets: chunk "ab" for all, "X" for packet 1 alone, "cd" for
  // packets 0 and 2 (bitmap 0b101).
  // deno-fmt-ignore
  const blob = new Uint8Array([
    1, 3, 12, // format, count, body length
    0, 2, 97, 98, // every packet: "ab"
    3, 1, 88, // packet 1 alone: "X"
    1, 0b101, 2, 99, 100, // packets 0 and 2: "cd"
  ]);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.deepEqual(unpack(blob).map(text), ["abcd", "abX", "abcd"]);
  assert.equal(text(unpackOne(blob, 1)), "abX");
  assert.equal(packedCount(blob), 3);
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

Deno.test("an empty batch and empty packets round-trip", () => {
  assert.deepEqual(unpack(pack([])), []);
  const packets = [new Uint8Array(0), new Uint8Array([9]), new Uint8Array(0)];
  assert.deepEqual(unpack(pack(packets)), packets);
  assert.deepEqual(unpackOne(pack(packets), 2), new Uint8Array(0));
});
