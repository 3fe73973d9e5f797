/**
 * The playground's page: renders the snapshots pushed on /api/stream and
 * sends the actions. Plain ES module, no dependencies, no build step.
 * Elements keep stable ids and data attributes (used by the browser test):
 * `[data-raft-node="1"][data-role="leader"]`, `#raft-kill-1`, `#follow-key`,
 * `[data-follow-write]`, `[data-applied-node]`, `#search-input`,
 * `[data-shard-timing]`, `[data-search-hit]`, `[data-chunkserver]`,
 * `[data-gfs-master="0"][data-role="leader"]`, `#gfs-master-kill-0`,
 * `[data-tablet="<id>"][data-server="ts1"]`, `[data-split="<id>"]`,
 * `[data-tables-server="ts1"][data-process="killed"]`, `#tables-server-kill-ts1`,
 * `[data-tablet-event][data-kind="split"]`, `[data-row-tablet]`.
 *
 * @module
 */

const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

/** @param {unknown} s */
function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]
  ));
}

/** @param {number | null | undefined} n */
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** @param {number | null | undefined} n */
function num(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
}

/** @param {number} ms */
function msText(ms) {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

let toastTimer = 0;
/** @param {string} text @param {boolean} [isError] */
function toast(text, isError = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = isError ? "toast error" : "toast";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), isError ? 6000 : 2500);
}

/**
 * The run's token, which the server put in the page: every action sends it
 * as a header (not a cookie, so another site's page cannot send it).
 */
const PAGE_TOKEN =
  document.querySelector('meta[name="strata-page-token"]')?.getAttribute(
    "content",
  ) ?? "";

/** Headers of an action: the run's token, plus `extra`. @param {Record<string, string>} extra */
function actionHeaders(extra) {
  return { authorization: `Bearer ${PAGE_TOKEN}`, ...extra };
}

/**
 * Calls the dashboard API; resolves with the JSON or throws an Error with
 * the server's message.
 * @param {string} path @param {RequestInit} [init]
 */
async function api(path, init = {}) {
  const res = await fetch(path, init);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
  }
  return body;
}

/** @param {string} path @param {unknown} [body] */
function post(path, body) {
  return api(path, {
    method: "POST",
    headers: actionHeaders({ "content-type": "application/json" }),
    body: body === undefined ? "" : JSON.stringify(body),
  });
}

/** The latest snapshot. */
let snap = null;
/** The key the follow panel shows. */
let followKey = "";

// ---------------------------------------------------------------- raft

const ROLE_TEXT = {
  leader: "leader",
  follower: "follower",
  candidate: "candidate",
  preCandidate: "pre-vote",
  paused: "paused",
  killed: "killed",
  unknown: "no answer",
};

/** @param {number} id */
function nodeCard(id) {
  let card = document.querySelector(`[data-raft-node="${id}"]`);
  if (card) return /** @type {HTMLElement} */ (card);
  card = document.createElement("article");
  card.className = "node";
  card.dataset.raftNode = String(id);
  card.innerHTML = `
    <div class="node-head"><span class="node-title">Node ${id}</span><span class="badge" data-field="badge"></span></div>
    <div class="node-addr" data-field="addr"></div>
    <dl class="facts">
      <dt>term</dt><dd data-field="term"></dd>
      <dt>leader</dt><dd data-field="leader"></dd>
      <dt>commit / applied</dt><dd data-field="commit"></dd>
      <dt>log (first…last)</dt><dd data-field="log"></dd>
      <dt>snapshot at</dt><dd data-field="snapshot"></dd>
      <dt>log size</dt><dd data-field="logBytes"></dd>
      <dt>keys</dt><dd data-field="keys"></dd>
      <dt>messages sent</dt><dd data-field="msgs"></dd>
      <dt>bytes sent</dt><dd data-field="bytesRate"></dd>
      <dt title="bytes differential encoding kept off the wire">saved by diff encoding</dt><dd data-field="saved"></dd>
    </dl>
    <div class="logbar" title="log: snapshot · applied · appended"><div class="log"></div><div class="applied"></div><div class="snap"></div></div>
    <div class="loglegend"><span><i style="background:#b39ddb"></i>snapshot</span><span><i style="background:#81c784"></i>applied</span><span><i style="background:#90caf9"></i>appended</span></div>
    <div class="node-actions">
      <button class="danger" id="raft-kill-${id}" data-action="kill" title="SIGKILL the process">Kill</button>
      <button id="raft-restart-${id}" data-action="restart" title="start it again on its data">Restart</button>
      <button id="raft-pause-${id}" data-action="pause" title="SIGSTOP: the node is isolated, its peers time out">Pause</button>
      <button id="raft-resume-${id}" data-action="resume" title="SIGCONT">Resume</button>
      <button id="raft-transfer-${id}" data-action="transfer" title="hand leadership to this node">Make leader</button>
    </div>`;
  card.querySelectorAll("button").forEach((b) =>
    b.addEventListener(
      "click",
      () =>
        raftButton(id, /** @type {HTMLElement} */ (b).dataset.action ?? "", b),
    )
  );
  $("#raft-nodes").append(card);
  return /** @type {HTMLElement} */ (card);
}

