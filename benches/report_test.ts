import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { SuiteReport } from "./harness.ts";
import {
  DEFAULT_REPORT_FILE,
  DEFAULT_RESULTS_DIR,
  escapeHtml,
  fmtRatio,
  loadResults,
  parseReportArgs,
  parseResults,
  renderReport,
  ReportError,
  writeReport,
} from "./report.ts";

/** The fixture results (never benches/results: those change every run). */
const FIXTURES = fileURLToPath(
  new URL("../fixtures/bench_report/", import.meta.url),
);
/** A fixed render time, so every page below is byte-for-byte repeatable. */
const AT = new Date("2026-02-03T04:05:06.000Z");

/** The fixture files as written, read without report.ts, sorted by name. */
async function rawFixtures(): Promise<{ file: string; raw: RawReport }[]> {
  const out: { file: string; raw: RawReport }[] = [];
  for await (const e of Deno.readDir(FIXTURES)) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    const raw = JSON.parse(
      await Deno.readTextFile(`${FIXTURES}${e.name}`),
    ) as RawReport;
    out.push({ file: e.name, raw });
  }
  return out.sort((a, b) => a.file < b.file ? -1 : 1);
}

/** A report as JSON holds it: NaN ratios are stored as null. */
type RawReport =
  & Omit<SuiteReport, "comparisons">
  & {
    comparisons: (
      & Omit<SuiteReport["comparisons"][number], "ratio">
      & { ratio: number | null }
    )[];
  };

function count(haystack: string, needle: string | RegExp): number {
  if (typeof needle === "string") return haystack.split(needle).length - 1;
  return [...haystack.matchAll(needle)].length;
}

/** The `<section class="suite">` of one suite, up to its end. */
function sectionOf(html: string, suite: string): string {
  const at = html.indexOf(
    `" data-suite="${escapeHtml(suite)}" aria-labelledby="`,
  );
  const start = html.lastIndexOf('<section class="suite"', at);
  assert.ok(at >= 0 && start >= 0, `no section for ${suite}`);
  const end = html.indexOf("</section>", start);
  assert.ok(end > start);
  return html.slice(start, end);
}

/** The `<svg data-chart=kind>` of one suite. */
function chartOf(html: string, kind: string, suite: string): string {
  const marker = `data-chart="${kind}" data-suite="${escapeHtml(suite)}"`;
  const at = html.indexOf(marker);
  assert.ok(at >= 0, `no ${kind} chart for ${suite}`);
  const start = html.lastIndexOf("<svg", at);
  return html.slice(start, html.indexOf("</svg>", at) + "</svg>".length);
}

