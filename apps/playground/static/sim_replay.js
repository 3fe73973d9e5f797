/**
 * Simulation replay panel for the playground: pick a scenario and a seed
 * (or paste the line a failing seeded test printed), run it, and step
 * through the timeline with the cluster drawn at each step.
 *
 * Plain ES module, no dependencies, no build step. Every element a test
 * drives has an id or data attribute starting with `sim-`:
 * `#sim-scenario`, `#sim-seed`, `#sim-run`, `#sim-first`, `#sim-prev`,
 * `#sim-play`, `#sim-next`, `#sim-last`, `#sim-slider`, `#sim-step-pos`,
 * `#sim-step-text`, `#sim-status`, `#sim-note`, `#sim-error`, `#sim-svg`, `#sim-events`,
 * `#sim-nodes`, `[data-sim-node]`, `[data-sim-link]`, `[data-sim-event]`.
 *
 * @module
 */

/**
 * @typedef {{ name: string, title: string, description: string }} ReplayScenario
 * @typedef {{ id: number, up: boolean, role: string, term: number, lead: number,
 *   commit: number, applied: number, lastIndex: number, vote: number }} NodeView
 * @typedef {{ from: number, to: number, up: boolean }} LinkView
 * @typedef {{ index: number, timeMs: number, kind: string, text: string,
 *   nodeIds: number[], cluster: NodeView[], links: LinkView[] }} TimelineStep
 * @typedef {{ scenario: string, seed: number, nodes: number[], steps: TimelineStep[],
 *   outcome: { ok: boolean, summary: string }, truncated: boolean,
 *   note?: string }} Timeline
 * @typedef {{
 *   scenarios(): Promise<ReplayScenario[]>,
 *   replay(scenario: string, seed: string): Promise<Timeline>,
 * }} SimReplayApi
 * @typedef {{
 *   ready: Promise<void>,
 *   run(scenario?: string, seed?: string): Promise<void>,
 *   show(index: number): void,
 *   timeline(): Timeline | undefined,
 *   destroy(): void,
 * }} SimReplayController
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const STYLE_ID = "sim-replay-style";
/** Milliseconds between steps while playing. */
const PLAY_INTERVAL_MS = 700;

/** @type {Record<string, string>} */
const ROLE_COLORS = {
  leader: "#2e7d32",
  candidate: "#e65100",
  preCandidate: "#f9a825",
  follower: "#1565c0",
};

/** @type {Record<string, string>} */
const ROLE_SHORT = {
  leader: "leader",
  candidate: "candidate",
  preCandidate: "pre-vote",
  follower: "follower",
};

