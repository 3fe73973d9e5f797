/**
 * @module
 * `deno task report`: renders `benches/results/*.json` (written by the
 * suites through `Suite.finish` in harness.ts) into one self-contained page,
 * `benches/report/index.html`: inline CSS and SVG, no scripts, no fonts, no
 * network, so it opens offline and the dashboard can serve it as is. Every
 * figure on the page comes from those files; none is typed here.
 *
 * ```sh
 * deno run -A benches/report.ts                       # the defaults below
 * deno run -A benches/report.ts --results DIR --out FILE.html
 * ```
 *
 * The core, {@link renderReport}, is pure (reports in, HTML out); reading the
 * files ({@link loadResults}) and writing the page ({@link writeReport}) are
 * the thin edges around it.
 */
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { SuiteReport } from "./harness.ts";

// ---------------------------------------------------------------- errors

/** Machine-readable reasons the report cannot be produced. */
export type ReportErrorCode = "bad_flag" | "results_unreadable";

/** The one error this module throws; callers switch on `code`. */
export class ReportError extends Error {
  /** Why it failed. */
  readonly code: ReportErrorCode;

  /** @param code why it failed; @param message a sentence a person can act on. */
  constructor(code: ReportErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReportError";
    this.code = code;
  }
}

// ---------------------------------------------------------------- schema

/**
 * A number that JSON may have turned into `null`: the harness writes NaN or
 * Infinity (a ratio over a zero peer) and `JSON.stringify` stores those as
 * null. Reading them back as NaN keeps the rest of the suite on the page; the
 * page prints "n/a" for them.
 */
const measured = z.union([z.number(), z.null()]).transform((v) => v ?? NaN);

const goalSchema = z.object({
  op: z.enum(["<=", ">="]),
  value: z.number().positive(),
});

/** The zod shape of `benches/results/<suite>.json` ({@link SuiteReport}). */
export const suiteReportSchema = z.object({
  suite: z.string().min(1),
  description: z.string(),
  date: z.string().min(1),
  machine: z.object({
    runtime: z.string(),
    v8: z.string(),
    os: z.string(),
    cpu: z.string(),
    cores: z.number().int().nonnegative(),
    memoryGiB: z.number().nonnegative(),
  }),
  quick: z.boolean(),
  results: z.array(z.object({
    group: z.string(),
    name: z.string(),
    opsPerSec: measured,
    meanNs: measured,
    p50Ns: measured,
    p99Ns: measured,
    samples: z.number().int().nonnegative(),
    bytes: z.number().nonnegative().optional(),
    mbPerSec: measured.optional(),
  })),
  comparisons: z.array(z.object({
    label: z.string(),
    ratio: measured,
    quantity: z.string(),
    goal: goalSchema.optional(),
    met: z.boolean().optional(),
  })),
  metrics: z.record(z.string(), z.union([measured, z.string()])),
}) satisfies z.ZodType<SuiteReport, unknown>;

// ---------------------------------------------------------------- loading

/** A results file that could not be used, and why. */
export interface ResultProblem {
  /** The file's name within the results folder: "codec.json". */
  file: string;
  /** What is wrong with it, in a sentence. */
  message: string;
}

/** What {@link loadResults} found. */
export interface LoadedResults {
  /** The valid reports, in file-name order. */
  reports: SuiteReport[];
  /** Files that were skipped, each with the reason. */
  problems: ResultProblem[];
}

/** Results files larger than this are skipped rather than parsed (bytes). */
export const MAX_RESULTS_FILE_BYTES = 64 * 2 ** 20;

/**
 * Reads and validates every `*.json` directly in `dir`. A file that is not
 * JSON, or not a {@link SuiteReport}, is listed in `problems` (by name, with
 * the reason) and skipped; the others still load.
 * @throws ReportError `results_unreadable` when `dir` itself cannot be listed.
 */
export async function loadResults(dir: string | URL): Promise<LoadedResults> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
    }
  } catch (e) {
    throw new ReportError(
      "results_unreadable",
      `cannot read the results folder ${pathOf(dir)}: ${errorText(e)}`,
      { cause: e },
    );
  }
  names.sort();
  const reports: SuiteReport[] = [];
  const problems: ResultProblem[] = [];
  for (const file of names) {
    const path = joinPath(dir, file);
    let text: string;
    try {
      const info = await Deno.stat(path);
      if (info.size > MAX_RESULTS_FILE_BYTES) {
        problems.push({
          file,
          message:
            `${info.size} bytes is over the ${MAX_RESULTS_FILE_BYTES} byte limit`,
        });
        continue;
      }
      text = await Deno.readTextFile(path);
    } catch (e) {
      problems.push({ file, message: `cannot be read: ${errorText(e)}` });
      continue;
    }
    const parsed = parseResults(text);
    if (parsed.ok) reports.push(parsed.report);
    else problems.push({ file, message: parsed.message });
  }
  return { reports, problems };
}