/** @param {number} id @param {string} action @param {Element} button */
async function raftButton(id, action, button) {
  const b = /** @type {HTMLButtonElement} */ (button);
  b.disabled = true;
  try {
    if (action === "transfer") {
      const r = await post("/api/raft/transfer", { to: id });
      toast(`node ${r.leader} leads now`);
    } else {
      await post(`/api/raft/nodes/${id}/${action}`);
      toast(`node ${id}: ${action} done`);
    }
  } catch (e) {
    toast(`node ${id}: ${action} failed: ${e.message}`, true);
  } finally {
    b.disabled = false;
    if (snap) renderRaft(snap.raft);
  }
}

/** @param {HTMLElement} card @param {string} field @param {string} text */
function setField(card, field, text) {
  const el = card.querySelector(`[data-field="${field}"]`);
  if (el && el.textContent !== text) el.textContent = text;
}

function renderRaft(raft) {
  const maxIndex = Math.max(1, ...raft.nodes.map((n) => n.lastIndex ?? 0));
  for (const n of raft.nodes) {
    const card = nodeCard(n.id);
    const role = n.process === "up" ? n.role : n.process;
    card.dataset.role = role;
    card.dataset.process = n.process;
    const badge =
      /** @type {HTMLElement} */ (card.querySelector('[data-field="badge"]'));
    badge.dataset.role = role;
    badge.textContent = ROLE_TEXT[role] ?? role;
    // The nodes serve TLS exactly when this page came over https (one
    // `--tls` start switches both).
    setField(card, "addr", n.http ? `${location.protocol}//${n.http}` : "");
    setField(card, "term", num(n.term));
    setField(card, "leader", n.leader === null ? "–" : `node ${n.leader}`);
    setField(card, "commit", `${num(n.commitIndex)} / ${num(n.appliedIndex)}`);
    setField(
      card,
      "log",
      n.lastIndex === null ? "–" : `${num(n.firstIndex)} … ${num(n.lastIndex)}`,
    );
    setField(card, "snapshot", num(n.snapshotIndex));
    setField(card, "logBytes", bytes(n.logBytes));
    setField(card, "keys", num(n.keys));
    setField(card, "msgs", `${Math.round(n.messagesPerSec)}/s`);
    setField(
      card,
      "bytesRate",
      `${bytes(n.bytesPerSec)}/s · ${bytes(n.bytesSentTotal)} total`,
    );
    setField(
      card,
      "saved",
      `${bytes(n.savedBytesPerSec)}/s · ${bytes(n.bytesSavedTotal)} total`,
    );
    const pct = (v) => `${Math.min(100, ((v ?? 0) / maxIndex) * 100)}%`;
    /** @type {HTMLElement} */ (card.querySelector(".logbar .log")).style
      .width = pct(n.lastIndex);
    /** @type {HTMLElement} */ (card.querySelector(".logbar .applied")).style
      .width = pct(n.appliedIndex);
    /** @type {HTMLElement} */ (card.querySelector(".logbar .snap")).style
      .width = pct(n.snapshotIndex);
    const btn = (
      a,
    ) => /** @type {HTMLButtonElement} */ (card.querySelector(
      `[data-action="${a}"]`,
    ));
    btn("kill").disabled = n.process === "killed";
    btn("restart").disabled = n.process !== "killed";
    btn("pause").disabled = n.process !== "up";
    btn("resume").disabled = n.process !== "paused";
    btn("transfer").disabled = n.process !== "up" || n.role === "leader" ||
      raft.leader === null;
  }
  const up = raft.nodes.filter((n) => n.process === "up").length;
  $("#raft-summary").textContent = raft.leader === null
    ? `raft: no leader (${up}/3 nodes up)`
    : `raft: node ${raft.leader} leads term ${raft.term} · ${up}/3 nodes up`;
}

$("#raft-write").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = /** @type {HTMLInputElement} */ ($("#raft-write-key")).value;
  const value = /** @type {HTMLInputElement} */ ($("#raft-write-value")).value;
  const node = /** @type {HTMLSelectElement} */ ($("#raft-write-node")).value;
  const out = $("#raft-write-result");
  out.className = "result";
  out.textContent = "writing…";
  try {
    const r = await post("/api/raft/write", {
      key,
      value,
      ...(node ? { node: Number(node) } : {}),
    });
    out.textContent =
      `${key} = ${value}: index ${r.revision}, term ${r.term}, via node ${r.node} in ${
        msText(r.tookMs)
      }`;
  } catch (e) {
    out.className = "result error";
    out.textContent = e.message;
  }
});

