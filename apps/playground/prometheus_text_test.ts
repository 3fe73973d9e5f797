import assert from "node:assert/strict";
import { parsePrometheusText, sumSamples } from "./prometheus_text.ts";

const PAGE =
  `# HELP strata_raft_bytes_sent_total Bytes of raft messages put on the wire.
# TYPE strata_raft_bytes_sent_total counter
strata_raft_bytes_sent_total{type="MsgApp"} 1200
strata_raft_bytes_sent_total{type="MsgHeartbeat"} 300
strata_raft_diff_bytes_saved_total{type="MsgApp"} 4096
strata_raft_term 7
weird_label{path="a \\"quoted\\" \\\\ path",x="1"} 2.5 1700000000000
gauge_inf +Inf
this line is not a sample
broken{a="unterminated} 3
`;

Deno.test("the parser reads names, labels and values of every sample line", () => {
  const samples = parsePrometheusText(PAGE);
  assert.deepEqual(samples.map((s) => s.name), [
    "strata_raft_bytes_sent_total",
    "strata_raft_bytes_sent_total",
    "strata_raft_diff_bytes_saved_total",
    "strata_raft_term",
    "weird_label",
    "gauge_inf",
  ]);
  assert.deepEqual(samples[0]!.labels, { type: "MsgApp" });
  assert.equal(samples[3]!.value, 7);
  assert.deepEqual(samples[4]!.labels, { path: 'a "quoted" \\ path', x: "1" });
  assert.equal(samples[4]!.value, 2.5);
  assert.equal(samples[5]!.value, Infinity);
});

Deno.test("sums add every label set of a metric and can filter by label", () => {
  const samples = parsePrometheusText(PAGE);
  assert.equal(sumSamples(samples, "strata_raft_bytes_sent_total"), 1500);
  assert.equal(
    sumSamples(samples, "strata_raft_bytes_sent_total", { type: "MsgApp" }),
    1200,
  );
  assert.equal(sumSamples(samples, "missing_metric"), 0);
  // Infinite gauges are left out of sums rather than poisoning them.
  assert.equal(sumSamples(samples, "gauge_inf"), 0);
});

Deno.test("an empty or garbage page yields no samples instead of throwing", () => {
  assert.deepEqual(parsePrometheusText(""), []);
  assert.deepEqual(parsePrometheusText("{}}} 12\n\u0000\n"), []);
});
