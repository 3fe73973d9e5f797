/**
 * The packet filter of each host, as a pure function of the faults in
 * effect: every cut link becomes a DROP rule inside a namespace the harness
 * created, never in the machine's own tables.
 */

/** A host by its index (0-based), or `"root"`: the machine's own namespace, where clients run. */
export type Endpoint = number | "root";

/** Packets from `from` to `to` are dropped with this probability (1 = all). */
export interface Block {
  from: Endpoint;
  to: Endpoint;
  probability: number;
}

/**
 * Merges blocks on the same directed link, keeping the highest probability,
 * and drops blocks from an endpoint to itself.
 */
export function mergeBlocks(blocks: Block[]): Block[] {
  const byLink = new Map<string, Block>();
  for (const b of blocks) {
    if (b.from === b.to) continue;
    const key = `${b.from}>${b.to}`;
    const prev = byLink.get(key);
    if (!prev || prev.probability < b.probability) byLink.set(key, { ...b });
  }
  return [...byLink.values()];
}

/**
 * The `iptables-restore` input for host `host`'s namespace. A block to a
 * host is enforced where the packets arrive (INPUT of the receiver, so the
 * sender sees a silent loss, as on a real network); a block from a host to
 * the root namespace is enforced in the sender's OUTPUT, since the harness
 * adds no rule to the machine's own namespace (the sender's socket then
 * sees a local error rather than a timeout).
 * @param address the IPv4 address of each endpoint.
 */
export function restoreInput(
  host: number,
  blocks: Block[],
  address: (e: Endpoint) => string,
): string {
  const lines = [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
  ];
  const drop = (p: number) =>
    p >= 1
      ? "-j DROP"
      : `-m statistic --mode random --probability ${p.toFixed(4)} -j DROP`;
  for (const b of mergeBlocks(blocks)) {
    if (b.to === host) {
      lines.push(`-A INPUT -s ${address(b.from)}/32 ${drop(b.probability)}`);
    } else if (b.from === host && b.to === "root") {
      lines.push(`-A OUTPUT -d ${address("root")}/32 ${drop(b.probability)}`);
    }
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** Blocks that cut `a` from `b` in both directions. */
export function cut(a: Endpoint, b: Endpoint, probability = 1): Block[] {
  return [{ from: a, to: b, probability }, { from: b, to: a, probability }];
}