/**
 * Parses the text of one results file (pure).
 * @returns the report, or a sentence saying what is wrong with it.
 */
export function parseResults(
  text: string,
): { ok: true; report: SuiteReport } | { ok: false; message: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `is not valid JSON (${errorText(e)})` };
  }
  const r = suiteReportSchema.safeParse(raw);
  if (r.success) return { ok: true, report: r.data };
  const issues = r.error.issues.slice(0, 3).map((i) =>
    `${i.path.length ? i.path.join(".") : "(top level)"}: ${i.message}`
  );
  const more = r.error.issues.length > 3
    ? ` (and ${r.error.issues.length - 3} more)`
    : "";
  return {
    ok: false,
    message: `is not a suite report: ${issues.join("; ")}${more}`,
  };
}

// ---------------------------------------------------------------- rendering

/** Options of {@link renderReport}. */
export interface RenderOptions {
  /** When the page was rendered (default: now). Fixed in tests. */
  generatedAt?: Date;
  /** Where the results came from, shown on the page (default "benches/results"). */
  source?: string;
  /** Files that were skipped, listed on the page so they are not missed. */
  skipped?: readonly ResultProblem[];
  /** Which implementations are strata's (default: the name contains "strata"). */
  isStrata?: (name: string) => boolean;
}

/** Width of every chart's coordinate system (SVG user units ≈ CSS px). */
const CHART_WIDTH = 960;

/**
 * Renders suite reports as one complete HTML page (pure). Per suite: a header
 * (description, machine, date), a horizontal bar chart of its comparisons
 * (strata ÷ peer on a log scale around 1×, goal markers, met/missed colours)
 * and a chart of its results by group (each implementation relative to the
 * best of its group, strata highlighted). A summary table comes first. Every
 * chart is an `<svg role="img" data-chart="comparisons"|"groups"
 * data-suite="…">` with a `<title>`; all text from the reports is escaped.
 */
export function renderReport(
  reports: readonly SuiteReport[],
  options: RenderOptions = {},
): string {
  const generatedAt = options.generatedAt ?? new Date();
  const source = options.source ?? "benches/results";
  const skipped = options.skipped ?? [];
  const isStrata = options.isStrata ?? ((n: string) => /strata/i.test(n));
  const ids = suiteIds(reports);
  const sections = reports.map((r, i) =>
    renderSuite(r, ids[i] ?? `suite-${i}`, isStrata)
  );
  const skippedHtml = skipped.length === 0
    ? ""
    : `<section class="skipped" id="skipped" role="alert">
<h2>Skipped results files</h2>
<p>These files in ${
      esc(source)
    } could not be used; their suites are missing below.</p>
<ul>${
      skipped.map((p) =>
        `<li data-skipped-file="${esc(p.file)}"><code>${esc(p.file)}</code> ${
          esc(p.message)
        }</li>`
      ).join("\n")
    }</ul>
</section>`;
  const body = reports.length === 0
    ? `<p class="empty" id="no-results">No results yet. Run <code>deno task bench</code>, then <code>deno task report</code>.</p>`
    : `${renderSummary(reports, ids)}\n${sections.join("\n")}`;
  // The first line stops `deno fmt` from reflowing a generated file; a
  // comment before the doctype does not change the rendering mode.
  return `<!-- deno-fmt-ignore-file -->
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>strata benchmark report</title>
<style>${STYLE}</style>
</head>
<body>
<header class="page">
<h1>strata benchmark report</h1>
<p>Rendered ${
    timeTag(generatedAt.toISOString())
  } from ${reports.length} results file${
    reports.length === 1 ? "" : "s"
  } in <code>${
    esc(source)
  }</code>. Every figure below is read from those files, which the suites write in <code>deno task bench</code>; ratios are strata ÷ the peer measured in the same run.</p>
</header>
${skippedHtml}
<main>
${body}
</main>
</body>
</html>
`;
}

