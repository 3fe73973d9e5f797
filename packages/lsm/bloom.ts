/**
 * A Bloom filter over keys (LevelDB's scheme: one 32-bit hash, probes by
 * double hashing with a rotated delta). False positives only; a key that
 * was added always matches.
 */

/** 32-bit hash of a key: FNV-1a with murmur3's finalizer for avalanche. */
export function hashKey(key: Uint8Array): number {
  return finishHash(hashRange(key, 0, key.length, HASH_START));
}

/** The FNV-1a state before any byte ({@link hashRange}'s first `h`). */
export const HASH_START = 0x811c9dc5;

/**
 * FNV-1a state `h` carried over `key[from, to)`: hashing a key in two
 * steps gives its prefix's state on the way, so an SSTable builder hashes
 * a key and its prefix in one pass ({@link finishHash} each state).
 */
export function hashRange(
  key: Uint8Array,
  from: number,
  to: number,
  h: number,
): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  return h;
}

/** The {@link hashKey} of the bytes whose {@link hashRange} state is `h`. */
export function finishHash(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Builds a filter for `keys`: `bitsPerKey` bits each (10 gives about 1%
 * false positives), `k` probes. Layout: the bit array, then one byte `k`.
 */
export function buildBloom(keys: Uint8Array[], bitsPerKey = 10): Uint8Array {
  return buildBloomFromHashes(keys.map(hashKey), bitsPerKey);
}

/**
 * {@link buildBloom} from the keys' {@link hashKey} values (a builder
 * that keeps hashes, not keys, such as an SSTable's prefix filter).
 */
export function buildBloomFromHashes(
  hashes: readonly number[],
  bitsPerKey = 10,
): Uint8Array {
  const k = Math.max(1, Math.min(30, Math.round(bitsPerKey * 0.69)));
  const bits = Math.max(64, hashes.length * bitsPerKey);
  const bytes = Math.ceil(bits / 8);
  const out = new Uint8Array(bytes + 1);
  const nbits = bytes * 8;
  for (const hash of hashes) {
    let h = hash;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < k; j++) {
      const pos = h % nbits;
      out[pos >>> 3]! |= 1 << (pos & 7);
      h = (h + delta) >>> 0;
    }
  }
  out[bytes] = k;
  return out;
}

/** False when `key` was certainly not added to `filter`. */
export function bloomMayContain(filter: Uint8Array, key: Uint8Array): boolean {
  return bloomMayContainHash(filter, hashKey(key));
}

/**
 * {@link bloomMayContain} with the key's {@link hashKey} computed by the
 * caller, so a read that consults several tables hashes the key once.
 */
export function bloomMayContainHash(filter: Uint8Array, hash: number): boolean {
  if (filter.length < 2) return true;
  const bytes = filter.length - 1;
  const k = filter[bytes]!;
  const nbits = bytes * 8;
  let h = hash;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < k; j++) {
    const pos = h % nbits;
    if ((filter[pos >>> 3]! & (1 << (pos & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}