const CSS = `
.sim-replay { font: 14px/1.4 system-ui, sans-serif; color: #1d232b; max-width: 980px; }
.sim-replay button, .sim-replay select, .sim-replay input { font: inherit; }
.sim-controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; }
.sim-controls label { display: flex; flex-direction: column; font-size: 12px; color: #4b5563; }
.sim-controls select, .sim-controls input[type=text] { padding: 4px 6px; border: 1px solid #c3c9d1; border-radius: 4px; min-width: 180px; }
.sim-controls input[type=text] { min-width: 320px; }
.sim-btn { padding: 4px 10px; border: 1px solid #9aa4b1; border-radius: 4px; background: #f5f7fa; cursor: pointer; }
.sim-btn:hover:not(:disabled) { background: #e6ebf1; }
.sim-btn:disabled { opacity: .45; cursor: default; }
.sim-btn-primary { background: #1565c0; border-color: #1565c0; color: #fff; }
.sim-btn-primary:hover:not(:disabled) { background: #0d47a1; }
.sim-desc { color: #4b5563; margin: 6px 0; font-size: 13px; }
.sim-error { background: #fdecea; color: #8a1c13; border: 1px solid #f5c2bc; border-radius: 4px; padding: 6px 10px; margin: 6px 0; white-space: pre-wrap; }
.sim-status { margin: 6px 0; font-size: 13px; }
.sim-note { background: #fff8e1; border: 1px solid #ffe082; border-radius: 4px; padding: 4px 10px; font-size: 13px; margin: 6px 0; }
.sim-status.sim-ok { color: #1b5e20; }
.sim-status.sim-fail { color: #8a1c13; font-weight: 600; }
.sim-stepbar { display: flex; gap: 4px; align-items: center; margin: 8px 0 4px; }
.sim-stepbar input[type=range] { flex: 1; }
.sim-step-pos { font-variant-numeric: tabular-nums; min-width: 110px; text-align: right; font-size: 12px; color: #4b5563; }
.sim-step-text { min-height: 1.6em; padding: 6px 10px; background: #f5f7fa; border-left: 4px solid #9aa4b1; border-radius: 2px; }
.sim-main { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 8px; }
.sim-figure { flex: 1 1 420px; min-width: 320px; }
.sim-svg { width: 100%; height: auto; background: #fbfcfd; border: 1px solid #e1e5ea; border-radius: 6px; }
.sim-events { position: relative; flex: 1 1 320px; max-height: 460px; overflow-y: auto; margin: 0; padding: 0; list-style: none; border: 1px solid #e1e5ea; border-radius: 6px; }
.sim-events li { display: flex; gap: 6px; padding: 3px 8px; cursor: pointer; border-bottom: 1px solid #f0f2f5; font-size: 12.5px; }
.sim-events li:hover { background: #f0f4f9; }
.sim-events li.sim-current { background: #e3eefc; }
.sim-time { color: #6b7280; font-variant-numeric: tabular-nums; min-width: 72px; text-align: right; white-space: nowrap; }
.sim-kind { flex: none; display: inline-block; min-width: 62px; text-align: center; border-radius: 3px; font-size: 11px; padding: 0 4px; color: #fff; height: 1.5em; line-height: 1.5em; }
.sim-nodes { border-collapse: collapse; font-size: 12px; margin-top: 6px; width: 100%; }
.sim-nodes th, .sim-nodes td { border-bottom: 1px solid #eceff3; padding: 2px 6px; text-align: right; }
.sim-nodes th:nth-child(-n+2), .sim-nodes td:nth-child(-n+2) { text-align: left; }
.sim-nodes tr.sim-down td { color: #9aa4b1; }
.sim-nodes tr.sim-hl td { background: #fff8e1; }
.sim-legend { font-size: 11.5px; color: #4b5563; display: flex; flex-wrap: wrap; gap: 10px; margin-top: 4px; }
.sim-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; vertical-align: -1px; }
`;

/** @type {Record<string, string>} */
const KIND_COLORS = {
  election: "#f9a825",
  vote: "#8d6e63",
  role: "#2e7d32",
  commit: "#1565c0",
  propose: "#5c6bc0",
  partition: "#c62828",
  heal: "#00897b",
  crash: "#424242",
  restart: "#6d4c41",
  drop: "#9e9e9e",
  snapshot: "#7b1fa2",
  check: "#37474f",
};

/**
 * Mounts the replay panel into `root` (its content is replaced).
 * Errors from `api` are shown in the panel, never thrown.
 *
 * @param {HTMLElement} root where the panel goes
 * @param {SimReplayApi} api loads scenarios and runs replays
 * @returns {SimReplayController} controls for scripts and tests;
 *   `ready` resolves once the scenario list has loaded (or failed to)
 */
