/**
 * The Raft messages and seeded fan-out batches `bench:transport` measures,
 * shared with the probes that time parts of the same blobs
 * (`_multi_packet_entropy_probe.ts`), so both see the same bytes.
 */
import { z } from "zod";
import { defineMessage } from "@strata/codec";

/** A Raft log entry. */
export const Entry = z.object({
  index: z.number().int(),
  term: z.number().int(),
  data: z.instanceof(Uint8Array),
});

/** Raft's AppendEntries, as the benches encode it. */
export const AppendEntries = defineMessage(
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

/** A deterministic PRNG (mulberry32) so every run sees the same bytes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bytes from a seeded PRNG (same batches, same sizes, every run). */
export function seededBytes(
  random: () => number,
  n: number,
): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

/** A fan-out batch and, for text entries, the base64 values it carries. */
export interface AppendBatch {
  packets: Uint8Array[];
  /** Each entry's base64 value (empty for binary entries). */
  values: string[];
}

/**
 * One leader's AppendEntries of the same 16 entries to `n` followers
 * whose headers differ (names, indexes, commits).
 */
export function appendBatchWithValues(n: number, binary = false): AppendBatch {
  const random = prng(11);
  const values: string[] = [];
  const entries = Array.from({ length: 16 }, (_, i) => {
    if (binary) {
      return { index: 90_001 + i, term: 12, data: seededBytes(random, 256) };
    }
    // A Raft command: JSON with a base64 value (compressible text), or
    // opaque bytes (already compressed or encrypted by the client).
    const value = btoa(String.fromCharCode(...seededBytes(random, 180)));
    values.push(value);
    return {
      index: 90_001 + i,
      term: 12,
      data: new TextEncoder().encode(
        `{"op":"put","key":"user/${100_000 + i}/profile","value":"${value}"}`,
      ),
    };
  });
  const packets = Array.from({ length: n }, (_, i) =>
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
  return { packets, values };
}

/** The packets of {@link appendBatchWithValues}. */
export function appendBatch(n: number, binary = false): Uint8Array[] {
  return appendBatchWithValues(n, binary).packets;
}
