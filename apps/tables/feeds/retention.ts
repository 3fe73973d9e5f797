/** A partition's messages as retention sees them, in offset order. */
export interface RetainedMessage {
  offset: number;
  /** When it was appended (the cell's timestamp), ms. */
  timestamp: number;
  /** Key + value bytes. */
  bytes: number;
}

/** What to keep. */
export interface RetentionPolicy {
  retentionMs?: number;
  retentionBytes?: number;
}

/**
 * The new low watermark of a partition (pure): the first offset to keep
 * after deleting messages older than `retentionMs` (measured against
 * `now`) and the oldest messages beyond `retentionBytes`. `messages` are
 * the partition's contiguous messages from `low` on; the answer is never
 * below `low` nor above the offset after the last message.
 */
export function retentionLow(
  messages: readonly RetainedMessage[],
  low: number,
  now: number,
  policy: RetentionPolicy,
): number {
  let keepFrom = 0; // index into messages
  if (policy.retentionMs !== undefined) {
    const cutoff = now - policy.retentionMs;
    // Offsets are appended in timestamp order (one tablet clock per
    // partition range), so the old ones are a prefix.
    while (
      keepFrom < messages.length && messages[keepFrom]!.timestamp < cutoff
    ) keepFrom++;
  }
  if (policy.retentionBytes !== undefined) {
    let total = 0;
    let i = messages.length;
    while (i > 0 && total + messages[i - 1]!.bytes <= policy.retentionBytes) {
      total += messages[--i]!.bytes;
    }
    keepFrom = Math.max(keepFrom, i);
  }
  if (keepFrom === 0) return low;
  return keepFrom < messages.length
    ? messages[keepFrom]!.offset
    : messages[messages.length - 1]!.offset + 1;
}