$("#raft-transfer-any").addEventListener("click", async () => {
  try {
    const r = await post("/api/raft/transfer", {});
    toast(`node ${r.leader} leads now`);
  } catch (e) {
    toast(`transfer failed: ${e.message}`, true);
  }
});

// ---------------------------------------------------------------- follow

$("#follow-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = /** @type {HTMLInputElement} */ ($("#follow-key")).value.trim();
  if (!key) return;
  try {
    await post("/api/follow", { key });
    followKey = key;
    $("#follow-write-form").hidden = false;
    $("#follow-flow").innerHTML = `<p class="hint">Following <code>${
      esc(key)
    }</code>. Write a value to see it flow through the log.</p>`;
    lastFlowJson = "";
  } catch (e) {
    toast(`follow failed: ${e.message}`, true);
  }
});

$("#follow-write-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const value = /** @type {HTMLInputElement} */ ($("#follow-value")).value;
  const node = /** @type {HTMLSelectElement} */ ($("#follow-node")).value;
  const out = $("#follow-result");
  out.className = "result";
  out.textContent = "writing…";
  try {
    const r = await post("/api/raft/write", {
      key: followKey,
      value,
      ...(node ? { node: Number(node) } : {}),
    });
    out.textContent = `committed at index ${r.revision}`;
  } catch (e) {
    out.className = "result error";
    out.textContent = e.message;
  }
});

let lastFlowJson = "";
function renderFollow(s) {
  if (!followKey) return;
  const flow = s.follows.find((f) => f.key === followKey);
  if (!flow) return;
  const nodeIds = s.raft.nodes.map((n) => n.id);
  const json = JSON.stringify([flow, nodeIds]);
  if (json === lastFlowJson) return;
  lastFlowJson = json;
  if (flow.writes.length === 0) return;
  $("#follow-flow").innerHTML = flow.writes.map((w) => {
    const applied = new Map(w.applied.map((a) => [a.node, a.afterMs]));
    const span = Math.max(
      1,
      w.committedAfterMs ?? 0,
      ...w.applied.map((a) => a.afterMs),
    );
    const where = w.proposedAt === null
      ? "written by another client"
      : `proposed at node ${w.proposedAt}`;
    const what = w.op === "delete"
      ? "delete"
      : `= <span class="write-value">${esc(w.value)}</span>`;
    const status = w.status === "committed"
      ? `committed at index <b>${w.index}</b>${
        w.term !== null ? `, term <b>${w.term}</b>` : ""
      }${
        w.committedAfterMs !== null
          ? ` (answer after ${msText(w.committedAfterMs)})`
          : ""
      }`
      : w.status === "failed"
      ? `<span class="error">failed: ${esc(w.error)}</span>`
      : "in flight…";
    const bar = (label, ms, attrs, cls) =>
      `<div class="step ${cls}" ${attrs}><span>${label}</span><div class="bar"><div style="width:${
        Math.max(1.5, (ms / span) * 100)
      }%"></div></div><span>+${msText(ms)}</span></div>`;
    const steps = [
      w.committedAfterMs !== null
        ? bar(
          `answer from node ${w.proposedAt}`,
          w.committedAfterMs,
          "data-commit-step",
          "commit",
        )
        : "",
      ...nodeIds.map((id) =>
        applied.has(id)
          ? bar(
            `applied on node ${id}`,
            applied.get(id),
            `data-applied-node="${id}"`,
            "",
          )
          : `<div class="step missing" data-missing-node="${id}"><span>node ${id}</span><span class="missing-text">not applied (yet)</span></div>`
      ),
    ].join("");
    return `<div class="write" data-follow-write data-status="${w.status}" data-index="${
      w.index ?? ""
    }">
      <div class="write-head"><span>${
      esc(flow.key)
    } ${what}</span><span class="write-meta">${where}</span></div>
      <div class="write-meta">${status}</div>
      ${w.status === "failed" ? "" : `<div class="steps">${steps}</div>`}
    </div>`;
  }).join("");
}

// ---------------------------------------------------------------- gfs

const CS_COLORS = [
  "#1565c0",
  "#2e7d32",
  "#e65100",
  "#6a1b9a",
  "#00838f",
  "#ad1457",
];

