/** One sample of the Prometheus text exposition format. */
export interface PromSample {
  /** Metric name, e.g. `strata_raft_bytes_sent_total`. */
  name: string;
  /** Label name → value (unescaped). */
  labels: Record<string, string>;
  /** The value (`NaN`, `+Inf` and `-Inf` included). */
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$/;

function parseValue(raw: string): number | undefined {
  if (raw === "+Inf" || raw === "Inf") return Infinity;
  if (raw === "-Inf") return -Infinity;
  if (raw === "NaN") return NaN;
  const n = Number(raw);
  return Number.isNaN(n) ? undefined : n;
}

/** Parses `a="x",b="y\"z"`; undefined when malformed. */
function parseLabels(raw: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < raw.length) {
    while (raw[i] === " " || raw[i] === ",") i++;
    if (i >= raw.length) break;
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(raw.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    let value = "";
    for (;;) {
      const ch = raw[i];
      if (ch === undefined) return undefined;
      i++;
      if (ch === '"') break;
      if (ch === "\\") {
        const next = raw[i++];
        value += next === "n" ? "\n" : next ?? "";
      } else value += ch;
    }
    labels[m[1]!] = value;
  }
  return labels;
}

/**
 * Parses Prometheus text exposition (version 0.0.4) into samples. Comment
 * and `# TYPE`/`# HELP` lines are skipped, and so is any malformed line, so
 * a scrape of a half-written page yields what it can rather than throwing.
 */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const value = parseValue(m[4]!);
    if (value === undefined) continue;
    const labels = m[3] === undefined ? {} : parseLabels(m[3]);
    if (labels === undefined) continue;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/**
 * Sum of every sample named `name` (across all label sets) whose labels
 * include `match`; 0 when there is none.
 */
export function sumSamples(
  samples: readonly PromSample[],
  name: string,
  match: Record<string, string> = {},
): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    if (Number.isFinite(s.value)) sum += s.value;
  }
  return sum;
}