function renderSummary(
  reports: readonly SuiteReport[],
  ids: readonly string[],
): string {
  let allGoals = 0;
  let allMet = 0;
  const rows = reports.map((r, i) => {
    const goals = r.comparisons.filter((c) => c.goal !== undefined);
    const met = goals.filter((c) => goalMet(c) === true).length;
    allGoals += goals.length;
    allMet += met;
    const state = goals.length === 0
      ? "none"
      : met === goals.length
      ? "met"
      : "missed";
    return `<tr data-suite="${esc(r.suite)}">
<th scope="row"><a href="#${ids[i]}">${esc(r.suite)}</a>${
      r.quick ? ' <span class="badge quick">quick</span>' : ""
    }</th>
<td class="num ${state}" data-goals-met="${met}" data-goals="${goals.length}">${met}/${goals.length}</td>
<td class="num">${r.comparisons.length}</td>
<td class="num">${r.results.length}</td>
<td>${timeTag(r.date)}</td>
<td class="machine-short">${esc(shortMachine(r))}</td>
</tr>`;
  });
  return `<section id="summary" aria-labelledby="summary-h">
<h2 id="summary-h">Summary</h2>
<table class="summary" data-goals-met="${allMet}" data-goals="${allGoals}">
<thead><tr><th scope="col">Suite</th><th scope="col">Goals met</th><th scope="col">Comparisons</th><th scope="col">Results</th><th scope="col">Measured</th><th scope="col">Machine</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
<tfoot><tr><th scope="row">All suites</th><td class="num">${allMet}/${allGoals}</td><td colspan="4"></td></tr></tfoot>
</table>
</section>`;
}

function renderSuite(
  r: SuiteReport,
  id: string,
  isStrata: (name: string) => boolean,
): string {
  const m = r.machine;
  const comparisons = r.comparisons.length === 0
    ? `<p class="empty">This suite recorded no comparisons.</p>`
    : comparisonChart(r, id);
  const groups = r.results.length === 0
    ? `<p class="empty">This suite recorded no results.</p>`
    : groupChart(r, id, isStrata);
  const metrics = Object.entries(r.metrics);
  const metricsHtml = metrics.length === 0 ? "" : `<details class="metrics">
<summary>Metrics (${metrics.length})</summary>
<table><tbody>${
    metrics.map(([k, v]) =>
      `<tr><th scope="row">${esc(k)}</th><td class="num">${
        esc(typeof v === "number" ? fmtNumber(v) : v)
      }</td></tr>`
    ).join("\n")
  }</tbody></table>
</details>`;
  return `<section class="suite" id="${id}" data-suite="${
    esc(r.suite)
  }" aria-labelledby="${id}-h">
<h2 id="${id}-h">${esc(r.suite)}${
    r.quick
      ? ' <span class="badge quick" title="STRATA_BENCH_QUICK=1: shrunk sizes, figures are not representative">quick run</span>'
      : ""
  }</h2>
<p class="description">${esc(r.description)}</p>
<dl class="machine">
<div><dt>Measured</dt><dd>${timeTag(r.date)}</dd></div>
<div><dt>Runtime</dt><dd>${esc(m.runtime)} (V8 ${esc(m.v8)})</dd></div>
<div><dt>CPU</dt><dd>${esc(m.cpu)}, ${m.cores} core${
    m.cores === 1 ? "" : "s"
  }</dd></div>
<div><dt>Memory</dt><dd>${fmtNumber(m.memoryGiB)} GiB</dd></div>
<div><dt>OS</dt><dd>${esc(m.os)}</dd></div>
</dl>
<h3>strata ÷ peer</h3>
<p class="legend"><span class="key met"></span> goal met <span class="key missed"></span> goal missed <span class="key nogoal"></span> no goal <span class="key goal"></span> goal <span class="key parity"></span> 1× (parity). Log scale; bars grow from 1× toward the ratio.</p>
${comparisons}
<h3>Results by group</h3>
<p class="legend"><span class="key strata"></span> strata <span class="key peer"></span> peer. Bar length: throughput relative to the fastest in the group (MB/s when every result in the group has it, else ops/s).</p>
${groups}
${metricsHtml}
${resultsTable(r)}
</section>`;
}

// ---------------------------------------------------------------- comparison chart

const CMP_ROW = 44;
const CMP_TOP = 30;
const CMP_BOTTOM = 8;
const CMP_X0 = 96;
const CMP_X1 = CHART_WIDTH - 96;