/** @param {number} index */
function masterCard(index) {
  const box = $("#gfs-masters");
  let card = /** @type {HTMLElement | null} */ (box.querySelector(
    `[data-gfs-master="${index}"]`,
  ));
  if (card) return card;
  card = document.createElement("article");
  card.className = "master";
  card.dataset.gfsMaster = String(index);
  // Raft ids of the masters start at 1; the "leader" a master names is one.
  card.innerHTML = `
    <div class="node-head"><span class="node-title">Master ${
    index + 1
  }</span><span class="badge" data-field="badge"></span></div>
    <div class="node-addr" data-field="addr"></div>
    <dl class="facts master-facts">
      <dt>term</dt><dd data-field="term"></dd>
      <dt>commit / applied</dt><dd data-field="commit"></dd>
    </dl>
    <div class="master-actions">
      <button class="danger" id="gfs-master-kill-${index}" data-action="kill" title="SIGKILL the master process">Kill</button>
      <button id="gfs-master-restart-${index}" data-action="restart" title="start it again on its data; it catches up from the leader">Restart</button>
    </div>`;
  card.querySelectorAll("button").forEach((b) =>
    b.addEventListener("click", async () => {
      const button = /** @type {HTMLButtonElement} */ (b);
      const action = button.dataset.action ?? "";
      button.disabled = true;
      try {
        await post(`/api/gfs/masters/${index}/${action}`);
        toast(`master ${index + 1}: ${action} done`);
      } catch (e) {
        toast(`master ${index + 1}: ${e.message}`, true);
      } finally {
        if (snap) renderMasters(snap.gfs);
      }
    })
  );
  box.append(card);
  return card;
}

function renderMasters(g) {
  for (const m of g.masters ?? []) {
    const card = masterCard(m.index);
    const role = m.process === "up" ? m.role : "killed";
    card.dataset.role = role;
    card.dataset.process = m.process;
    card.dataset.serving = String(m.serving);
    const badge =
      /** @type {HTMLElement} */ (card.querySelector('[data-field="badge"]'));
    badge.dataset.role = role;
    badge.textContent = ROLE_TEXT[role] ?? role;
    setField(card, "addr", m.url.replace(/^https?:\/\//, ""));
    setField(card, "term", num(m.term));
    // A new leader serves only once it has applied its predecessors' log.
    setField(
      card,
      "commit",
      `${num(m.commitIndex)} / ${num(m.appliedIndex)}${
        m.role === "leader" && !m.serving ? " (catching up)" : ""
      }`,
    );
    const btn = (a) => /** @type {HTMLButtonElement} */ (card.querySelector(
      `[data-action="${a}"]`,
    ));
    btn("kill").disabled = m.process === "killed";
    btn("restart").disabled = m.process !== "killed";
  }
}

function renderGfs(g) {
  renderMasters(g);
  const cls = (n, kind) => (n > 0 ? kind : "");
  $("#gfs-summary").innerHTML = g.reachable
    ? `<span>leader <b>${
      g.leaderIndex === null ? "–" : `master ${g.leaderIndex + 1}`
    }</b> · <b>${esc(g.masterUrl)}</b></span>
       <span>files <b>${num(g.files)}</b></span>
       <span>chunks <b>${num(g.chunks)}</b></span>
       <span class="${
      cls(g.underReplicated, "warn")
    }" id="gfs-under">under-replicated <b>${num(g.underReplicated)}</b></span>
       <span class="${cls(g.lost, "bad")}" id="gfs-lost">lost <b>${
      num(g.lost)
    }</b></span>
       <span class="${
      cls(g.clonesInFlight, "warn")
    }" id="gfs-clones">re-replicating <b>${num(g.clonesInFlight)}</b></span>
       <span>clones done <b>${num(g.clonesDone)}</b></span>`
    : `<span class="error">${esc(g.error ?? "master unreachable")}</span>`;
  const box = $("#gfs-servers");
  for (const cs of g.chunkservers) {
    let row = /** @type {HTMLElement | null} */ (box.querySelector(
      `[data-chunkserver="${cs.index}"]`,
    ));
    if (!row) {
      row = document.createElement("div");
      row.className = "server";
      row.dataset.chunkserver = String(cs.index);
      row.innerHTML =
        `<span class="server-name"><i class="rep" style="display:inline-block;background:${
          CS_COLORS[cs.index % CS_COLORS.length]
        }"></i> ${esc(cs.id)}</span>
        <div class="bar"><div></div></div><span class="server-text"></span>
        <span class="server-actions"><button class="danger" id="gfs-kill-${cs.index}">Kill</button><button id="gfs-restart-${cs.index}">Restart</button></span>`;
      for (const action of ["kill", "restart"]) {
        const b = /** @type {HTMLButtonElement} */ (row.querySelector(
          `#gfs-${action}-${cs.index}`,
        ));
        b.addEventListener("click", async () => {
          b.disabled = true;
          try {
            await post(`/api/gfs/chunkservers/${cs.index}/${action}`);
            toast(`chunkserver ${cs.id}: ${action} done`);
          } catch (e) {
            toast(`chunkserver ${cs.id}: ${e.message}`, true);
          }
        });
      }
      box.append(row);
    }
    row.dataset.alive = String(cs.alive);
    row.dataset.process = cs.process;
    const frac = cs.capacityBytes > 0 ? cs.usedBytes / cs.capacityBytes : 0;
    /** @type {HTMLElement} */ (row.querySelector(".bar > div")).style.width =
      `${Math.min(100, frac * 100)}%`;
    /** @type {HTMLElement} */ (row.querySelector(".server-text")).textContent =
      cs.process === "killed"
        ? `killed · ${cs.alive ? "master still counts it" : "declared dead"}`
        : `${bytes(cs.usedBytes)} / ${
          bytes(cs.capacityBytes)
        } · ${cs.chunks} chunks${cs.alive ? "" : " · not heartbeating"}`;
    /** @type {HTMLButtonElement} */ (row.querySelector(
      `#gfs-kill-${cs.index}`,
    )).disabled = cs.process === "killed";
    /** @type {HTMLButtonElement} */ (row.querySelector(
      `#gfs-restart-${cs.index}`,
    )).disabled = cs.process !== "killed";
  }
  const colorOf = new Map(
    g.chunkservers.map((cs) => [cs.id, CS_COLORS[cs.index % CS_COLORS.length]]),
  );
  $("#gfs-files").innerHTML = g.uploads.length === 0
    ? `<p class="hint">Upload a file: it is cut into 1 MiB chunks, each stored on 2 of the 3 chunkservers. Kill a chunkserver: after 4 s without heartbeats the master declares it dead and copies its chunks to the third. Kill the leading master: the other two elect a new leader, which takes over the namespace and keeps serving.</p>`
    : `<div class="legend">${
      g.chunkservers.map((cs) =>
        `<span><i style="background:${colorOf.get(cs.id)}"></i>${
          esc(cs.id)
        }</span>`
      ).join("")
    }</div>` +
      g.uploads.map((f) =>
        `<div class="file" data-gfs-file="${
          esc(f.path)
        }"><span class="file-name">${esc(f.path)}</span> · ${
          bytes(f.length)
        } · ${f.chunks.length} chunk${f.chunks.length === 1 ? "" : "s"}
        <div class="chunks">${
          f.chunks.map((c) =>
            `<div class="chunk ${
              c.replicas.length === 0
                ? "lost"
                : c.replicas.length < 2
                ? "under"
                : ""
            }" title="chunk ${c.handle}: ${
              esc(c.replicas.join(", ") || "no live replica")
            }">${
              c.replicas.map((r) =>
                `<span class="rep" style="background:${
                  colorOf.get(r) ?? "#999"
                }"></span>`
              ).join("")
            }</div>`
          ).join("")
        }</div></div>`
      ).join("");
}