export function mountSimReplay(root, api) {
  injectStyle(root.ownerDocument);
  const doc = root.ownerDocument;
  root.replaceChildren();
  const panel = el(doc, "div", { class: "sim-replay" });
  root.append(panel);

  // ---- controls ----
  const form = el(doc, "form", { id: "sim-form", class: "sim-controls" });
  const select = /** @type {HTMLSelectElement} */ (el(doc, "select", {
    id: "sim-scenario",
    "aria-label": "scenario",
  }));
  const seed = /** @type {HTMLInputElement} */ (el(doc, "input", {
    id: "sim-seed",
    type: "text",
    value: "1",
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "42, or paste a failing test's seed line",
    "aria-label": "seed",
  }));
  const runBtn = button(doc, "sim-run", "Run", "run the scenario");
  runBtn.type = "submit";
  runBtn.classList.add("sim-btn-primary");
  form.append(
    labelled(doc, "Scenario", select),
    labelled(doc, "Seed (or a failing test's output)", seed),
    runBtn,
  );
  const desc = el(doc, "p", { id: "sim-scenario-desc", class: "sim-desc" });
  const error = el(doc, "div", {
    id: "sim-error",
    class: "sim-error",
    role: "alert",
  });
  error.hidden = true;
  const status = el(doc, "div", {
    id: "sim-status",
    class: "sim-status",
    "aria-live": "polite",
  });

  // ---- step controls ----
  const bar = el(doc, "div", { class: "sim-stepbar" });
  const first = button(doc, "sim-first", "|◀", "first step");
  const prev = button(doc, "sim-prev", "◀ Prev", "previous step");
  const play = button(doc, "sim-play", "▶ Play", "play");
  const next = button(doc, "sim-next", "Next ▶", "next step");
  const last = button(doc, "sim-last", "▶|", "last step");
  const slider = /** @type {HTMLInputElement} */ (el(doc, "input", {
    id: "sim-slider",
    type: "range",
    min: "0",
    max: "0",
    value: "0",
    "aria-label": "step",
  }));
  const pos = el(doc, "span", { id: "sim-step-pos", class: "sim-step-pos" });
  bar.append(first, prev, play, next, last, slider, pos);
  const stepText = el(doc, "div", {
    id: "sim-step-text",
    class: "sim-step-text",
    "aria-live": "polite",
  });

  // ---- picture, node table and event list ----
  const main = el(doc, "div", { class: "sim-main" });
  const figure = el(doc, "div", { class: "sim-figure" });
  const svg = doc.createElementNS(SVG_NS, "svg");
  svg.setAttribute("id", "sim-svg");
  svg.setAttribute("class", "sim-svg");
  svg.setAttribute("viewBox", "0 0 560 420");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "the cluster at the current step");
  const legend = el(doc, "div", { class: "sim-legend" });
  for (const [role, color] of Object.entries(ROLE_COLORS)) {
    const item = el(doc, "span");
    const sw = el(doc, "span", { class: "sim-swatch" });
    sw.style.background = color;
    item.append(sw, ROLE_SHORT[role] ?? role);
    legend.append(item);
  }
  const downItem = el(doc, "span");
  const downSw = el(doc, "span", { class: "sim-swatch" });
  downSw.style.background = "#bdbdbd";
  downItem.append(downSw, "crashed");
  const cutItem = el(doc, "span");
  cutItem.append("red dashes: cut link · gold ring: nodes of this event");
  legend.append(downItem, cutItem);
  const table = el(doc, "table", { id: "sim-nodes", class: "sim-nodes" });
  figure.append(svg, legend, table);
  const events = el(doc, "ol", {
    id: "sim-events",
    class: "sim-events",
    "aria-label": "events",
  });
  main.append(figure, events);

  const note = el(doc, "div", { id: "sim-note", class: "sim-note" });
  note.hidden = true;

  panel.append(form, desc, error, status, note, bar, stepText, main);

  // ---- state ----
  /** @type {ReplayScenario[]} */
  let scenarios = [];
  /** @type {Timeline | undefined} */
  let current;
  let index = 0;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  let runId = 0;

  function showError(/** @type {unknown} */ e) {
    error.textContent = messageOf(e);
    error.hidden = false;
  }

  function clearError() {
    error.textContent = "";
    error.hidden = true;
  }

  function describeScenario() {
    const s = scenarios.find((x) => x.name === select.value);
    desc.textContent = s ? s.description : "";
  }

  function setControls() {
    const n = current ? current.steps.length : 0;
    const none = n === 0;
    first.disabled = none || index === 0;
    prev.disabled = none || index === 0;
    next.disabled = none || index >= n - 1;
    last.disabled = none || index >= n - 1;
    play.disabled = none;
    slider.disabled = none;
    slider.max = String(Math.max(0, n - 1));
    slider.value = String(index);
    pos.textContent = none
      ? "no steps"
      : `step ${index + 1} / ${n} · ${
        fmtTime(current?.steps[index]?.timeMs ?? 0)
      }`;
  }

  function stop() {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    play.textContent = "▶ Play";
    play.setAttribute("aria-label", "play");
    play.dataset.playing = "false";
  }

  function start() {
    if (!current || current.steps.length === 0) return;
    if (index >= current.steps.length - 1) show(0);
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-label", "pause");
    play.dataset.playing = "true";
    timer = setInterval(() => {
      if (!current || index >= current.steps.length - 1) {
        stop();
        return;
      }
      show(index + 1);
    }, PLAY_INTERVAL_MS);
  }

  /** @param {number} i */
  function show(i) {
    if (!current || current.steps.length === 0) {
      index = 0;
      setControls();
      return;
    }
    index = Math.max(0, Math.min(current.steps.length - 1, Math.trunc(i) || 0));
    const step = /** @type {TimelineStep} */ (current.steps[index]);
    stepText.textContent = `${fmtTime(step.timeMs)} — ${step.text}`;
    stepText.style.borderLeftColor = KIND_COLORS[step.kind] ?? "#9aa4b1";
    stepText.dataset.kind = step.kind;
    drawCluster(svg, current.nodes, step);
    fillTable(table, step);
    const items = events.children;
    for (let k = 0; k < items.length; k++) {
      const li = /** @type {HTMLElement} */ (items[k]);
      const on = k === index;
      li.classList.toggle("sim-current", on);
      if (on) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    scrollIntoList(
      events,
      /** @type {HTMLElement | undefined} */ (items[index]),
    );
    setControls();
  }

  /** @param {Timeline} t */
  function load(t) {
    current = t;
    events.replaceChildren();
    for (const step of t.steps) {
      const li = el(doc, "li", { "data-sim-event": String(step.index) });
      li.dataset.kind = step.kind;
      const time = el(doc, "span", { class: "sim-time" });
      time.textContent = fmtTime(step.timeMs);
      const kind = el(doc, "span", { class: "sim-kind" });
      kind.textContent = step.kind;
      kind.style.background = KIND_COLORS[step.kind] ?? "#607d8b";
      const text = el(doc, "span");
      text.textContent = step.text;
      li.append(time, kind, text);
      events.append(li);
    }
    note.textContent = t.note ?? "";
    note.hidden = !t.note;
    status.className = `sim-status ${t.outcome.ok ? "sim-ok" : "sim-fail"}`;
    status.dataset.ok = String(t.outcome.ok);
    status.textContent = `${t.scenario}, seed ${t.seed}: ${
      t.outcome.ok ? "passed" : "FAILED"
    } — ${t.outcome.summary}${
      t.truncated
        ? ` (only the first ${t.steps.length} steps were recorded)`
        : ""
    }`;
    if (scenarios.some((s) => s.name === t.scenario)) {
      select.value = t.scenario;
      describeScenario();
    }
    if (t.steps.length === 0) {
      stepText.textContent = "The run recorded no events.";
      svg.replaceChildren();
      table.replaceChildren();
      index = 0;
      setControls();
      return;
    }
    show(0);
  }

  /**
   * @param {string} [scenario]
   * @param {string} [seedText]
   */
  async function run(scenario, seedText) {
    if (scenario !== undefined) select.value = scenario;
    if (seedText !== undefined) seed.value = seedText;
    stop();
    clearError();
    note.hidden = true;
    const my = ++runId;
    runBtn.disabled = true;
    status.className = "sim-status";
    status.textContent = "Running…";
    delete status.dataset.ok;
    try {
      const t = await api.replay(select.value, seed.value.trim());
      if (my !== runId) return;
      if (!t || !Array.isArray(t.steps) || !Array.isArray(t.nodes)) {
        throw new Error("the server sent something that is not a timeline");
      }
      load(t);
    } catch (e) {
      if (my !== runId) return;
      status.textContent = "";
      showError(e);
    } finally {
      if (my === runId) runBtn.disabled = false;
    }
  }

  // ---- wiring ----
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void run();
  });
  select.addEventListener("change", describeScenario);
  first.addEventListener("click", () => {
    stop();
    show(0);
  });
  prev.addEventListener("click", () => {
    stop();
    show(index - 1);
  });
  next.addEventListener("click", () => {
    stop();
    show(index + 1);
  });
  last.addEventListener("click", () => {
    stop();
    show(Number.MAX_SAFE_INTEGER);
  });
  play.addEventListener(
    "click",
    () => (timer === undefined ? start() : stop()),
  );
  slider.addEventListener("input", () => {
    stop();
    show(Number(slider.value));
  });
  events.addEventListener("click", (ev) => {
    const target = /** @type {Element | null} */ (ev.target);
    const li = target?.closest("[data-sim-event]");
    if (!li) return;
    stop();
    show(Number(li.getAttribute("data-sim-event")));
  });
  panel.addEventListener("keydown", (ev) => {
    const t = /** @type {Element | null} */ (ev.target);
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT")) return;
    const keys = { ArrowLeft: -1, ArrowRight: 1 };
    if (ev.key in keys) {
      ev.preventDefault();
      stop();
      show(index + keys[/** @type {"ArrowLeft" | "ArrowRight"} */ (ev.key)]);
    } else if (ev.key === "Home") {
      stop();
      show(0);
    } else if (ev.key === "End") {
      stop();
      show(Number.MAX_SAFE_INTEGER);
    }
  });

  setControls();
  stepText.textContent = "Pick a scenario and a seed, then Run.";
  const ready = (async () => {
    try {
      scenarios = await api.scenarios();
      select.replaceChildren(
        ...scenarios.map((s) => {
          const o = /** @type {HTMLOptionElement} */ (el(doc, "option", {
            value: s.name,
          }));
          o.textContent = s.title;
          o.title = s.description;
          return o;
        }),
      );
      describeScenario();
    } catch (e) {
      showError(e);
    }
  })();

  return {
    ready,
    run,
    show: (i) => {
      stop();
      show(i);
    },
    timeline: () => current,
    destroy() {
      stop();
      runId++;
      root.replaceChildren();
    },
  };
}

