/**
 * A row write's body accepted without zod: {@link acceptMutateBody} gives
 * exactly what `mutateBody.safeParse` gives for a body it accepts (same
 * keys, same order, same values), and undefined for anything else, which
 * is then left to zod (whose issues word the 400). zod stays the declared
 * schema of the boundary; this is its fast path for the one body every
 * put carries. In a tablet server under puts, zod's parse of a
 * one-mutation body took ~1.9 µs of a put's CPU (wall time, measured in
 * the process), where this check takes a fraction of it
 * (`mutate_body_accept_test.ts` checks the equivalence with fast-check).
 */
import { type Encoding, LIMITS, type MutationJson } from "./wire.ts";

/** What `mutateBody` parses to. */
export interface MutateBodyJson {
  row: string;
  encoding: Encoding;
  mutations: MutationJson[];
}

/** `familyNameSchema`'s pattern. */
const FAMILY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** A plain object (what JSON.parse makes for `{...}`), not an array. */
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.getPrototypeOf(v) === Object.prototype;
}

/** `timestampSchema`: a safe integer from 0. */
function isTimestamp(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Whether the keys {@link ownKeys} last counted came in `allowed`'s order
 * (then the object is already what zod would build, and is returned as
 * it is: no copy).
 */
let inOrder = false;

/**
 * Counts the own keys of `o`, each of which must be one of `allowed`
 * (zod's strictObject refuses any other); -1 when one is not.
 */
function ownKeys(
  o: Record<string, unknown>,
  allowed: readonly string[],
): number {
  let n = 0;
  let last = -1;
  inOrder = true;
  for (const k in o) {
    const at = allowed.indexOf(k);
    if (at < 0 || !Object.hasOwn(o, k)) return -1;
    if (at < last) inOrder = false;
    last = at;
    n++;
  }
  return n;
}

const PUT_KEYS = ["op", "family", "qualifier", "value", "timestamp"] as const;
const CELLS_KEYS = ["op", "family", "qualifier", "timestamp"] as const;
const FAMILY_KEYS = ["op", "family"] as const;
const ROW_KEYS = ["op"] as const;
const BODY_KEYS = ["row", "encoding", "mutations"] as const;

/** One mutation as `mutationJson` parses it, or undefined (zod decides). */
function acceptMutation(m: unknown): MutationJson | undefined {
  if (!isRecord(m)) return undefined;
  const op = m.op;
  if (op === "put") {
    const { family, qualifier, value, timestamp } = m;
    const n = ownKeys(m, PUT_KEYS);
    if (
      n < 0 || typeof family !== "string" || !FAMILY.test(family) ||
      typeof qualifier !== "string" || typeof value !== "string"
    ) return undefined;
    if (timestamp === undefined) {
      // A key present with `undefined` (never from JSON) is left to zod.
      if (n !== 4) return undefined;
      return inOrder ? m as MutationJson : { op, family, qualifier, value };
    }
    if (!isTimestamp(timestamp)) return undefined;
    return inOrder
      ? m as MutationJson
      : { op, family, qualifier, value, timestamp };
  }
  if (op === "deleteCells") {
    const { family, qualifier, timestamp } = m;
    const n = ownKeys(m, CELLS_KEYS);
    if (
      n < 0 || typeof family !== "string" || !FAMILY.test(family) ||
      typeof qualifier !== "string"
    ) return undefined;
    if (timestamp === undefined) {
      if (n !== 3) return undefined;
      return inOrder ? m as MutationJson : { op, family, qualifier };
    }
    if (!isTimestamp(timestamp)) return undefined;
    return inOrder ? m as MutationJson : { op, family, qualifier, timestamp };
  }
  if (op === "deleteFamily") {
    const { family } = m;
    if (
      ownKeys(m, FAMILY_KEYS) !== 2 || typeof family !== "string" ||
      !FAMILY.test(family)
    ) return undefined;
    return inOrder ? m as MutationJson : { op, family };
  }
  if (op === "deleteRow") {
    return ownKeys(m, ROW_KEYS) === 1 ? m as MutationJson : undefined;
  }
  return undefined;
}

/**
 * `mutateBody.parse(raw)` when zod would accept `raw` and this check
 * recognises it (every body a client of this package sends); undefined
 * otherwise, and then zod must parse it (and word its refusal). Never
 * accepts what zod refuses, and what it returns equals zod's output
 * (keys in the schema's order). Objects already in that shape are
 * returned as they are (`raw` is JSON.parse's, no one else's).
 */
export function acceptMutateBody(raw: unknown): MutateBodyJson | undefined {
  if (!isRecord(raw)) return undefined;
  const { row, encoding, mutations } = raw;
  const n = ownKeys(raw, BODY_KEYS);
  const ordered = inOrder;
  if (n < 0 || typeof row !== "string") return undefined;
  // The default applies to a missing key only (a present `undefined`
  // never comes from JSON: zod decides).
  let e: Encoding;
  if (encoding === "utf8" || encoding === "base64") e = encoding;
  else if (encoding === undefined && n === 2) e = "utf8";
  else return undefined;
  if (
    !Array.isArray(mutations) || mutations.length < 1 ||
    mutations.length > LIMITS.maxMutations
  ) return undefined;
  // The array and body are kept when nothing in them needs rebuilding.
  let out: MutationJson[] | undefined;
  for (let i = 0; i < mutations.length; i++) {
    const m = acceptMutation(mutations[i]);
    if (m === undefined) return undefined;
    if (out === undefined && m !== mutations[i]) out = mutations.slice(0, i);
    out?.push(m);
  }
  if (out === undefined && ordered && n === 3) {
    return raw as unknown as MutateBodyJson;
  }
  return { row, encoding: e, mutations: out ?? mutations };
}
