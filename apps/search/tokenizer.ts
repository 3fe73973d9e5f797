/**
 * Word boundaries shared by the analyzer and the snippet builder, so that a
 * token's position in the analyzer's stream is also its index in a plain
 * scan of the original text: tokens are runs of letters, digits and
 * combining marks of any script, with inner apostrophes ("don't").
 * Case does not change a boundary, so scans work on the original text.
 */

/** 1 for ASCII letters and digits. */
export const WORD_ASCII: Uint8Array = new Uint8Array(128);
for (let c = 48; c <= 57; c++) WORD_ASCII[c] = 1;
for (let c = 97; c <= 122; c++) WORD_ASCII[c] = 1;
for (let c = 65; c <= 90; c++) WORD_ASCII[c] = 1;
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;

/** Whether the UTF-16 unit at `i` belongs to a letter, digit or mark. */
export function isWordChar(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c < 128) return WORD_ASCII[c] === 1;
  // Surrogate pair: test the whole code point.
  if (c >= 0xd800 && c <= 0xdbff) return WORD_CHAR.test(s.slice(i, i + 2));
  if (c >= 0xdc00 && c <= 0xdfff) return WORD_CHAR.test(s.slice(i - 1, i + 1));
  return WORD_CHAR.test(s[i]!);
}

/** Start of the first token at or after `i`, or `s.length` when none is left. */
export function tokenStart(s: string, i: number): number {
  const n = s.length;
  while (i < n && !isWordChar(s, i)) i++;
  return i;
}

/** End (exclusive) of the token that starts at `start`. */
export function tokenEnd(s: string, start: number): number {
  const n = s.length;
  let i = start;
  for (;;) {
    i++;
    if (i >= n) return n;
    if (isWordChar(s, i)) continue;
    const c = s.charCodeAt(i);
    // Inner apostrophe: "don't" is one token.
    if ((c === 39 || c === 0x2019) && i + 1 < n && isWordChar(s, i + 1)) {
      continue;
    }
    return i;
  }
}

/** Every this many tokens a segment stores the token's character offset. */
export const MARK_EVERY = 16;

/**
 * Character offsets of tokens 0, {@link MARK_EVERY}, 2×MARK_EVERY, … of
 * `text`: with them a snippet starts scanning at most MARK_EVERY − 1 tokens
 * before the words it shows instead of at the start of the text.
 */
export function tokenMarks(text: string, out: number[] = []): number[] {
  let i = tokenStart(text, 0);
  let pos = 0;
  while (i < text.length) {
    if (pos % MARK_EVERY === 0) out.push(i);
    pos++;
    i = tokenStart(text, tokenEnd(text, i));
  }
  return out;
}
