/**
 * Shard of a document: FNV-1a (32-bit) of its id's UTF-16 code units,
 * modulo the shard count. Stable across processes and versions.
 * @param shards shard count (≥ 1).
 */
export function shardOf(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}