$("#gfs-upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("#gfs-file"));
  const file = input.files?.[0];
  const out = $("#gfs-upload-result");
  if (!file) {
    out.className = "result error";
    out.textContent = "choose a file first";
    return;
  }
  out.className = "result";
  out.textContent = `uploading ${file.name} (${bytes(file.size)})…`;
  try {
    const r = await api(
      `/api/gfs/upload?name=${encodeURIComponent(file.name)}`,
      {
        method: "POST",
        body: file,
        // Raw bytes whatever the file's type: a text/plain POST is refused.
        headers: actionHeaders({ "content-type": "application/octet-stream" }),
      },
    );
    out.textContent = `${r.path}: ${bytes(r.length)} in ${r.chunks} chunk${
      r.chunks === 1 ? "" : "s"
    }`;
  } catch (e) {
    out.className = "result error";
    out.textContent = e.message;
  }
});

// ---------------------------------------------------------------- search

function renderSearchHealth(s) {
  $("#search-health").innerHTML = !s.reachable && s.shards.length === 0
    ? `<span class="error">${esc(s.error ?? "coordinator unreachable")}</span>`
    : `<span><b>${num(s.docs)}</b> docs</span>` +
      s.shards.map((sh) =>
        `<span class="shard">shard ${sh.shard}${
          sh.docs !== null ? ` · ${num(sh.docs)}` : ""
        } ${
          sh.replicas.map((r) => {
            const health = r.process === "killed"
              ? "down"
              : r.markedDown
              ? "suspect"
              : "up";
            return `<span class="replica" data-search-replica="${sh.shard}-${r.replica}" data-health="${health}" title="replica ${r.replica}: ${health}${
              r.ewmaMs !== null ? `, ~${r.ewmaMs} ms` : ""
            }"></span>`;
          }).join("")
        }</span>`
      ).join("");
}

$("#search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = /** @type {HTMLInputElement} */ ($("#search-input")).value.trim();
  if (!q) return;
  const timings = $("#search-timings");
  const list = $("#search-results");
  timings.innerHTML = `<span class="hint">searching…</span>`;
  try {
    const r = await api(`/api/search?q=${encodeURIComponent(q)}&size=10`);
    const span = Math.max(0.01, r.tookMs);
    const bar = (label, ms, extra, attrs, cls = "") =>
      `<div class="timing ${cls}" ${attrs}><span>${label}</span><div class="bar"><div style="width:${
        Math.max(1, (ms / span) * 100)
      }%"></div></div><span>${msText(ms)}${extra}</span></div>`;
    timings.innerHTML = r.shards.map((sh) =>
      bar(
        `shard ${sh.shard} ${
          sh.replica === null ? "(no replica)" : `replica ${sh.replica}`
        }`,
        sh.ms,
        ` · ${sh.hits}`,
        `data-shard-timing="${sh.shard}"`,
      )
    ).join("") +
      (r.mergeMs !== null
        ? bar("k-way merge", r.mergeMs, "", `data-merge-timing`, "merge")
        : "") +
      bar("total", r.tookMs, "", `data-total-timing`, "merge") +
      (r.partial
        ? `<span class="error">partial: a shard had no live replica</span>`
        : "");
    list.innerHTML = r.hits.length === 0
      ? `<li class="hint">no match</li>`
      : r.hits.map((h) =>
        `<li data-search-hit="${h.id}"><span class="hit-name">${
          esc(h.name)
        }</span><span class="hit-score">#${h.id} · score ${
          h.score.toFixed(2)
        }</span><div class="snippet">${h.snippet}</div></li>`
      ).join("");
  } catch (e) {
    timings.innerHTML = `<span class="error">${esc(e.message)}</span>`;
    list.innerHTML = "";
  }
});

