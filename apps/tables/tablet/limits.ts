/**
 * Size limits, chosen like Cloud Bigtable's and HBase's, and kept inside
 * what one commit-log record (16 MiB) holds.
 */
export const LIMITS = {
  /** Row keys: 1 to 4 KiB (Bigtable's limit). */
  rowKeyBytes: 4096,
  /** Column qualifiers: up to 16 KiB (Bigtable's limit). */
  qualifierBytes: 16 * 1024,
  /** One cell value: 10 MiB (HBase's default `hbase.client.keyvalue.maxsize`). */
  valueBytes: 10 * 2 ** 20,
  /** All keys and values of one row mutation together: 12 MiB. */
  mutationBytes: 12 * 2 ** 20,
  /** Mutations in one row mutation: 100,000 (Bigtable's limit). */
  mutations: 100_000,
  /** Timestamps: integer ms in `[0, 2^53)`. */
  maxTimestamp: Number.MAX_SAFE_INTEGER,
} as const;
