import { readVarint, varintLength, writeVarint } from "@strata/codec";
import type { Arena } from "./arena.ts";
import { copyInto } from "./bytes.ts";
import { LsmError } from "./lsm_error.ts";
import type { Entry } from "./memtable.ts";

/**
 * The commit log record of one write: a varint count, then per mutation
 * varint key length, key, varint tag (0 = delete, else value length + 1),
 * value. The log's own CRC32C framing covers it. When `views` is given,
 * it receives each mutation as views into the record (the write's own
 * copy of the caller's bytes, which the memtable copies from). With
 * `arena`, the record is carved from it.
 */
export function encodeBatch(
  batch: readonly Entry[],
  views?: Entry[],
  arena?: Arena,
): Uint8Array {
  let n = varintLength(batch.length);
  for (const m of batch) {
    const tag = m.value === null ? 0 : m.value.length + 1;
    n += varintLength(m.key.length) + m.key.length + varintLength(tag) +
      (tag === 0 ? 0 : tag - 1);
  }
  const out = arena === undefined ? new Uint8Array(n) : arena.alloc(n);
  let o = writeVarint(out, 0, batch.length);
  for (const m of batch) {
    o = writeVarint(out, o, m.key.length);
    copyInto(out, o, m.key);
    const ko = o;
    o += m.key.length;
    o = writeVarint(out, o, m.value === null ? 0 : m.value.length + 1);
    const vo = o;
    if (m.value !== null) {
      copyInto(out, o, m.value);
      o += m.value.length;
    }
    views?.push({
      key: out.subarray(ko, ko + m.key.length),
      value: m.value === null ? null : out.subarray(vo, o),
    });
  }
  return out;
}

/**
 * Decodes a record of {@link encodeBatch}.
 *
 * @throws LsmError `corrupt` when the bytes do not parse exactly.
 */
export function decodeBatch(bytes: Uint8Array, where: string): Entry[] {
  try {
    let r = readVarint(bytes, 0);
    const count = r.value;
    let o = r.next;
    const out: Entry[] = [];
    for (let i = 0; i < count; i++) {
      r = readVarint(bytes, o);
      const key = bytes.slice(r.next, r.next + r.value);
      if (key.length !== r.value) throw new Error("key overrun");
      r = readVarint(bytes, r.next + r.value);
      if (r.value === 0) {
        out.push({ key, value: null });
        o = r.next;
      } else {
        const value = bytes.slice(r.next, r.next + r.value - 1);
        if (value.length !== r.value - 1) throw new Error("value overrun");
        out.push({ key, value });
        o = r.next + r.value - 1;
      }
    }
    if (o !== bytes.length) throw new Error("trailing bytes");
    return out;
  } catch (e) {
    throw new LsmError("corrupt", `${where}: write batch invalid`, {
      cause: e,
    });
  }
}
