import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeCommand,
  RespProtocolError,
  RespReplyParser,
  RespRequestParser,
  type RespValue,
  RespWriter,
} from "./resp_codec.ts";
import { globMatch } from "../shared/redis_glob.ts";

const enc = new TextEncoder();
const bytesArb = fc.uint8Array({ maxLength: 40 });
const commandArb = fc.array(bytesArb, { minLength: 1, maxLength: 6 });

/** Cuts `data` at the given fractions. */
function cut(data: Uint8Array, at: number[]): Uint8Array[] {
  const points = [...new Set(at.map((f) => Math.floor(f * data.length)))]
    .sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

/** Feeds chunks and collects the commands (copied: views die on push). */
function parseAll(chunks: Uint8Array[]): Uint8Array[][] {
  const p = new RespRequestParser();
  const got: Uint8Array[][] = [];
  for (const c of chunks) {
    p.push(c);
    for (let a = p.next(); a; a = p.next()) got.push(a.map((x) => x.slice()));
  }
  assert.equal(p.buffered, 0);
  return got;
}

/** Like parseAll, taking GET/SET frames through the fast path when it says so. */
function parseAllFast(chunks: Uint8Array[]): Uint8Array[][] {
  const p = new RespRequestParser();
  const got: Uint8Array[][] = [];
  for (const c of chunks) {
    p.push(c);
    for (;;) {
      const kind = p.fast();
      if (kind !== 0) {
        const b = p.bytes;
        const key = b.slice(p.fastKey, p.fastKey + p.fastKeyLength);
        got.push([
          ...(p.fastLocal ? [enc.encode("STRATA.LOCAL")] : []),
          ...(kind === 1 ? [enc.encode("GET"), key] : [
            enc.encode("SET"),
            key,
            b.slice(p.fastValue, p.fastValue + p.fastValueLength),
          ]),
        ]);
        p.skipFast();
        continue;
      }
      const a = p.next();
      if (!a) break;
      got.push(a.map((x) => x.slice()));
    }
  }
  assert.equal(p.buffered, 0);
  return got;
}

Deno.test("the GET/SET fast path reads exactly what the general parser reads (fast-check)", () => {
  const name = fc.constantFrom("GET", "get", "SET", "Set", "DEL");
  // Some behind STRATA.LOCAL, as a forwarder sends them.
  const cmd = fc.tuple(fc.boolean(), name, fc.array(bytesArb, { maxLength: 3 }))
    .map(([local, n, rest]) => [
      ...(local ? [enc.encode("STRATA.LOCAL")] : []),
      enc.encode(n),
      ...rest,
    ]);
  fc.assert(
    fc.property(
      fc.array(cmd, { minLength: 1, maxLength: 8 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
      (commands, at) => {
        const w = new RespWriter();
        for (const c of commands) w.command(c);
        const data = w.take();
        const dec = new TextDecoder();
        const upperName = (c: Uint8Array[]) => {
          const at = dec.decode(c[0]) === "STRATA.LOCAL" ? 1 : 0;
          return ["GET", "SET"].includes(dec.decode(c[at]).toUpperCase())
            ? c.map((x, i) =>
              i === at ? enc.encode(dec.decode(x).toUpperCase()) : x
            )
            : c;
        };
        // The fast path gives the name in capitals; otherwise the same.
        assert.deepEqual(
          parseAllFast(cut(data, at)).map(upperName),
          parseAll(cut(data, at)).map(upperName),
        );
      },
    ),
    { numRuns: 300 },
  );
  // Not taken: options, an empty key, a key over 4096 bytes, a bad length.
  for (
    const raw of [
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n",
      "*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
      `*2\r\n$3\r\nGET\r\n$4097\r\n${"k".repeat(4097)}\r\n`,
      "*2\r\n$3\r\nGET\r\n$2\r\nk\r\n\r\n",
      "*2\r\n$3\r\nGET\r\n$1\r\nkk\r\n",
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-1\r\n",
    ]
  ) {
    const p = new RespRequestParser();
    p.push(enc.encode(raw));
    assert.equal(p.fast(), 0, JSON.stringify(raw));
  }
  const p = new RespRequestParser();
  p.push(enc.encode("*2\r\n$3\r\ngEt\r\n$3\r\nabc\r\n"));
  assert.equal(p.fast(), 1);
  assert.equal(p.fastKeyLength, 3);
});

Deno.test("commands round-trip through the writer and the parser, however the stream is cut (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(commandArb, { minLength: 1, maxLength: 8 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
      (commands, at) => {
        const w = new RespWriter();
        for (const c of commands) w.command(c);
        const got = parseAll(cut(w.take(), at));
        assert.deepEqual(got, commands);
      },
    ),
    { numRuns: 300 },
  );
});