// ---------------------------------------------------------------- tables

const TABLES_ROLE = { active: "leader", standby: "follower" };

/** @param {string} id */
function tablesMasterCard(id) {
  const box = $("#tables-masters");
  let card = /** @type {HTMLElement | null} */ (box.querySelector(
    `[data-tables-master="${id}"]`,
  ));
  if (card) return card;
  card = document.createElement("article");
  card.className = "master";
  card.dataset.tablesMaster = id;
  card.innerHTML = `
    <div class="node-head"><span class="node-title">Master ${
    esc(id)
  }</span><span class="badge" data-field="badge"></span></div>
    <div class="node-addr" data-field="addr"></div>
    <div class="master-actions">
      <button class="danger" id="tables-master-kill-${
    esc(id)
  }" data-action="kill" title="SIGKILL: the standby takes the kv lock">Kill</button>
      <button id="tables-master-restart-${
    esc(id)
  }" data-action="restart" title="start it again; it waits as a standby">Restart</button>
    </div>`;
  card.querySelectorAll("button").forEach((b) =>
    b.addEventListener("click", () =>
      tablesAction(
        /** @type {HTMLButtonElement} */ (b),
        `/api/tables/masters/${id}/${b.dataset.action}`,
        `master ${id}`,
      ))
  );
  box.append(card);
  return card;
}

/** @param {HTMLButtonElement} button @param {string} path @param {string} what */
async function tablesAction(button, path, what) {
  button.disabled = true;
  try {
    await post(path);
    toast(`${what}: ${path.split("/").pop()} done`);
  } catch (e) {
    toast(`${what}: ${e.message}`, true);
    button.disabled = false;
  }
}

/** @param {string} id */
function tablesServerRow(id) {
  const box = $("#tables-servers");
  let row = /** @type {HTMLElement | null} */ (box.querySelector(
    `[data-tables-server="${id}"]`,
  ));
  if (row) return row;
  row = document.createElement("div");
  row.className = "server";
  row.dataset.tablesServer = id;
  row.innerHTML = `<span class="server-name">${esc(id)}</span>
    <span class="server-text" data-field="text"></span><span></span>
    <span class="server-actions"><button class="danger" id="tables-server-kill-${
    esc(id)
  }" data-action="kill" title="SIGKILL: its kv session expires and the master hands its tablets to the others">Kill</button><button id="tables-server-restart-${
    esc(id)
  }" data-action="restart">Restart</button></span>`;
  row.querySelectorAll("button").forEach((b) =>
    b.addEventListener("click", () =>
      tablesAction(
        /** @type {HTMLButtonElement} */ (b),
        `/api/tables/servers/${id}/${b.dataset.action}`,
        `tablet server ${id}`,
      ))
  );
  box.append(row);
  return row;
}

