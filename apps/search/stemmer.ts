/**
 * The Porter (1980) English stemmer, written from Martin Porter's
 * description: suffix stripping in five steps guarded by the "measure" of
 * the stem. It is the light, rule-based stemmer most BM25 engines ship by
 * default (Lucene's `PorterStemFilter`); it maps "connected", "connecting"
 * and "connection" to "connect". Words shorter than three letters and words
 * with characters outside a-z are returned unchanged.
 */

function isConsonant(w: string, i: number): boolean {
  const c = w.charCodeAt(i);
  // a e i o u
  if (c === 97 || c === 101 || c === 105 || c === 111 || c === 117) {
    return false;
  }
  if (c === 121) return i === 0 ? true : !isConsonant(w, i - 1);
  return true;
}

/** Number of vowel-consonant sequences in w[0, end). */
function measure(w: string, end: number): number {
  let n = 0;
  let i = 0;
  while (i < end && isConsonant(w, i)) i++;
  while (i < end) {
    while (i < end && !isConsonant(w, i)) i++;
    if (i >= end) break;
    n++;
    while (i < end && isConsonant(w, i)) i++;
  }
  return n;
}

function hasVowel(w: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (!isConsonant(w, i)) return true;
  return false;
}

function endsDoubleConsonant(w: string, end: number): boolean {
  return end >= 2 && w[end - 1] === w[end - 2] && isConsonant(w, end - 1);
}

/** Stem ends consonant-vowel-consonant, the last not w, x or y. */
function endsCvc(w: string, end: number): boolean {
  if (end < 3) return false;
  if (
    !isConsonant(w, end - 1) || isConsonant(w, end - 2) ||
    !isConsonant(w, end - 3)
  ) return false;
  const c = w[end - 1];
  return c !== "w" && c !== "x" && c !== "y";
}

type Rule = readonly [suffix: string, replacement: string];

/** Applies the first rule whose suffix matches when the stem's measure > min. */
function replaceFirst(w: string, rules: readonly Rule[], min: number): string {
  for (const [suffix, replacement] of rules) {
    if (w.endsWith(suffix)) {
      const stemEnd = w.length - suffix.length;
      return measure(w, stemEnd) > min ? w.slice(0, stemEnd) + replacement : w;
    }
  }
  return w;
}

const STEP2: readonly Rule[] = [
  ["ational", "ate"],
  ["tional", "tion"],
  ["enci", "ence"],
  ["anci", "ance"],
  ["izer", "ize"],
  ["bli", "ble"],
  ["alli", "al"],
  ["entli", "ent"],
  ["eli", "e"],
  ["ousli", "ous"],
  ["ization", "ize"],
  ["ation", "ate"],
  ["ator", "ate"],
  ["alism", "al"],
  ["iveness", "ive"],
  ["fulness", "ful"],
  ["ousness", "ous"],
  ["aliti", "al"],
  ["iviti", "ive"],
  ["biliti", "ble"],
  ["logi", "log"],
];

const STEP3: readonly Rule[] = [
  ["icate", "ic"],
  ["ative", ""],
  ["alize", "al"],
  ["iciti", "ic"],
  ["ical", "ic"],
  ["ful", ""],
  ["ness", ""],
];

const STEP4 = [
  "al",
  "ance",
  "ence",
  "er",
  "ic",
  "able",
  "ible",
  "ant",
  "ement",
  "ment",
  "ent",
  "ion",
  "ou",
  "ism",
  "ate",
  "iti",
  "ous",
  "ive",
  "ize",
];

/**
 * Stems one lowercase word with the Porter algorithm.
 * @param word a lowercase token; anything not purely a-z is returned as is.
 */
export function porterStem(word: string): string {
  if (word.length < 3 || !/^[a-z]+$/.test(word)) return word;
  let w = word;

  // Step 1a: plurals.
  if (w.endsWith("sses")) w = w.slice(0, -2);
  else if (w.endsWith("ies")) w = w.slice(0, -2);
  else if (!w.endsWith("ss") && w.endsWith("s")) w = w.slice(0, -1);

  // Step 1b: -eed, -ed, -ing.
  let step1bTidy = false;
  if (w.endsWith("eed")) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else if (w.endsWith("ed") && hasVowel(w, w.length - 2)) {
    w = w.slice(0, -2);
    step1bTidy = true;
  } else if (w.endsWith("ing") && hasVowel(w, w.length - 3)) {
    w = w.slice(0, -3);
    step1bTidy = true;
  }
  if (step1bTidy) {
    if (w.endsWith("at") || w.endsWith("bl") || w.endsWith("iz")) {
      w += "e";
    } else if (endsDoubleConsonant(w, w.length)) {
      const last = w[w.length - 1];
      if (last !== "l" && last !== "s" && last !== "z") w = w.slice(0, -1);
    } else if (measure(w, w.length) === 1 && endsCvc(w, w.length)) {
      w += "e";
    }
  }

  // Step 1c: y -> i when the stem has a vowel.
  if (w.endsWith("y") && hasVowel(w, w.length - 1)) w = w.slice(0, -1) + "i";

  w = replaceFirst(w, STEP2, 0);
  w = replaceFirst(w, STEP3, 0);

  // Step 4: strip a final suffix when the measure is > 1.
  for (const suffix of STEP4) {
    if (!w.endsWith(suffix)) continue;
    const stemEnd = w.length - suffix.length;
    if (suffix === "ion") {
      const c = w[stemEnd - 1];
      if (measure(w, stemEnd) > 1 && (c === "s" || c === "t")) {
        w = w.slice(0, stemEnd);
      }
    } else if (measure(w, stemEnd) > 1) {
      w = w.slice(0, stemEnd);
    }
    break;
  }

  // Step 5a: final e.
  if (w.endsWith("e")) {
    const m = measure(w, w.length - 1);
    if (m > 1 || (m === 1 && !endsCvc(w, w.length - 1))) w = w.slice(0, -1);
  }
  // Step 5b: -ll with measure > 1.
  if (
    w.endsWith("ll") && measure(w, w.length) > 1
  ) w = w.slice(0, -1);
  return w;
}