// ---- drawing ----

/**
 * Draws the cluster of `step`: nodes on a circle (stable positions from
 * `ids`), links between them, the event's nodes ringed.
 *
 * @param {SVGSVGElement} svg
 * @param {number[]} ids every node id of the timeline
 * @param {TimelineStep} step
 */
function drawCluster(svg, ids, step) {
  const doc = /** @type {Document} */ (svg.ownerDocument);
  svg.replaceChildren();
  const W = 560;
  const H = 420;
  const cx = W / 2;
  const cy = H / 2;
  const n = Math.max(1, ids.length);
  const R = n <= 3 ? 100 : n <= 5 ? 115 : 130;
  const r = n <= 5 ? 30 : 24;
  /** @type {Map<number, {x: number, y: number, dx: number, dy: number}>} */
  const at = new Map();
  ids.forEach((id, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    const dx = Math.cos(a);
    const dy = Math.sin(a);
    at.set(id, { x: cx + R * dx, y: cy + R * dy, dx, dy });
  });
  const highlight = new Set(step.nodeIds);

  // Links: one line per pair; dashed red when cut both ways, orange when
  // only one way (the timeline then lists each direction on its own).
  /** @type {Map<string, {a: number, b: number, entries: LinkView[]}>} */
  const pairs = new Map();
  for (const l of step.links) {
    const a = Math.min(l.from, l.to);
    const b = Math.max(l.from, l.to);
    const key = `${a}-${b}`;
    const p = pairs.get(key) ?? { a, b, entries: [] };
    p.entries.push(l);
    pairs.set(key, p);
  }
  const linkLayer = svgEl(doc, "g", { class: "sim-links" });
  for (const [key, p] of pairs) {
    const pa = at.get(p.a);
    const pb = at.get(p.b);
    if (!pa || !pb) continue;
    const cut = p.entries.filter((l) => !l.up);
    const down = cut.length > 0;
    const oneWay = down && cut.length < p.entries.length;
    const cutText = p.entries.length === 1
      ? `${p.a}↔${p.b}`
      : cut.map((l) => `${l.from}→${l.to}`).join(", ");
    const line = svgEl(doc, "line", {
      x1: pa.x,
      y1: pa.y,
      x2: pb.x,
      y2: pb.y,
      stroke: down ? (oneWay ? "#ef6c00" : "#d32f2f") : "#b0bac5",
      "stroke-width": down ? 2.5 : 1.5,
      "stroke-dasharray": down ? "7 5" : "none",
      "data-sim-link": key,
      "data-up": String(!down),
    });
    const title = svgEl(doc, "title");
    title.textContent = down ? `cut: ${cutText}` : `${p.a}↔${p.b} up`;
    line.append(title);
    linkLayer.append(line);
    if (oneWay) {
      const label = svgEl(doc, "text", {
        x: (pa.x + pb.x) / 2,
        y: (pa.y + pb.y) / 2 - 4,
        "text-anchor": "middle",
        "font-size": 11,
        fill: "#ef6c00",
      });
      label.textContent = `${cutText} cut`;
      linkLayer.append(label);
    }
  }
  svg.append(linkLayer);

  // A vote step: an arrow from the voter to the node it voted for.
  if (step.kind === "vote") {
    const defs = svgEl(doc, "defs");
    const marker = svgEl(doc, "marker", {
      id: "sim-arrow",
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    });
    marker.append(
      svgEl(doc, "path", { d: "M0,0 L10,5 L0,10 z", fill: "#8d6e63" }),
    );
    defs.append(marker);
    svg.append(defs);
    for (const v of step.cluster) {
      if (!highlight.has(v.id) || !v.vote || v.vote === v.id) continue;
      if (!highlight.has(v.vote)) continue;
      const a = at.get(v.id);
      const b = at.get(v.vote);
      if (!a || !b) continue;
      const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
      const ux = (b.x - a.x) / len;
      const uy = (b.y - a.y) / len;
      svg.append(svgEl(doc, "line", {
        x1: a.x + ux * (r + 10),
        y1: a.y + uy * (r + 10),
        x2: b.x - ux * (r + 12),
        y2: b.y - uy * (r + 12),
        stroke: "#8d6e63",
        "stroke-width": 3,
        "marker-end": "url(#sim-arrow)",
        "data-sim-vote": `${v.id}-${v.vote}`,
      }));
    }
  }

  const nodeLayer = svgEl(doc, "g", { class: "sim-nodes-layer" });
  for (const id of ids) {
    const p = at.get(id);
    if (!p) continue;
    const v = step.cluster.find((c) => c.id === id);
    const g = svgEl(doc, "g", {
      "data-sim-node": String(id),
      "data-role": v ? v.role : "absent",
      "data-up": String(v ? v.up : false),
      "data-highlight": String(highlight.has(id)),
    });
    if (!v) {
      // Not part of the cluster yet (added later in the run).
      g.setAttribute("opacity", "0.35");
      g.append(
        svgEl(doc, "circle", {
          cx: p.x,
          cy: p.y,
          r,
          fill: "none",
          stroke: "#9aa4b1",
          "stroke-dasharray": "3 3",
        }),
      );
      g.append(text(doc, p.x, p.y + 5, `n${id}`, 15, "#9aa4b1", 600));
      nodeLayer.append(g);
      continue;
    }
    const fill = v.up ? ROLE_COLORS[v.role] ?? "#607d8b" : "#bdbdbd";
    if (highlight.has(id)) {
      g.append(
        svgEl(doc, "circle", {
          cx: p.x,
          cy: p.y,
          r: r + 7,
          fill: "none",
          stroke: "#ffb300",
          "stroke-width": 4,
          class: "sim-highlight",
        }),
      );
    }
    g.append(
      svgEl(doc, "circle", {
        cx: p.x,
        cy: p.y,
        r,
        fill,
        stroke: v.up ? "#ffffff" : "#757575",
        "stroke-width": 2,
        "stroke-dasharray": v.up ? "none" : "4 3",
      }),
    );
    const ink = v.up ? "#ffffff" : "#616161";
    g.append(text(doc, p.x, p.y - 3, `n${id}`, r > 28 ? 17 : 14, ink, 700));
    g.append(text(doc, p.x, p.y + 13, `T${v.term}`, 11, ink, 600));
    // Labels sit outside the circle, away from the centre, so they never
    // cross the links.
    const lx = p.x + p.dx * (r + 12);
    const anchor = p.dx > 0.3 ? "start" : p.dx < -0.3 ? "end" : "middle";
    const lines = [
      v.up
        ? `${ROLE_SHORT[v.role] ?? v.role}${
          v.vote ? ` · voted n${v.vote}` : ""
        }`
        : "crashed",
      `commit ${v.commit} · last ${v.lastIndex}`,
      `applied ${v.applied}`,
    ];
    const lineH = 13;
    const top = p.dy < -0.3
      ? p.y - r - 14 - lineH * (lines.length - 1)
      : p.dy > 0.3
      ? p.y + r + 16
      : p.y - lineH + 4;
    lines.forEach((s, k) => {
      const t = text(
        doc,
        lx,
        top + k * lineH,
        s,
        k === 0 ? 12 : 11,
        k === 0
          ? (v.up ? ROLE_COLORS[v.role] ?? "#37474f" : "#757575")
          : "#37474f",
        k === 0 ? 600 : 400,
      );
      t.setAttribute("text-anchor", anchor);
      if (anchor !== "middle") {
        t.setAttribute("x", String(p.x + p.dx * (r + 8)));
      }
      g.append(t);
    });
    const title = svgEl(doc, "title");
    title.textContent = `node ${id}: ${
      v.up ? v.role : "crashed"
    }, term ${v.term}, leader ${
      v.lead || "none"
    }, commit ${v.commit}, applied ${v.applied}, last index ${v.lastIndex}, vote ${
      v.vote || "none"
    }`;
    g.append(title);
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
  const t = text(
    doc,
    8,
    H - 8,
    `t = ${fmtTime(step.timeMs)}`,
    11,
    "#6b7280",
    400,
  );
  t.setAttribute("text-anchor", "start");
  svg.append(t);
}

/**
 * @param {HTMLElement} table
 * @param {TimelineStep} step
 */
function fillTable(table, step) {
  const doc = /** @type {Document} */ (table.ownerDocument);
  table.replaceChildren();
  const head = el(doc, "tr");
  for (
    const h of [
      "node",
      "role",
      "term",
      "leader",
      "vote",
      "commit",
      "applied",
      "last",
    ]
  ) {
    const th = el(doc, "th");
    th.textContent = h;
    head.append(th);
  }
  const thead = el(doc, "thead");
  thead.append(head);
  const body = el(doc, "tbody");
  const hl = new Set(step.nodeIds);
  for (const v of step.cluster) {
    const tr = el(doc, "tr", { "data-sim-row": String(v.id) });
    if (!v.up) tr.classList.add("sim-down");
    if (hl.has(v.id)) tr.classList.add("sim-hl");
    const cells = [
      `n${v.id}`,
      v.up ? v.role : "crashed",
      v.term,
      v.lead || "–",
      v.vote || "–",
      v.commit,
      v.applied,
      v.lastIndex,
    ];
    for (const c of cells) {
      const td = el(doc, "td");
      td.textContent = String(c);
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(thead, body);
}

// ---- small DOM helpers ----

/** @param {Document} doc */
function injectStyle(doc) {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.append(style);
}

/**
 * @param {Document} doc
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @returns {HTMLElement}
 */
function el(doc, tag, attrs = {}) {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/**
 * @param {Document} doc
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
function svgEl(doc, tag, attrs = {}) {
  const e = /** @type {SVGElement} */ (doc.createElementNS(SVG_NS, tag));
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/**
 * @param {Document} doc
 * @param {number} x
 * @param {number} y
 * @param {string} s
 * @param {number} size
 * @param {string} fill
 * @param {number} weight
 */
function text(doc, x, y, s, size, fill, weight) {
  const t = svgEl(doc, "text", {
    x,
    y,
    "text-anchor": "middle",
    "font-size": size,
    "font-weight": weight,
    fill,
    "font-family": "system-ui, sans-serif",
  });
  t.textContent = s;
  return t;
}

/**
 * @param {Document} doc
 * @param {string} id
 * @param {string} label
 * @param {string} aria
 * @returns {HTMLButtonElement}
 */
function button(doc, id, label, aria) {
  const b = /** @type {HTMLButtonElement} */ (el(doc, "button", {
    id,
    type: "button",
    class: "sim-btn",
    "aria-label": aria,
    title: aria,
  }));
  b.textContent = label;
  return b;
}

/**
 * @param {Document} doc
 * @param {string} caption
 * @param {HTMLElement} control
 */
function labelled(doc, caption, control) {
  const label = el(doc, "label");
  label.append(caption, control);
  return label;
}

/**
 * Scrolls the event list (not the page) so `item` is visible.
 * @param {HTMLElement} list
 * @param {HTMLElement | undefined} item
 */
function scrollIntoList(list, item) {
  if (!item) return;
  // The list is position: relative, so offsetTop is measured from it.
  const top = item.offsetTop;
  const bottom = top + item.offsetHeight;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (bottom > list.scrollTop + list.clientHeight) {
    list.scrollTop = bottom - list.clientHeight;
  }
}

/** @param {number} ms */
function fmtTime(ms) {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/**
 * A readable message from whatever the api threw or rejected with
 * (an Error, a string, or a JSON error body `{ error: { code, message } }`).
 * @param {unknown} e
 */
function messageOf(e) {
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === "string") return e;
  if (e && typeof e === "object") {
    const o =
      /** @type {{ error?: { code?: string, message?: string }, message?: string }} */ (e);
    if (o.error?.message) {
      return o.error.code
        ? `${o.error.code}: ${o.error.message}`
        : o.error.message;
    }
    if (typeof o.message === "string") return o.message;
  }
  return String(e);
}