function goalMet(
  c: RawReport["comparisons"][number],
): boolean | undefined {
  if (!c.goal) return undefined;
  if (c.met !== undefined) return c.met;
  if (c.ratio === null) return false;
  return c.goal.op === "<=" ? c.ratio <= c.goal.value : c.ratio >= c.goal.value;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata_report_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function copyFixtures(to: string): Promise<void> {
  for (const { file } of await rawFixtures()) {
    await Deno.copyFile(`${FIXTURES}${file}`, `${to}/${file}`);
  }
}

// ---------------------------------------------------------------- rendering

Deno.test("fixtures: every suite gets one chart per non-empty part, with its labels", async () => {
  const raws = await rawFixtures();
  assert.ok(raws.length >= 3, "the fixture set is missing");
  const { reports, problems } = await loadResults(FIXTURES);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    reports.map((r) => r.suite),
    raws.map((f) => f.raw.suite),
    "reports load in file-name order",
  );
  const html = renderReport(reports, { generatedAt: AT });
  assert.equal(html, renderReport(reports, { generatedAt: AT }));
  assert.ok(html.includes(`<time datetime="${AT.toISOString()}">`));

  // One comparisons chart per suite with comparisons, one groups chart per
  // suite with results; nothing else on the page is an <svg>.
  const withCmp = raws.filter((f) => f.raw.comparisons.length > 0).length;
  const withRes = raws.filter((f) => f.raw.results.length > 0).length;
  assert.ok(withCmp > 0 && withRes > withCmp, "fixtures cover both cases");
  assert.equal(count(html, "<svg"), withCmp + withRes);
  assert.equal(count(html, "</svg>"), withCmp + withRes);
  assert.equal(count(html, 'data-chart="comparisons"'), withCmp);
  assert.equal(count(html, 'data-chart="groups"'), withRes);
  assert.equal(count(html, /<svg [^>]*role="img"/g), withCmp + withRes);
  assert.equal(count(html, '<section class="suite"'), raws.length);
  assert.equal(
    count(html, "This suite recorded no comparisons."),
    raws.length - withCmp,
  );

  // Summary: one row per suite, goals tallied from the files.
  let goals = 0;
  let met = 0;
  for (const { raw } of raws) {
    for (const c of raw.comparisons) {
      if (!c.goal) continue;
      goals++;
      if (goalMet(c)) met++;
    }
  }
  assert.ok(
    html.includes(
      `<table class="summary" data-goals-met="${met}" data-goals="${goals}">`,
    ),
  );
  assert.ok(goals > met && met > 0, "fixtures cover met and missed goals");

  for (const { raw } of raws) {
    const name = escapeHtml(raw.suite);
    assert.ok(html.includes(`<tr data-suite="${name}">`), raw.suite);
    const section = sectionOf(html, raw.suite);
    assert.ok(section.includes(`>${name}`), `${raw.suite}: heading`);
    assert.ok(section.includes(escapeHtml(raw.description)));
    // Machine and date.
    const m = raw.machine;
    assert.ok(section.includes(`${escapeHtml(m.runtime)} (V8 ${m.v8})`));
    assert.ok(section.includes(`${escapeHtml(m.cpu)}, ${m.cores} core`));
    assert.ok(section.includes(`<dd>${escapeHtml(m.os)}</dd>`));
    assert.ok(section.includes(`${m.memoryGiB} GiB`));
    const iso = new Date(raw.date).toISOString();
    assert.ok(
      section.includes(
        `<time datetime="${iso}">${
          iso.slice(0, 16).replace("T", " ")
        } UTC</time>`,
      ),
      `${raw.suite}: date`,
    );
    assert.equal(
      section.includes('<span class="badge quick"'),
      raw.quick,
      `${raw.suite}: quick badge`,
    );

    if (raw.comparisons.length > 0) {
      const chart = chartOf(html, "comparisons", raw.suite);
      assert.equal(count(chart, '<g class="row"'), raw.comparisons.length);
      // Each row draws the 1× parity line across its bar band.
      assert.equal(
        count(chart, '<line class="parity"'),
        raw.comparisons.length,
      );
      for (const c of raw.comparisons) {
        const text = fmtRatio(c.ratio ?? NaN);
        assert.ok(
          chart.includes(`data-label="${escapeHtml(c.label)}"`),
          c.label,
        );
        assert.ok(chart.includes(`>${text}</text>`), `${c.label}: ${text}`);
        assert.ok(
          chart.includes(`${escapeHtml(`${c.label}: ${text}`)}`),
          `${c.label}: described`,
        );
        const state = goalMet(c);
        assert.ok(
          chart.includes(
            `data-met="${state === undefined ? "none" : String(state)}"`,
          ),
        );
      }
    }
    if (raw.results.length > 0) {
      const chart = chartOf(html, "groups", raw.suite);
      const groups = new Set(raw.results.map((r) => r.group));
      assert.equal(count(chart, '<g class="block"'), groups.size);
      assert.equal(
        count(chart, /<g class="row (strata|peer)"/g),
        raw.results.length,
      );
      const anyStrata = raw.results.some((r) => /strata/i.test(r.name));
      for (const r of raw.results) {
        const cls = !anyStrata || /strata/i.test(r.name) ? "strata" : "peer";
        assert.ok(
          chart.includes(
            `<g class="row ${cls}" data-group="${
              escapeHtml(r.group)
            }" data-name="${escapeHtml(r.name)}"`,
          ),
          `${raw.suite}: ${r.name} is drawn as ${cls}`,
        );
      }
    }
  }
});

Deno.test("fixtures: ratio labels and relative bars carry the files' figures", async () => {
  const { reports } = await loadResults(FIXTURES);
  const html = renderReport(reports, { generatedAt: AT });
  const kv = chartOf(html, "comparisons", "fixture-kv");
  assert.ok(kv.includes('data-label="get bytes vs peerdb" data-ratio="3.25"'));
  assert.ok(kv.includes(">3.25×</text>"));
  assert.equal(count(kv, ">0.500×</text>"), 2);
  assert.ok(kv.includes("goal ≤ 2×: met"));
  assert.ok(kv.includes("goal ≥ 1×: missed"));
  const groups = chartOf(html, "groups", "fixture-kv");
  // put: peerdb is fastest (40k ops/s), strata half of it.
  assert.ok(
    groups.includes(
      'data-group="put ×16 clients" data-name="strata" data-relative="0.5"',
    ),
  );
  assert.ok(
    groups.includes(
      'data-group="put ×16 clients" data-name="peerdb" data-relative="1"',
    ),
  );
  // log: every result has MB/s, so bars are by MB/s.
  const log = chartOf(html, "groups", "fixture-log");
  assert.ok(log.includes("MB/s</tspan>"));
  assert.ok(log.includes('data-name="strata log" data-relative="0.25"'));
  assert.ok(log.includes(">1.024 MB/s · 25%</text>"));
});