function comparisonChart(r: SuiteReport, id: string): string {
  const values = [1];
  for (const c of r.comparisons) {
    if (Number.isFinite(c.ratio) && c.ratio > 0) values.push(c.ratio);
    if (c.goal) values.push(c.goal.value);
  }
  const lo = niceDown(Math.min(...values) / 1.15);
  const hi = niceUp(Math.max(...values) * 1.15);
  const x = (v: number) =>
    CMP_X0 +
    (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) *
      (CMP_X1 - CMP_X0);
  const height = CMP_TOP + r.comparisons.length * CMP_ROW + CMP_BOTTOM;
  const tickXs = logTicks(lo, hi).map((t) => fx(x(t)));
  const ticks = logTicks(lo, hi).map((t, i) =>
    `<text class="tick" x="${tickXs[i]}" y="${
      CMP_TOP - 10
    }" text-anchor="middle">${fmtTick(t)}×</text>`
  ).join("");
  // Grid and parity lines are drawn per row, across the bar band only, so
  // they never run through the labels above the bars.
  const band = (barY: number) =>
    tickXs.map((tx) =>
      `<line class="grid" x1="${tx}" x2="${tx}" y1="${barY - 5}" y2="${
        barY + 19
      }"/>`
    ).join("") +
    `<line class="parity" x1="${fx(x(1))}" x2="${fx(x(1))}" y1="${
      barY - 5
    }" y2="${barY + 19}"/>`;
  const rows = r.comparisons.map((c, i) => {
    const y = CMP_TOP + i * CMP_ROW;
    const met = goalMet(c);
    const state = c.goal === undefined ? "nogoal" : met ? "met" : "missed";
    const ratioText = fmtRatio(c.ratio);
    const goalText = c.goal
      ? `goal ${c.goal.op === "<=" ? "≤" : "≥"} ${fmtTick(c.goal.value)}×: ${
        met ? "met" : "missed"
      }`
      : "";
    const meta = `${c.quantity}${goalText ? ` · ${goalText}` : ""}`;
    const labelRoom = Math.floor((CHART_WIDTH - 24) / 7.1) - meta.length - 4;
    const barY = y + 22;
    let bar = "";
    let value: string;
    if (Number.isFinite(c.ratio) && c.ratio > 0) {
      const xr = x(c.ratio);
      const left = Math.min(xr, x(1));
      const w = Math.max(Math.abs(xr - x(1)), 2);
      bar = `<rect class="bar ${state}" x="${fx(left)}" y="${barY}" width="${
        fx(w)
      }" height="14" rx="2"/>`;
      // The number sits past the bar's end; when a goal marker stands just
      // there, past the marker instead so the two never overlap.
      const goalX = c.goal ? x(c.goal.value) : NaN;
      if (c.ratio >= 1) {
        let tx = Math.max(xr, x(1)) + 6;
        if (goalX >= tx - 12 && goalX < tx + 60) tx = goalX + 8;
        value = `<text class="value" x="${fx(tx)}" y="${
          barY + 11.5
        }">${ratioText}</text>`;
      } else {
        let tx = xr - 6;
        if (goalX <= tx + 12 && goalX > tx - 60) tx = goalX - 8;
        value = `<text class="value" x="${fx(tx)}" y="${
          barY + 11.5
        }" text-anchor="end">${ratioText}</text>`;
      }
    } else {
      value = `<text class="value na" x="${fx(x(1) + 6)}" y="${
        barY + 11.5
      }">${ratioText}</text>`;
    }
    const gx = c.goal ? x(c.goal.value) : 0;
    const goal = c.goal
      ? `<path class="goal" d="M${fx(gx)} ${barY - 6}V${barY + 20}"/>` +
        `<path class="goal-tip" d="M${fx(gx - 5)} ${barY - 8}h10l-5 6z"/>`
      : "";
    const tip = `${c.label} [${c.quantity}]: ${ratioText}${
      goalText ? `, ${goalText}` : ""
    }`;
    return `<g class="row" data-label="${esc(c.label)}" data-ratio="${
      dataNum(c.ratio)
    }" data-quantity="${esc(c.quantity)}" data-met="${
      c.goal === undefined ? "none" : String(met)
    }"><title>${esc(tip)}</title>${
      i % 2 === 1
        ? `<rect class="stripe" x="0" y="${y}" width="${CHART_WIDTH}" height="${CMP_ROW}"/>`
        : ""
    }<text class="label" x="12" y="${y + 15}">${
      esc(clip(c.label, Math.max(labelRoom, 24)))
    }<tspan class="meta"> · ${esc(meta)}</tspan></text>${
      band(barY)
    }${bar}${goal}${value}</g>`;
  }).join("\n");
  const title =
    `${r.suite}: strata ÷ peer for ${r.comparisons.length} comparison${
      r.comparisons.length === 1 ? "" : "s"
    } (log scale, 1× is parity)`;
  const desc = r.comparisons.map((c) => `${c.label}: ${fmtRatio(c.ratio)}`)
    .join("; ");
  return `<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" data-chart="comparisons" data-suite="${
    esc(r.suite)
  }" aria-labelledby="${id}-cmp-t ${id}-cmp-d"><title id="${id}-cmp-t">${
    esc(title)
  }</title><desc id="${id}-cmp-d">${esc(desc)}</desc>
${ticks}
${rows}
</svg></figure>`;
}