/** Tablet ids seen in the previous snapshot: a new one is highlighted. */
let knownTablets = new Set();
let lastTabletsJson = "";

function renderTables(t) {
  for (const m of t.masters) {
    const card = tablesMasterCard(m.id);
    const role = m.process === "killed"
      ? "killed"
      : TABLES_ROLE[m.role] ?? "unknown";
    card.dataset.role = role;
    card.dataset.process = m.process;
    const badge =
      /** @type {HTMLElement} */ (card.querySelector('[data-field="badge"]'));
    badge.dataset.role = role;
    badge.textContent = m.process === "killed"
      ? "killed"
      : m.role ?? "no answer";
    setField(card, "addr", m.url.replace(/^https?:\/\//, ""));
    /** @type {HTMLButtonElement} */ (card.querySelector(
      '[data-action="kill"]',
    )).disabled = m.process === "killed";
    /** @type {HTMLButtonElement} */ (card.querySelector(
      '[data-action="restart"]',
    )).disabled = m.process !== "killed";
  }
  $("#tables-status").innerHTML = t.reachable
    ? `<span>active master <b>${esc(t.active ?? "–")}</b></span>
       <span>tablets <b>${t.tablets.length}</b></span>
       <span class="${
      t.tablets.some((x) => x.server === null) ? "warn" : ""
    }">unassigned <b>${
      t.tablets.filter((x) => x.server === null).length
    }</b></span>`
    : `<span class="error">${esc(t.error ?? "no master answers")}</span>`;
  for (const s of t.servers) {
    const row = tablesServerRow(s.id);
    row.dataset.process = s.process;
    row.dataset.alive = String(s.process === "up" && s.serving === true);
    row.dataset.serving = String(s.serving);
    setField(
      row,
      "text",
      s.process === "killed"
        ? `killed · ${s.tablets} tablet${
          s.tablets === 1 ? "" : "s"
        } still mapped to it`
        : `${
          s.serving ? "serving" : esc(s.reason ?? "not answering")
        } · ${s.tablets} tablet${s.tablets === 1 ? "" : "s"} · ${
          bytes(s.bytes)
        }`,
    );
    /** @type {HTMLButtonElement} */ (row.querySelector(
      '[data-action="kill"]',
    )).disabled = s.process === "killed";
    /** @type {HTMLButtonElement} */ (row.querySelector(
      '[data-action="restart"]',
    )).disabled = s.process !== "killed";
  }
  const json = JSON.stringify(t.tablets);
  if (json !== lastTabletsJson) {
    lastTabletsJson = json;
    const first = knownTablets.size === 0;
    $("#tables-tablets tbody").innerHTML = t.tablets.map((x) =>
      `<tr data-tablet="${esc(x.id)}" data-server="${
        esc(x.server ?? "")
      }" class="${!first && !knownTablets.has(x.id) ? "fresh" : ""}" title="${
        esc(x.id)
      }">
        <td>${esc(x.table)}</td>
        <td class="range">[${
        x.start === "" ? "−∞" : esc(JSON.stringify(x.start))
      }, ${x.end === null ? "+∞" : esc(JSON.stringify(x.end))})</td>
        <td>${x.server === null ? "unassigned" : esc(x.server)}</td>
        <td>${bytes(x.bytes)}</td>
        <td><button data-split="${
        esc(x.id)
      }" title="split at its middle row">Split</button></td>
      </tr>`
    ).join("");
    knownTablets = new Set(t.tablets.map((x) => x.id));
    document.querySelectorAll("[data-split]").forEach((b) =>
      b.addEventListener("click", async () => {
        const button = /** @type {HTMLButtonElement} */ (b);
        const id = button.dataset.split ?? "";
        button.disabled = true;
        try {
          const r = await post(`/api/tables/tablets/${id}/split`);
          toast(`${id} split into ${r.tablets.join(" + ")}`);
        } catch (e) {
          toast(`split ${id}: ${e.message}`, true);
          button.disabled = false;
        }
      })
    );
  }
  $("#tables-events").innerHTML = [...t.events].reverse().map((e) =>
    `<li data-tablet-event data-kind="${e.kind}">${
      new Date(e.at).toLocaleTimeString()
    } · ${esc(e.text)}</li>`
  ).join("");
  renderRow(t.row);
}

function renderRow(r) {
  if (!r) return;
  const box = $("#tables-row");
  const cells = r.cells === null
    ? `<p class="hint">not read yet</p>`
    : r.cells.length === 0
    ? `<p class="hint">no such row (yet): write a cell</p>`
    : `<table class="tablets row-cells"><tbody>${
      r.cells.map((c) =>
        `<tr data-row-cell="${esc(c.column)}"><td>${esc(c.column)}</td><td>${
          esc(c.value)
        }</td><td>${new Date(c.timestamp).toLocaleTimeString()}</td></tr>`
      ).join("")
    }</tbody></table>`;
  box.innerHTML = `<div class="write" data-row-tablet="${
    esc(r.tablet ?? "")
  }" data-row-server="${esc(r.server ?? "")}">
    <div class="write-head"><span><b>${esc(r.table)}</b> / <b>${
    esc(r.row)
  }</b></span><span class="write-meta">tablet <b>${
    esc(r.tablet ?? "?")
  }</b> on <b>${esc(r.server ?? "no server")}</b></span></div>
    ${r.error ? `<div class="write-meta error">${esc(r.error)}</div>` : ""}
    ${cells}
    <ol class="tablet-events">${
    [...r.history].reverse().map((h) =>
      `<li data-row-move>${new Date(h.at).toLocaleTimeString()} · ${
        esc(h.tablet ?? "no tablet")
      } on ${esc(h.server ?? "no server")}</li>`
    ).join("")
  }</ol>
  </div>`;
}

$("#tables-follow-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const table = /** @type {HTMLInputElement} */ ($("#tables-follow-table"))
    .value.trim();
  const row = /** @type {HTMLInputElement} */ ($("#tables-follow-row")).value;
  try {
    await post("/api/tables/follow", { table, row });
    $("#tables-write-form").hidden = false;
    $("#tables-row").innerHTML = `<p class="hint">Following ${esc(table)} / ${
      esc(row)
    }…</p>`;
  } catch (e) {
    toast(e.message, true);
  }
});

$("#tables-write-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const result = $("#tables-write-result");
  try {
    const r = await post("/api/tables/write", {
      table: /** @type {HTMLInputElement} */ ($("#tables-follow-table")).value
        .trim(),
      row: /** @type {HTMLInputElement} */ ($("#tables-follow-row")).value,
      column: /** @type {HTMLInputElement} */ ($("#tables-write-column"))
        .value,
      value: /** @type {HTMLInputElement} */ ($("#tables-write-value")).value,
    });
    result.className = "result";
    result.textContent = `written, durable in GFS after ${msText(r.tookMs)}`;
  } catch (e) {
    result.className = "result error";
    result.textContent = e.message;
  }
});