Deno.test("fmtRatio: three significant figures, n/a when not finite", () => {
  assert.equal(fmtRatio(0.551), "0.551×");
  assert.equal(fmtRatio(11.4), "11.4×");
  assert.equal(fmtRatio(2), "2.00×");
  assert.equal(fmtRatio(0), "0×");
  assert.equal(fmtRatio(999.4), "999×");
  assert.equal(fmtRatio(999.7), "1000×"); // not "1.00e+3×"
  assert.equal(fmtRatio(12345.6), "12346×");
  assert.equal(fmtRatio(NaN), "n/a");
  assert.equal(fmtRatio(Infinity), "n/a");
  assert.equal(fmtRatio(-Infinity), "n/a");
});

Deno.test("null ratios and metrics are read as NaN and printed n/a", async () => {
  const raws = await rawFixtures();
  const nulls = raws.flatMap(({ raw }) =>
    raw.comparisons.filter((c) => c.ratio === null).map((c) => ({ raw, c }))
  );
  assert.ok(nulls.length > 0, "a fixture must hold a null ratio");
  const { reports } = await loadResults(FIXTURES);
  const html = renderReport(reports, { generatedAt: AT });
  for (const { raw, c } of nulls) {
    const loaded = reports.find((r) => r.suite === raw.suite)?.comparisons
      .find((x) => x.label === c.label);
    assert.ok(loaded && Number.isNaN(loaded.ratio), c.label);
    const chart = chartOf(html, "comparisons", raw.suite);
    const row = chart.slice(
      chart.indexOf(`data-label="${escapeHtml(c.label)}"`),
    );
    assert.match(row, /^data-label="[^"]*" data-ratio="NaN"/);
    assert.match(
      row.slice(0, row.indexOf("</g>")),
      /class="value na"[^>]*>n\/a<\/text>/,
    );
    assert.ok(!row.slice(0, row.indexOf("</g>")).includes('class="bar'));
    assert.ok(chart.includes(`${escapeHtml(c.label)}: n/a`), "described");
  }
  // A null metric (fixture-log) prints n/a, not "NaN" or "null".
  const log = sectionOf(html, "fixture-log");
  assert.ok(
    log.includes(
      '<th scope="row">a ratio over zero</th><td class="num">n/a</td>',
    ),
  );
  assert.ok(!/>\s*(NaN|null|undefined)\b/.test(html));
});

Deno.test("hostile strings from the files are escaped everywhere", async () => {
  const { reports } = await loadResults(FIXTURES);
  const hostile = reports.find((r) => r.suite.includes("<"));
  assert.ok(hostile, "fixture_hostile.json must load");
  const html = renderReport(reports, {
    generatedAt: AT,
    source: "<img src=y>",
    skipped: [{ file: "<b>x.json", message: "is <i>bad</i>" }],
  });
  for (const raw of ["<img", "<b>", "<i>", "<s>", "<script", "</script"]) {
    assert.ok(!html.includes(raw), `raw ${raw} in the page`);
  }
  assert.ok(html.includes("fixture-hostile &lt;b&gt;"));
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt; &amp; friends"));
  assert.ok(html.includes("Fixture &quot;CPU&quot; &lt;3000&gt;"));
  assert.ok(html.includes('data-name="strata &quot;quoted&quot; &lt;s&gt;"'));
  assert.ok(
    html.includes(
      "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;",
    ),
  );
  assert.ok(html.includes('data-skipped-file="&lt;b&gt;x.json"'));
  // Only the renderer's own elements appear, and no data-borne attribute.
  const tags = new Set(
    [...html.matchAll(/<\/?([a-zA-Z][\w-]*)/g)].map((m) => m[1]!.toLowerCase()),
  );
  const allowed = new Set(
    ("html head meta title style body header h1 h2 h3 p time code section ul li " +
      "main table thead tbody tfoot tr th td a span dl div dt dd figure svg desc " +
      "text tspan g rect line path details summary").split(" "),
  );
  assert.deepEqual([...tags].filter((t) => !allowed.has(t)), []);
  assert.ok(!/<[^>]*\son\w+=/i.test(html), "an event handler attribute");
  // Suite ids are slugs, so anchors cannot carry markup either.
  assert.ok(html.includes('id="suite-fixture-hostile-b"'));
});

