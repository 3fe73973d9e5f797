/**
 * `lww_register.ts`: a last-writer-wins register: a value and the hybrid
 * logical timestamp of its write ({@link Hlc}); merge keeps the later write.
 * Timestamps carry the writer's node id, so two writes never tie; were two
 * identical timestamps ever met, the larger value wins, so merge stays
 * commutative.
 */
import { compareHlc, type Hlc } from "./hlc.ts";

/** A register's current write. */
export interface LwwRegister {
  value: string;
  ts: Hlc;
}

/** The join of two registers: the later write. */
export function mergeRegister(a: LwwRegister, b: LwwRegister): LwwRegister {
  const c = compareHlc(a.ts, b.ts);
  if (c !== 0) return c > 0 ? a : b;
  return a.value >= b.value ? a : b;
}