// ---------------------------------------------------------------- stream

function render(s) {
  snap = s;
  renderRaft(s.raft);
  renderFollow(s);
  renderGfs(s.gfs);
  renderSearchHealth(s.search);
  if (s.tables) renderTables(s.tables);
}

function connect() {
  const conn = $("#conn-status");
  const es = new EventSource("/api/stream");
  es.addEventListener("open", () => {
    conn.dataset.state = "live";
    conn.textContent = "live";
  });
  es.addEventListener("snapshot", (ev) => {
    try {
      render(JSON.parse(/** @type {MessageEvent} */ (ev).data));
    } catch (e) {
      console.error("bad snapshot", e);
    }
  });
  es.addEventListener("error", () => {
    conn.dataset.state = "lost";
    conn.textContent = "reconnecting…";
  });
}

// ---------------------------------------------------------------- simulation

async function mountSimulation() {
  const root = $("#sim-root");
  try {
    const mod = await import("./sim_replay.js");
    mod.mountSimReplay(root, {
      scenarios: () => api("/api/sim/scenarios"),
      replay: (scenario, seed) =>
        api(
          `/api/sim/replay?scenario=${encodeURIComponent(scenario)}&seed=${
            encodeURIComponent(seed)
          }`,
        ),
    });
  } catch (e) {
    root.innerHTML = `<p class="error">The simulation panel did not load: ${
      esc(e.message)
    }</p>`;
  }
}

async function mountReplicated() {
  const root = $("#simr-root");
  try {
    const mod = await import("./replicated_replay.js");
    await mod.mountReplicatedReplay(root, { get: (path) => api(path) });
  } catch (e) {
    root.innerHTML = `<p class="error">The replicated replay did not load: ${
      esc(e.message)
    }</p>`;
  }
}

async function mountDataLayerPanel() {
  const root = $("#datalayer-root");
  try {
    const mod = await import("./data_layer.js");
    mod.mountDataLayer(root, {
      get: (path) => api(path),
      post,
      servers: () => (snap?.tables?.servers ?? []).map((s) => s.id),
    });
  } catch (e) {
    root.innerHTML = `<p class="error">The rooms panel did not load: ${
      esc(e.message)
    }</p>`;
  }
}

connect();
mountSimulation();
mountReplicated();
mountDataLayerPanel();
