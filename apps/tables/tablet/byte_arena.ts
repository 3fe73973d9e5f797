import { Arena } from "@strata/lsm";

/**
 * Where the tablet carves the small byte arrays of its hot paths: the
 * keys a write encodes (copied into the commit record at once), the
 * bounds of a read, and the row keys, qualifiers and values a read hands
 * out. Under this Deno's V8 every `new Uint8Array` costs 0.3–1 µs (its own
 * backing store; a row read made five, a put two); a view carved from a
 * shared chunk costs about 50 ns. The chunks are small
 * (16 KiB) because a row a caller keeps keeps its chunk alive. Arrays from
 * here are views: their `byteOffset` is not 0.
 */
export const tabletBytes: Arena = new Arena(16 * 1024);