const valueArb: fc.Arbitrary<RespValue> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.stringMatching(/^[a-zA-Z0-9 ]{0,20}$/).map((value) => ({
      type: "simple" as const,
      value,
    })),
    fc.stringMatching(/^[A-Z]+ [a-z ]{0,20}$/).map((value) => ({
      type: "error" as const,
      value,
    })),
    fc.integer().map((value) => ({ type: "integer" as const, value })),
    fc.option(bytesArb).map((value) => ({ type: "bulk" as const, value })),
    fc.option(fc.array(tie("v"), { maxLength: 4 })).map((value) => ({
      type: "array" as const,
      value: value as RespValue[] | null,
    })),
  ),
})).v;

/** The writer's encoding of `values`. */
const w2 = (values: RespValue[]) => {
  const w = new RespWriter();
  for (const v of values) w.value(v);
  return w.take();
};

Deno.test("replies round-trip through the writer and the reply parser, however cut (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(valueArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
      (values, at) => {
        const w = new RespWriter();
        for (const v of values) w.value(v);
        const p = new RespReplyParser();
        const got: RespValue[] = [];
        for (const c of cut(w.take(), at)) {
          p.push(c);
          for (let v = p.next(); v; v = p.next()) got.push(v);
        }
        assert.deepEqual(got, values);
        // As bytes (a forwarder's nextRaw): each reply's own encoding.
        const raw = new RespReplyParser();
        const bytes: Uint8Array[] = [];
        for (const c of cut(w2(values), at)) {
          raw.push(c);
          for (let v = raw.nextRaw(); v; v = raw.nextRaw()) bytes.push(v);
        }
        assert.deepEqual(bytes, values.map((v) => w2([v])));
        assert.equal(raw.buffered, 0);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("garbage never throws anything but RespProtocolError, and the parser never loops (fast-check)", () => {
  const garbage = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    // Near-valid frames: a valid one with bytes flipped.
    fc.tuple(commandArb, fc.array(fc.nat(), { maxLength: 4 }), fc.nat(255))
      .map(([c, at, b]) => {
        const x = encodeCommand(c).slice();
        for (const i of at) x[i % x.length] = b;
        return x;
      }),
  );
  fc.assert(
    fc.property(garbage, (g) => {
      const p = new RespRequestParser({ maxBulkBytes: 1000, maxArgs: 100 });
      try {
        p.push(g);
        for (let i = 0; i < 1000 && p.next(); i++) { /* drain */ }
      } catch (e) {
        assert.ok(e instanceof RespProtocolError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("inline commands, quoting and limits", () => {
  const p = new RespRequestParser({ maxBulkBytes: 10, maxInlineBytes: 64 });
  p.push(enc.encode('PING\r\n\r\nSET  k "a b\\n"\n'));
  assert.deepEqual(p.next()?.map((x) => new TextDecoder().decode(x)), [
    "PING",
  ]);
  assert.deepEqual(p.next()?.map((x) => new TextDecoder().decode(x)), [
    "SET",
    "k",
    "a b\n",
  ]);
  assert.equal(p.next(), undefined);
  p.push(enc.encode("*1\r\n$11\r\nhello world\r\n"));
  assert.throws(() => p.next(), /invalid bulk length/);
  const q = new RespRequestParser({ maxInlineBytes: 16 });
  q.push(enc.encode("x".repeat(20)));
  assert.throws(() => q.next(), /too big inline request/);
  const r = new RespRequestParser();
  r.push(enc.encode("*1\r\n$3\r\nabcd\r\n"));
  assert.throws(() => r.next(), /not terminated by CRLF/);
  const big = new RespRequestParser({ maxFrameBytes: 100 });
  big.push(
    enc.encode("*3\r\n$3\r\nSET\r\n$60\r\n" + "k".repeat(60) + "\r\n$60\r\n"),
  );
  big.push(enc.encode("v".repeat(30)));
  assert.throws(() => big.next(), /a command over 100 bytes/);
  const s = new RespRequestParser();
  s.push(enc.encode('GET "unbalanced\r\n'));
  assert.throws(() => s.next(), /unbalanced quotes/);
});

Deno.test("Redis glob patterns", () => {
  const cases: [string, string, boolean][] = [
    ["*", "", true],
    ["a*", "abc", true],
    ["a*c", "abbbc", true],
    ["a*c", "abbb", false],
    ["h?llo", "hello", true],
    ["h?llo", "hllo", false],
    ["h[ae]llo", "hallo", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-b]llo", "hbllo", true],
    ["h[a-b]llo", "hcllo", false],
    ["h\\*llo", "h*llo", true],
    ["h\\*llo", "hello", false],
    ["*:*:*", "a:b:c", true],
    ["user:*", "users", false],
  ];
  for (const [p, t, want] of cases) {
    assert.equal(globMatch(p, t), want, `${p} ~ ${t}`);
  }
  // No exponential blow-up.
  const started = performance.now();
  globMatch("*a*a*a*a*a*a*a*a*a*b", "a".repeat(5000));
  assert.ok(performance.now() - started < 1000);
});
