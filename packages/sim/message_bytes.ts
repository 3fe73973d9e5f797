import type { Message } from "@strata/raft";

/**
 * Approximate wire size of a raft message (header fields plus payloads),
 * cheap enough to compute for every simulated message.
 */
export function messageBytes(m: Message): number {
  let n = 16;
  if (m.type === "app" || m.type === "prop") {
    for (const e of m.entries) n += 8 + e.data.length;
  } else if (m.type === "snap") {
    n += 16 + m.data.length;
  }
  return n;
}