// ---------------------------------------------------------------- group chart

const GRP_HEAD = 28;
const GRP_ROW = 20;
const GRP_NAME_X = 24;
const GRP_BAR_X0 = 300;
const GRP_BAR_X1 = 700;

function groupChart(
  r: SuiteReport,
  id: string,
  isStrata: (name: string) => boolean,
): string {
  // A suite that names no result as strata's (gfs, raft_core: strata
  // against a limit kept in its metrics) is strata's throughout.
  const anyStrata = r.results.some((x) => isStrata(x.name));
  const groups = new Map<string, SuiteReport["results"]>();
  for (const res of r.results) {
    const list = groups.get(res.group) ?? [];
    list.push(res);
    groups.set(res.group, list);
  }
  let y = 4;
  const blocks: string[] = [];
  for (const [group, list] of groups) {
    const byMb = list.every((x) =>
      x.mbPerSec !== undefined && Number.isFinite(x.mbPerSec)
    );
    const val = (x: (typeof list)[number]) =>
      byMb ? x.mbPerSec ?? NaN : x.opsPerSec;
    const best = Math.max(
      ...list.map(val).filter((v) => Number.isFinite(v) && v > 0),
      0,
    );
    const parts: string[] = [];
    parts.push(
      `<text class="group" x="12" y="${y + 19}">${
        esc(clip(group, 90))
      }<tspan class="meta"> · ${byMb ? "MB/s" : "ops/s"}</tspan></text>`,
    );
    y += GRP_HEAD;
    for (const res of list) {
      const v = val(res);
      const rel = best > 0 && Number.isFinite(v) ? v / best : NaN;
      const strata = !anyStrata || isStrata(res.name);
      const cls = strata ? "strata" : "peer";
      const w = Number.isFinite(rel)
        ? Math.max(rel * (GRP_BAR_X1 - GRP_BAR_X0), 1.5)
        : 0;
      const amount = byMb ? `${fmtNumber(v)} MB/s` : `${fmtOps(v)} ops/s`;
      const text = `${amount}${
        Number.isFinite(rel) ? ` · ${fmtPercent(rel)}` : ""
      }${res.bytes !== undefined ? ` · ${fmtNumber(res.bytes)} B` : ""}`;
      const tip = `${group} · ${res.name}: ${
        fmtOps(res.opsPerSec)
      } ops/s, mean ${fmtNs(res.meanNs)}, p50 ${fmtNs(res.p50Ns)}, p99 ${
        fmtNs(res.p99Ns)
      }${
        res.mbPerSec !== undefined ? `, ${fmtNumber(res.mbPerSec)} MB/s` : ""
      }${
        res.bytes !== undefined ? `, ${fmtNumber(res.bytes)} B` : ""
      }, ${res.samples} samples`;
      parts.push(
        `<g class="row ${cls}" data-group="${esc(group)}" data-name="${
          esc(res.name)
        }" data-relative="${dataNum(rel)}"><title>${esc(tip)}</title>` +
          `<text class="name" x="${GRP_NAME_X}" y="${y + 14}">${
            esc(clip(res.name, 38))
          }</text>` +
          `<rect class="track" x="${GRP_BAR_X0}" y="${y + 4}" width="${
            GRP_BAR_X1 - GRP_BAR_X0
          }" height="12" rx="2"/>` +
          (w > 0
            ? `<rect class="bar ${cls}" x="${GRP_BAR_X0}" y="${y + 4}" width="${
              fx(w)
            }" height="12" rx="2"/>`
            : "") +
          `<text class="value" x="${GRP_BAR_X1 + 8}" y="${y + 14}">${
            esc(text)
          }</text></g>`,
      );
      y += GRP_ROW;
    }
    blocks.push(
      `<g class="block" data-group="${esc(group)}">${parts.join("")}</g>`,
    );
    y += 6;
  }
  const height = y + 4;
  const title =
    `${r.suite}: ${r.results.length} results in ${groups.size} group${
      groups.size === 1 ? "" : "s"
    }, each relative to the fastest of its group`;
  return `<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" data-chart="groups" data-suite="${
    esc(r.suite)
  }" aria-labelledby="${id}-grp-t"><title id="${id}-grp-t">${esc(title)}</title>
${blocks.join("\n")}
</svg></figure>`;
}

