/**
 * Choosing a private IPv4 /24 that nothing on the machine uses: pure
 * functions over the prefixes `ip addr` and `ip route` report, so the
 * choice is tested without root.
 */

/** An IPv4 prefix as numbers: `base` (host order) and its length. */
export interface Prefix {
  base: number;
  length: number;
}

/** `10.1.2.3` → 0x0a010203. @throws Error on a malformed address. */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${text}`);
  let n = 0;
  for (const p of parts) {
    const b = Number(p);
    if (!/^\d{1,3}$/.test(p) || b > 255) {
      throw new Error(`not an IPv4 address: ${text}`);
    }
    n = n * 256 + b;
  }
  return n;
}

/** 0x0a010203 → `10.1.2.3`. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** `10.1.2.0/24` or `10.1.2.3` (a /32) → a {@link Prefix}, base masked. */
export function parsePrefix(text: string): Prefix {
  const [addr, len] = text.split("/");
  const length = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > 32) {
    throw new Error(`bad prefix length: ${text}`);
  }
  const mask = length === 0 ? 0 : (~0 << (32 - length)) >>> 0;
  return { base: (parseIpv4(addr!) & mask) >>> 0, length };
}

/** True when the two prefixes share at least one address. */
export function overlaps(a: Prefix, b: Prefix): boolean {
  const length = Math.min(a.length, b.length);
  const mask = length === 0 ? 0 : (~0 << (32 - length)) >>> 0;
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}

// The private ranges (RFC 1918) the harness draws from.
const RANGES: Prefix[] = [
  parsePrefix("10.0.0.0/8"),
  parsePrefix("172.16.0.0/12"),
  parsePrefix("192.168.0.0/16"),
];

/**
 * Picks a random /24 inside the RFC 1918 ranges that overlaps none of
 * `used` (default routes, length 0, are ignored: they cover everything and
 * our connected /24 is more specific). `random` returns [0, 1).
 * @returns the /24's base address, or undefined when none is free after
 * `tries` draws.
 */
export function pickFreeSubnet(
  used: Prefix[],
  random: () => number = Math.random,
  tries = 1000,
): number | undefined {
  const specific = used.filter((p) => p.length > 0);
  for (let i = 0; i < tries; i++) {
    const range = RANGES[Math.floor(random() * RANGES.length)]!;
    const slots = 2 ** (24 - range.length);
    const base = (range.base + Math.floor(random() * slots) * 256) >>> 0;
    const candidate = { base, length: 24 };
    if (!specific.some((p) => overlaps(p, candidate))) return base;
  }
  return undefined;
}

/**
 * Every IPv4 prefix in the output of `ip -4 -o addr show` and
 * `ip -4 route show table all` (addresses with their prefix, route
 * destinations; `default` is skipped).
 */
export function prefixesInIpOutput(text: string): Prefix[] {
  const out: Prefix[] = [];
  for (const m of text.matchAll(/(?:^|\s)(\d+\.\d+\.\d+\.\d+(?:\/\d+)?)/g)) {
    try {
      out.push(parsePrefix(m[1]!));
    } catch { /* not an address */ }
  }
  return out;
}