Deno.test("escapeHtml escapes the five HTML metacharacters", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

Deno.test("suites whose names slug alike get distinct ids", async () => {
  const { reports } = await loadResults(FIXTURES);
  const base = reports[0]!;
  const named = (suite: string) => ({ ...base, suite });
  const html = renderReport(
    [named("x 2"), named("x"), named("X"), named("x")],
    { generatedAt: AT },
  );
  const ids = [...html.matchAll(/<section class="suite" id="([^"]+)"/g)]
    .map((m) => m[1]);
  assert.equal(ids.length, 4);
  assert.equal(new Set(ids).size, 4, `duplicate ids: ${ids.join(", ")}`);
});

// ---------------------------------------------------------------- loading

Deno.test("a malformed results file is skipped and reported; the rest render", async () => {
  await withTempDir(async (dir) => {
    const raws = await rawFixtures();
    await copyFixtures(dir);
    await Deno.writeTextFile(`${dir}/aa_broken.json`, "{ not json");
    await Deno.writeTextFile(
      `${dir}/zz_wrong_shape.json`,
      JSON.stringify({ suite: "", results: "many" }),
    );
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a results file");
    await Deno.mkdir(`${dir}/folder.json`);

    const { reports, problems } = await loadResults(dir);
    assert.deepEqual(
      reports.map((r) => r.suite),
      raws.map((f) => f.raw.suite),
    );
    assert.deepEqual(problems.map((p) => p.file), [
      "aa_broken.json",
      "zz_wrong_shape.json",
    ]);
    assert.match(problems[0]!.message, /^is not valid JSON/);
    assert.match(problems[1]!.message, /^is not a suite report: .*suite/);
    assert.match(problems[1]!.message, /\(and \d+ more\)$/);

    const html = renderReport(reports, { generatedAt: AT, skipped: problems });
    assert.ok(html.includes('<section class="skipped" id="skipped"'));
    for (const p of problems) {
      assert.ok(html.includes(`data-skipped-file="${p.file}"`));
      assert.ok(html.includes(escapeHtml(p.message)));
    }
    const clean = renderReport(reports, { generatedAt: AT });
    assert.equal(count(html, "<svg"), count(clean, "<svg"));
    assert.ok(count(html, "<svg") > 0);
    assert.ok(!clean.includes('id="skipped"'));
  });
});

Deno.test("parseResults: reports JSON and schema errors, keeps null as NaN", () => {
  const bad = parseResults("[");
  assert.equal(bad.ok, false);
  const shape = parseResults("{}");
  assert.ok(!shape.ok && shape.message.startsWith("is not a suite report"));
  const scalar = parseResults("42");
  assert.ok(!scalar.ok && scalar.message.includes("(top level)"));
  const good = parseResults(JSON.stringify({
    suite: "s",
    description: "",
    date: "2026-01-01T00:00:00.000Z",
    machine: { runtime: "", v8: "", os: "", cpu: "", cores: 1, memoryGiB: 1 },
    quick: false,
    results: [{
      group: "g",
      name: "n",
      opsPerSec: null,
      meanNs: 1,
      p50Ns: 1,
      p99Ns: 1,
      samples: 1,
    }],
    comparisons: [{ label: "l", ratio: null, quantity: "time" }],
    metrics: { m: null, t: "text" },
  }));
  assert.ok(good.ok);
  assert.ok(Number.isNaN(good.report.comparisons[0]!.ratio));
  assert.ok(Number.isNaN(good.report.results[0]!.opsPerSec));
  assert.ok(Number.isNaN(good.report.metrics.m));
  assert.equal(good.report.metrics.t, "text");
});

Deno.test("an unreadable results folder is results_unreadable", async () => {
  await withTempDir(async (dir) => {
    const isUnreadable = (e: unknown) =>
      e instanceof ReportError && e.code === "results_unreadable" &&
      e.name === "ReportError";
    await assert.rejects(loadResults(`${dir}/missing`), isUnreadable);
    await Deno.writeTextFile(`${dir}/file.json`, "{}");
    await assert.rejects(loadResults(`${dir}/file.json`), isUnreadable);
    await assert.rejects(
      writeReport(`${dir}/missing`, `${dir}/out/index.html`, AT),
      isUnreadable,
    );
    // Nothing is written when the results cannot be read.
    await assert.rejects(Deno.stat(`${dir}/out`), Deno.errors.NotFound);
  });
});

Deno.test("loadResults accepts a file: URL as well as a path", async () => {
  const byPath = await loadResults(FIXTURES);
  const byUrl = await loadResults(
    new URL("../fixtures/bench_report", import.meta.url),
  );
  assert.deepEqual(byUrl, byPath);
});

// ---------------------------------------------------------------- CLI and writing

Deno.test("parseReportArgs: defaults, values, and bad_flag", () => {
  const d = parseReportArgs([]);
  assert.deepEqual(d, {
    results: DEFAULT_RESULTS_DIR,
    out: DEFAULT_REPORT_FILE,
    help: false,
  });
  assert.ok(DEFAULT_REPORT_FILE.endsWith("/benches/report/index.html"));
  assert.ok(!DEFAULT_RESULTS_DIR.includes("%"));
  assert.deepEqual(parseReportArgs(["--results", "r", "--out", "o.html"]), {
    results: "r",
    out: "o.html",
    help: false,
  });
  assert.equal(parseReportArgs(["-h"]).help, true);
  const badFlag = (e: unknown) =>
    e instanceof ReportError && e.code === "bad_flag" &&
    e.message.includes("usage:");
  for (
    const args of [
      ["--nope"],
      ["positional"],
      ["--results"],
      ["--out"],
      ["--results", "  "],
      ["--out", "report.txt"],
      ["--out", ""],
      ["--help=yes"],
    ]
  ) {
    assert.throws(() => parseReportArgs(args), badFlag, args.join(" "));
  }
});

Deno.test("writeReport writes the rendered page to --out (a temp path)", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/nested/page/index.html`;
    const args = parseReportArgs(["--results", FIXTURES, "--out", out]);
    const w = await writeReport(args.results, args.out, AT);
    assert.equal(w.path, out);
    assert.deepEqual(w.problems, []);
    const { reports } = await loadResults(FIXTURES);
    assert.equal(w.suites, reports.length);
    const page = await Deno.readTextFile(out);
    assert.equal(
      page,
      renderReport(reports, {
        generatedAt: AT,
        source: "fixtures/bench_report",
      }),
    );
    assert.ok(page.includes("<code>fixtures/bench_report</code>"));
    // Written beside and renamed: no temporary file is left.
    const left = [];
    for await (const e of Deno.readDir(`${dir}/nested/page`)) left.push(e.name);
    assert.deepEqual(left, ["index.html"]);

    // A second run over a folder with a broken file replaces the page and
    // lists the skipped file.
    const results = `${dir}/results`;
    await Deno.mkdir(results);
    await copyFixtures(results);
    await Deno.writeTextFile(`${results}/broken.json`, "nope");
    const again = await writeReport(results, out, AT);
    assert.deepEqual(again.problems.map((p) => p.file), ["broken.json"]);
    assert.equal(again.suites, reports.length);
    const page2 = await Deno.readTextFile(out);
    assert.ok(page2.includes('data-skipped-file="broken.json"'));
    assert.equal(count(page2, "<svg"), count(page, "<svg"));
  });
});

Deno.test("the CLI writes the page and exits 2 on a bad flag", async () => {
  await withTempDir(async (dir) => {
    const script = fileURLToPath(new URL("./report.ts", import.meta.url));
    const run = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-lock", script, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const out = `${dir}/index.html`;
    const ok = await run(["--results", FIXTURES, "--out", out]);
    const dec = new TextDecoder();
    assert.equal(ok.code, 0, dec.decode(ok.stderr));
    const suites = (await rawFixtures()).length;
    assert.ok(
      dec.decode(ok.stdout).startsWith(`wrote ${out} (${suites} suites)`),
      dec.decode(ok.stdout),
    );
    assert.ok((await Deno.stat(out)).isFile);
    const bad = await run(["--out", `${dir}/x.txt`]);
    assert.equal(bad.code, 2);
    assert.match(
      dec.decode(bad.stderr),
      /^report: --out must name an \.html file/,
    );
  });
});
