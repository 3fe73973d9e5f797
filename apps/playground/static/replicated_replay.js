/**
 * Step-by-step replay of a `deno task sim:replicated` seed: pick the state
 * machine, a planted bug and a seed (or let it find the first failing
 * seed), then step through the run's messages, ticks, faults, leader
 * changes and client operations, with the nodes drawn at each step and
 * the steps where the check failed marked.
 *
 * Plain ES module, no build step. Ids the browser test drives:
 * `#simr-machine`, `#simr-bug`, `#simr-seed`, `#simr-run`, `#simr-find`,
 * `#simr-status`, `#simr-prev`, `#simr-next`, `#simr-violation`,
 * `#simr-slider`, `#simr-pos`, `#simr-step`, `#simr-failure`,
 * `[data-simr-node]` (with `data-up`, `data-paused`, `data-leads`),
 * `[data-simr-step]` (with `data-kind`, `data-violation`).
 *
 * @module
 */

/** @param {unknown} s */
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]
  ));

/** Steps listed around the current one. */
const AROUND = 8;

/**
 * @param {HTMLElement} root
 * @param {{ get(path: string): Promise<any> }} api
 */
export async function mountReplicatedReplay(root, api) {
  root.innerHTML = `
    <h3>A failing <code>sim:replicated</code> seed, step by step</h3>
    <p class="hint">The production <code>ReplicatedNode</code> with a planted bug, on a simulated cluster (one seed decides every delay, fault and clock); the checker's verdict at the end. Same seed, same run as <code>deno task sim:replicated</code>.</p>
    <form id="simr-form" class="row">
      <label>machine <select id="simr-machine"><option value="kv">raft-kv</option><option value="gfs">GFS master</option></select></label>
      <label>planted bug <select id="simr-bug"><option value="">none (the correct code)</option></select></label>
      <label>seed <input id="simr-seed" type="number" min="0" value="1"></label>
      <button id="simr-run" type="submit">Run seed</button>
      <button id="simr-find" class="primary" type="button">Find a failing seed</button>
    </form>
    <p id="simr-status" class="result"></p>
    <div id="simr-player" hidden>
      <div class="row">
        <button id="simr-prev" type="button">◀ step</button>
        <input id="simr-slider" type="range" min="0" value="0">
        <button id="simr-next" type="button">step ▶</button>
        <button id="simr-violation" class="danger" type="button">Jump to the violation</button>
        <span id="simr-pos" class="result"></span>
      </div>
      <p id="simr-step" class="simr-current"></p>
      <div id="simr-nodes" class="simr-nodes"></div>
      <ol id="simr-steps" class="simr-steps"></ol>
      <pre id="simr-failure" class="simr-failure" hidden></pre>
    </div>`;
  const $ = (
    /** @type {string} */ s,
  ) => /** @type {HTMLInputElement} */ (root.querySelector(s));
  /** @type {any} */
  let run;
  let at = 0;

  const bugs = await api.get("/api/sim/bugs");
  $("#simr-bug").innerHTML += bugs.map((b) =>
    `<option value="${esc(b)}">${esc(b)}</option>`
  ).join("");

  const show = (/** @type {number} */ i) => {
    if (!run || run.steps.length === 0) return;
    at = Math.max(0, Math.min(run.steps.length - 1, i));
    const step = run.steps[at];
    $("#simr-slider").value = String(at);
    $("#simr-pos").textContent = `step ${at + 1} of ${run.steps.length}`;
    const s = $("#simr-step");
    s.dataset.kind = step.kind;
    s.dataset.violation = step.violation ? "1" : "0";
    s.innerHTML = `<b>${step.atMs.toFixed(1)} ms</b> · ${esc(step.kind)} · ${
      esc(step.text)
    }${step.violation ? ` <b class="error">← the check failed here</b>` : ""}`;
    $("#simr-nodes").innerHTML = step.cluster.map((n) =>
      `<div class="simr-node" data-simr-node="${n.id}" data-up="${n.up}" data-paused="${n.paused}" data-leads="${n.leads}" data-active="${
        step.nodes.includes(n.id)
      }">
        <b>node ${n.id}</b><span>${
        !n.up ? "crashed" : n.paused ? "stopped" : n.leads ? "leader" : "up"
      }</span><small>term ${n.term}</small></div>`
    ).join("");
    const from = Math.max(0, at - AROUND);
    $("#simr-steps").innerHTML = run.steps.slice(from, at + AROUND + 1).map((
      x,
    ) =>
      `<li data-simr-step="${x.index}" data-kind="${x.kind}" data-violation="${
        x.violation ? 1 : 0
      }" class="${x.index === at ? "current" : ""}" value="${x.index + 1}">${
        x.atMs.toFixed(1)
      } ${esc(x.text)}</li>`
    ).join("");
  };

  const load = async (/** @type {boolean} */ find) => {
    const status = $("#simr-status");
    status.className = "result";
    status.textContent = find ? "looking for a failing seed…" : "running…";
    const q = new URLSearchParams({
      machine: $("#simr-machine").value,
      seed: $("#simr-seed").value || "1",
      find: find ? "1" : "0",
    });
    if ($("#simr-bug").value) q.set("bug", $("#simr-bug").value);
    try {
      run = await api.get(`/api/sim/replicated?${q}`);
    } catch (e) {
      status.className = "result error";
      status.textContent = e.message;
      return;
    }
    $("#simr-seed").value = String(run.seed);
    status.dataset.ok = String(run.ok);
    status.dataset.seed = String(run.seed);
    status.innerHTML = `seed ${run.seed}: ${
      run.ok
        ? "every check passed"
        : `<b class="error">failed (${esc(run.code)})</b>`
    } · ${run.steps.length} steps${
      run.omitted.length ? ` (left out: ${esc(run.omitted.join(", "))})` : ""
    } · <code>${esc(run.command)}</code>`;
    const f = $("#simr-failure");
    f.hidden = !run.failure;
    f.textContent = run.failure ?? "";
    $("#simr-slider").max = String(Math.max(0, run.steps.length - 1));
    $("#simr-violation").disabled = run.violationSteps.length === 0;
    $("#simr-player").hidden = false;
    show(0);
  };

  $("#simr-form").addEventListener("submit", (e) => {
    e.preventDefault();
    load(false);
  });
  $("#simr-find").addEventListener("click", () => load(true));
  $("#simr-prev").addEventListener("click", () => show(at - 1));
  $("#simr-next").addEventListener("click", () => show(at + 1));
  $("#simr-slider").addEventListener(
    "input",
    () => show(Number($("#simr-slider").value)),
  );
  $("#simr-violation").addEventListener("click", () => {
    if (!run) return;
    // The next marked step after this one, else the first.
    const next = run.violationSteps.find((/** @type {number} */ i) => i > at);
    show(next ?? run.violationSteps[0] ?? at);
  });
}