function resultsTable(r: SuiteReport): string {
  if (r.results.length === 0) return "";
  const rows = r.results.map((x) =>
    `<tr><td>${esc(x.group)}</td><td>${esc(x.name)}</td><td class="num">${
      fmtOps(x.opsPerSec)
    }</td><td class="num">${fmtNs(x.meanNs)}</td><td class="num">${
      fmtNs(x.p50Ns)
    }</td><td class="num">${fmtNs(x.p99Ns)}</td><td class="num">${
      x.bytes === undefined ? "" : fmtNumber(x.bytes)
    }</td><td class="num">${
      x.mbPerSec === undefined ? "" : fmtNumber(x.mbPerSec)
    }</td><td class="num">${x.samples}</td></tr>`
  ).join("\n");
  return `<details class="results">
<summary>All results (${r.results.length})</summary>
<table><thead><tr><th>Group</th><th>Name</th><th>ops/s</th><th>mean</th><th>p50</th><th>p99</th><th>bytes</th><th>MB/s</th><th>samples</th></tr></thead>
<tbody>${rows}</tbody></table>
</details>`;
}

// ---------------------------------------------------------------- helpers

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ESCAPES[ch] ?? ch);
}
const esc = escapeHtml;
const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * A ratio as the page prints it: three significant figures and "×"
 * (0.551×, 11.4×, 2.00×), "n/a" when not finite.
 */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return "n/a";
  // toPrecision(3) switches to exponent form once it rounds to 1000.
  if (Math.abs(r) >= 999.5) return `${r.toFixed(0)}×`;
  if (r === 0) return "0×";
  return `${r.toPrecision(3)}×`;
}

function goalMet(c: SuiteReport["comparisons"][number]): boolean | undefined {
  if (c.goal === undefined) return undefined;
  if (c.met !== undefined) return c.met;
  if (!Number.isFinite(c.ratio)) return false;
  return c.goal.op === "<=" ? c.ratio <= c.goal.value : c.ratio >= c.goal.value;
}

function suiteIds(reports: readonly SuiteReport[]): string[] {
  const seen = new Set<string>();
  return reports.map((r, i) => {
    const slug = r.suite.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(
      /^-|-$/g,
      "",
    ) || String(i);
    let id = `suite-${slug}`;
    for (let n = i; seen.has(id); n++) id = `suite-${slug}-${n}`;
    seen.add(id);
    return id;
  });
}

function shortMachine(r: SuiteReport): string {
  const m = r.machine;
  return `${m.runtime} · ${m.cpu} · ${m.cores} cores · ${
    fmtNumber(m.memoryGiB)
  } GiB · ${m.os}`;
}

function timeTag(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return esc(iso);
  const text = `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return `<time datetime="${esc(d.toISOString())}">${text}</time>`;
}

/** The largest 1-2-5 step not above `v`. */
function niceDown(v: number): number {
  const k = Math.floor(Math.log10(v));
  for (const m of [5, 2, 1]) {
    const s = cleanStep(m, k);
    if (s <= v) return s;
  }
  return cleanStep(1, k);
}

/** The smallest 1-2-5 step not below `v`. */
function niceUp(v: number): number {
  const k = Math.floor(Math.log10(v));
  for (const m of [1, 2, 5]) {
    const s = cleanStep(m, k);
    if (s >= v) return s;
  }
  return cleanStep(1, k + 1);
}

function cleanStep(m: number, k: number): number {
  return Number((m * 10 ** k).toPrecision(1));
}

/** 1-2-5 ticks within [lo, hi]; decades only when those would crowd. */
function logTicks(lo: number, hi: number): number[] {
  const all: number[] = [];
  const decades: number[] = [];
  for (
    let k = Math.floor(Math.log10(lo));
    k <= Math.ceil(Math.log10(hi));
    k++
  ) {
    for (const m of [1, 2, 5]) {
      const t = cleanStep(m, k);
      if (t < lo * 0.999 || t > hi * 1.001) continue;
      all.push(t);
      if (m === 1) decades.push(t);
    }
  }
  return all.length <= 11 ? all : decades;
}

function fmtTick(v: number): string {
  return String(Number(v.toPrecision(3)));
}

function fx(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function dataNum(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(6))) : "NaN";
}

function clip(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join("")}…`;
}

