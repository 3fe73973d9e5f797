import type { PeerAddress } from "./replicated_node.ts";

const HOST_PORT = /^[^\s:/]+:\d{1,5}$/;

/**
 * Parses a member list `1=peerHost:port[/httpHost:port],2=...` (the
 * `--peers` flag of every replicated process) into id → addresses.
 * @throws Error with a message naming the bad part.
 */
export function parsePeerList(list: string): Map<number, PeerAddress> {
  const out = new Map<number, PeerAddress>();
  for (const part of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)=([^\s/]+)(?:\/([^\s/]+))?$/.exec(part);
    if (!m) {
      throw new Error(
        `--peers: "${part}" is not id=peerHost:port[/httpHost:port]`,
      );
    }
    const id = Number(m[1]);
    if (id <= 0) throw new Error(`--peers: id ${id} must be positive`);
    if (out.has(id)) throw new Error(`--peers: id ${id} appears twice`);
    for (const a of [m[2], m[3]]) {
      if (
        a !== undefined &&
        (!HOST_PORT.test(a) || Number(a.slice(a.lastIndexOf(":") + 1)) > 65535)
      ) {
        throw new Error(`--peers: "${a}" is not host:port`);
      }
    }
    out.set(id, { peer: m[2]!, ...(m[3] ? { http: m[3] } : {}) });
  }
  return out;
}

/** Formats id → addresses back into the `--peers` form. */
export function formatPeerList(members: Map<number, PeerAddress>): string {
  return [...members].map(([id, a]) =>
    `${id}=${a.peer}${a.http ? `/${a.http}` : ""}`
  ).join(",");
}