function fmtPercent(rel: number): string {
  const p = rel * 100;
  return `${p >= 10 ? p.toFixed(0) : p.toPrecision(2)}%`;
}

function fmtNumber(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString("en-US");
  return String(Number(n.toPrecision(4)));
}

function fmtOps(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(1);
}

function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return "n/a";
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function pathOf(p: string | URL): string {
  return typeof p === "string"
    ? p
    : p.protocol === "file:"
    ? fileURLToPath(p)
    : p.href;
}

function joinPath(dir: string | URL, file: string): string | URL {
  if (typeof dir !== "string") {
    return new URL(file, dir.href.endsWith("/") ? dir : `${dir.href}/`);
  }
  return `${dir.replace(/\/+$/, "")}/${file}`;
}

const STYLE = `
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#fff;--met:#2f9e44;--missed:#e03131;--nogoal:#7b8fb8;--strata:#7048e8;--peer:#adb5bd;--goal:#f08c00}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg);margin:0 auto;max-width:1000px;padding:1.5rem 1rem 4rem}
h1{font-size:1.7rem;margin:.2rem 0 .4rem}
h2{font-size:1.35rem;margin:2.2rem 0 .3rem;padding-top:1rem;border-top:2px solid var(--line)}
h3{font-size:1.05rem;margin:1.4rem 0 .2rem}
code{background:#eef2f6;padding:.05rem .3rem;border-radius:4px;font-size:.92em}
a{color:#364fc7}
.page p{color:var(--muted);margin:.2rem 0}
.description{margin:.2rem 0 .6rem}
.machine{display:flex;flex-wrap:wrap;gap:.2rem 1.4rem;margin:0;font-size:.88rem;color:var(--muted)}
.machine div{display:flex;gap:.35rem}.machine dt{font-weight:600;color:var(--ink)}.machine dd{margin:0}
table{border-collapse:collapse;font-size:.88rem;width:100%}
th,td{text-align:left;padding:.28rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-weight:600;color:var(--muted);border-bottom:2px solid var(--line)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.met{color:var(--met);font-weight:600}td.missed{color:var(--missed);font-weight:600}td.none{color:var(--muted)}
td time{white-space:nowrap}
.machine-short{color:var(--muted);font-size:.8rem}
.badge{display:inline-block;font-size:.7rem;font-weight:600;padding:.05rem .4rem;border-radius:999px;vertical-align:middle}
.badge.quick{background:#fff3bf;color:#8a6d00;border:1px solid #f0d264}
.skipped{background:#fff5f5;border:1px solid #ffc9c9;border-radius:8px;padding:.4rem 1rem;margin:1rem 0}
.skipped h2{border:0;margin:.3rem 0;padding:0;font-size:1.1rem;color:var(--missed)}
.empty{color:var(--muted);font-style:italic}
.legend{font-size:.8rem;color:var(--muted);margin:.1rem 0 .3rem}
.key{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;vertical-align:-.1rem;margin-left:.5rem}
.key.met{background:var(--met)}.key.missed{background:var(--missed)}.key.nogoal{background:var(--nogoal)}
.key.strata{background:var(--strata)}.key.peer{background:var(--peer)}
.key.goal{width:3px;background:var(--goal)}.key.parity{width:2px;background:var(--ink);height:1rem}
figure.chart{margin:0;overflow-x:auto}
figure.chart svg{display:block;width:100%;height:auto;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg .label{font-size:13px;fill:var(--ink)}
svg .meta{fill:var(--muted);font-size:11.5px}
svg .tick{font-size:11px;fill:var(--muted)}
svg .grid{stroke:var(--line);stroke-width:1}
svg .parity{stroke:var(--ink);stroke-width:1.5}
svg .goal{stroke:var(--goal);stroke-width:3;stroke-linecap:round;fill:none}svg .goal-tip{fill:var(--goal)}
svg .stripe{fill:#f6f8fa}
svg .bar.met{fill:var(--met)}svg .bar.missed{fill:var(--missed)}svg .bar.nogoal{fill:var(--nogoal)}
svg .value{font-size:12px;font-weight:600;fill:var(--ink);font-variant-numeric:tabular-nums}
svg .value.na{fill:var(--muted);font-style:italic}
svg .group{font-size:13px;font-weight:600;fill:var(--ink)}
svg .name{font-size:12px;fill:var(--muted)}
svg .strata .name{fill:var(--strata);font-weight:700}
svg .track{fill:#f1f3f5}
svg .bar.strata{fill:var(--strata)}svg .bar.peer{fill:var(--peer)}
svg .row:hover .label,svg .row:hover .name{text-decoration:underline}
details{margin:.8rem 0;font-size:.9rem}summary{cursor:pointer;color:var(--muted)}
details table{margin-top:.4rem}
`;

// ---------------------------------------------------------------- edges: files and CLI

/** Where `deno task report` reads from and writes to by default. */
export const DEFAULT_RESULTS_DIR = fileURLToPath(
  new URL("./results/", import.meta.url),
);
/** The page the dashboard serves (`/report`). */
export const DEFAULT_REPORT_FILE = fileURLToPath(
  new URL("./report/index.html", import.meta.url),
);

const argsSchema = z.object({
  results: z.string().trim().min(1, "--results needs a folder"),
  out: z.string().trim().min(1, "--out needs a file").refine(
    (p) => p.endsWith(".html"),
    "--out must name an .html file",
  ),
  help: z.boolean(),
});

/** The command line of `deno task report`, validated. */
export type ReportArgs = z.infer<typeof argsSchema>;

/** Usage text of the CLI. */
export const USAGE =
  `usage: deno run -A benches/report.ts [--results DIR] [--out FILE.html]
  --results DIR   folder of <suite>.json files (default benches/results)
  --out FILE      page to write (default benches/report/index.html)`;

/**
 * Parses and validates the CLI flags (pure).
 * @throws ReportError `bad_flag` on an unknown flag, a missing value or a bad path.
 */
export function parseReportArgs(args: readonly string[]): ReportArgs {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        results: { type: "string", default: DEFAULT_RESULTS_DIR },
        out: { type: "string", default: DEFAULT_REPORT_FILE },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new ReportError("bad_flag", `${errorText(e)}\n${USAGE}`, {
      cause: e,
    });
  }
  const r = argsSchema.safeParse(values);
  if (!r.success) {
    throw new ReportError(
      "bad_flag",
      `${r.error.issues.map((i) => i.message).join("; ")}\n${USAGE}`,
    );
  }
  return r.data;
}

/** What {@link writeReport} did. */
export interface WrittenReport {
  /** Absolute path of the page. */
  path: string;
  /** Suites on the page. */
  suites: number;
  /** Files skipped, with reasons. */
  problems: ResultProblem[];
}

/**
 * Loads the results in `resultsDir`, renders them and writes the page to
 * `outFile` (creating its folder).
 * @throws ReportError `results_unreadable` when the folder cannot be listed.
 */
export async function writeReport(
  resultsDir: string,
  outFile: string,
  now: Date = new Date(),
): Promise<WrittenReport> {
  const { reports, problems } = await loadResults(resultsDir);
  const html = renderReport(reports, {
    generatedAt: now,
    source: displayPath(resultsDir),
    skipped: problems,
  });
  const path = resolve(outFile);
  await Deno.mkdir(dirname(path), { recursive: true });
  // Write beside, then rename: the dashboard never serves half a page.
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, html);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return { path, suites: reports.length, problems };
}

function displayPath(p: string): string {
  const abs = resolve(p);
  const root = resolve(fileURLToPath(new URL("../", import.meta.url)));
  return abs.startsWith(`${root}/`) ? abs.slice(root.length + 1) : abs;
}

async function main(): Promise<number> {
  try {
    const args = parseReportArgs(Deno.args);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    const w = await writeReport(args.results, args.out);
    for (const p of w.problems) {
      console.error(`report: skipped ${p.file}: ${p.message}`);
    }
    console.log(
      `wrote ${w.path} (${w.suites} suite${w.suites === 1 ? "" : "s"}${
        w.problems.length ? `, ${w.problems.length} file(s) skipped` : ""
      })`,
    );
    return 0;
  } catch (e) {
    if (e instanceof ReportError) {
      console.error(`report: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main());
