/**
 * The rooms and time-series panel: subscribe to a room on a chosen tablet
 * server, publish, and watch each message reach the subscribers of every
 * server (the room's server bitmap, publish-to-deliver times); write points
 * of a series into the time-series table and see its one-second buckets
 * fill and how evenly its tablets share them.
 *
 * Plain ES module, no build step. Ids the browser test drives:
 * `#rooms-room`, `#rooms-server`, `#rooms-subscribe`, `#rooms-data`,
 * `#rooms-via`, `#rooms-publish`, `#rooms-result`, `[data-room]`,
 * `[data-room-bit]` (with `data-bit`), `[data-room-sub]` (with `data-received`),
 * `#series-name`, `#series-write`, `#series-result`, `[data-series-bucket]`,
 * `[data-series-tablet]`, `#series-busiest`.
 *
 * @module
 */

/** @param {unknown} s */
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]
  ));

const ms = (/** @type {number | null} */ v) =>
  v === null ? "–" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;

/**
 * @param {HTMLElement} root
 * @param {{
 *   get(path: string): Promise<any>,
 *   post(path: string, body: unknown): Promise<any>,
 *   servers(): string[],
 * }} api
 */
export function mountDataLayer(root, api) {
  root.innerHTML = `
  <div class="dl-grid">
    <div>
      <h3>Pub/sub rooms</h3>
      <form id="rooms-sub-form" class="row">
        <label>room <input id="rooms-room" value="lobby" autocomplete="off" required></label>
        <label>on server <select id="rooms-server"></select></label>
        <button id="rooms-subscribe" type="submit">Subscribe</button>
      </form>
      <form id="rooms-pub-form" class="row">
        <label>message <input id="rooms-data" value="hello" autocomplete="off"></label>
        <label>through <select id="rooms-via"></select></label>
        <button id="rooms-publish" class="primary" type="submit">Publish</button>
        <span id="rooms-result" class="result"></span>
      </form>
      <div id="rooms-list"><p class="hint">Subscribe to a room on two or three tablet servers, then publish: the room's home sends the message once to each server whose bit is set, and each server to its subscribers.</p></div>
    </div>
    <div>
      <h3>Time series</h3>
      <form id="series-form" class="row">
        <label>series <input id="series-name" value="cpu" autocomplete="off" required></label>
        <label>points <input id="series-points" type="number" value="200" min="1" max="1000"></label>
        <button id="series-write" class="primary" type="submit">Write (last 5 s)</button>
        <span id="series-result" class="result"></span>
      </form>
      <div id="series-view"><p class="hint">The table <code>metrics</code> (one-second buckets, 3 tablets at equal hash ranges) is created on the first write; each write puts its points over the last 5 seconds.</p></div>
    </div>
  </div>`;
  const $ = (
    /** @type {string} */ s,
  ) => /** @type {HTMLInputElement} */ (root.querySelector(s));

  const fillServers = () => {
    for (const id of ["#rooms-server", "#rooms-via"]) {
      const sel = /** @type {HTMLSelectElement} */ ($(id));
      const want = api.servers();
      const have = [...sel.options].map((o) => o.value).filter(Boolean);
      if (want.join() === have.join()) continue;
      const keep = sel.value;
      sel.innerHTML =
        (id === "#rooms-via" ? `<option value="">any</option>` : "") +
        want.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join(
          "",
        );
      if (want.includes(keep)) sel.value = keep;
    }
  };

  /** @param {any} v */
  const renderRooms = (v) => {
    const list = $("#rooms-list");
    if (!v.rooms.length) return;
    const lat = v.latency
      ? `<p class="hint" id="rooms-latency">publish → deliver: p50 ${
        ms(v.latency.p50)
      }, max ${ms(v.latency.max)} over ${v.latency.count} deliveries</p>`
      : "";
    list.innerHTML = lat + v.rooms.map((r) => {
      const bits = r.bitmap.map((b) =>
        `<span class="bit" data-room-bit="${
          esc(b.server)
        }" data-bit="${b.bit}" title="${esc(b.server)}">${
          esc(b.server)
        } ${b.bit}</span>`
      ).join("");
      const subs = r.subscribers.map((s) =>
        `<tr data-room-sub="${s.id}" data-server="${
          esc(s.server)
        }" data-state="${s.state}" data-received="${s.received}">
          <td>#${s.id}</td><td>${esc(s.server)}</td><td>${esc(s.state)}${
          s.reason ? ` (${esc(s.reason)})` : ""
        }</td><td>${s.received}</td><td>${ms(s.lastLatencyMs)}</td></tr>`
      ).join("");
      const pubs = r.publishes.slice(-4).map((p) =>
        `<li>#${p.n} “${esc(p.data)}” via ${
          esc(p.via)
        }: seq ${p.answer.seq}, sent to ${p.answer.servers} server(s), delivered to ${p.deliveries.length}/${p.expected} of ours (${
          p.deliveries.map((d) => `${esc(d.server)} ${ms(d.ms)}`).join(", ") ||
          "none yet"
        })</li>`
      ).join("");
      return `<div class="room" data-room="${esc(r.room)}">
        <div><b>${esc(r.room)}</b> <span class="bits">${bits}</span></div>
        <table class="mini"><thead><tr><th>subscriber</th><th>server</th><th>state</th><th>got</th><th>last</th></tr></thead><tbody>${subs}</tbody></table>
        <ol class="pubs">${pubs}</ol></div>`;
    }).join("");
  };

  /** @param {any} v */
  const renderSeries = (v) => {
    const max = Math.max(1, ...v.buckets.map((b) => b.points));
    const buckets = v.buckets.map((b) =>
      `<div class="bucket" data-series-bucket="${b.bucket}" data-points="${b.points}" title="${
        new Date(b.startMs).toISOString()
      }: ${b.points} points ${esc(JSON.stringify(b.byTablet))}">
        <div class="bar" style="height:${
        Math.round(60 * b.points / max)
      }px"></div>
        <small>${
        new Date(b.startMs).toISOString().slice(17, 19)
      }s</small></div>`
    ).join("");
    const tablets = v.tablets.map((t) =>
      `<tr data-series-tablet="${esc(t.id)}" data-points="${t.points}"><td>${
        esc(t.id)
      }</td><td>${esc(t.server ?? "–")}</td><td>${t.points}</td><td>${
        t.share.toFixed(2)
      }×</td></tr>`
    ).join("");
    const busy = v.busiest
      ? `busiest tablet ${esc(v.busiest.tablet)}: ${
        v.busiest.share.toFixed(2)
      }× the mean (the issue's goal: at most 1.5×)`
      : "no points yet";
    $("#series-view").innerHTML = `
      <p class="hint">${v.points} points of <b>${esc(v.series)}</b> in ${
      esc(v.table)
    } · buckets of ${v.bucketMs} ms (newest ${v.buckets.length})</p>
      <div class="buckets">${buckets}</div>
      <table class="mini"><thead><tr><th>tablet</th><th>server</th><th>points</th><th>share</th></tr></thead><tbody>${tablets}</tbody></table>
      <p id="series-busiest" data-share="${
      v.busiest?.share ?? ""
    }">${busy}</p>`;
  };

  $("#rooms-sub-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("#rooms-result");
    out.className = "result";
    out.textContent = "subscribing…";
    try {
      const r = await api.post("/api/tables/rooms/subscribe", {
        room: $("#rooms-room").value,
        server: $("#rooms-server").value,
      });
      out.textContent = `subscriber #${r.id} on ${r.server}`;
      renderRooms(await api.get("/api/tables/rooms"));
    } catch (err) {
      out.className = "result error";
      out.textContent = err.message;
    }
  });
  $("#rooms-pub-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("#rooms-result");
    out.className = "result";
    out.textContent = "publishing…";
    try {
      const via = $("#rooms-via").value;
      const r = await api.post("/api/tables/rooms/publish", {
        room: $("#rooms-room").value,
        data: $("#rooms-data").value,
        ...(via ? { server: via } : {}),
      });
      out.textContent =
        `#${r.n} seq ${r.seq} via ${r.via}: sent to ${r.servers} server(s), delivered to ${r.delivered} subscriber(s) in ${
          ms(r.tookMs)
        }`;
      out.dataset.servers = String(r.servers);
      out.dataset.delivered = String(r.delivered);
      renderRooms(await api.get("/api/tables/rooms"));
    } catch (err) {
      out.className = "result error";
      out.textContent = err.message;
    }
  });
  $("#series-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = $("#series-result");
    out.className = "result";
    out.textContent = "writing…";
    try {
      const series = $("#series-name").value;
      const r = await api.post("/api/tables/timeseries/write", {
        series,
        points: Number($("#series-points").value),
      });
      out.textContent = `${r.written} points in ${ms(r.tookMs)}`;
      renderSeries(
        await api.get(
          `/api/tables/timeseries?series=${encodeURIComponent(series)}`,
        ),
      );
    } catch (err) {
      out.className = "result error";
      out.textContent = err.message;
    }
  });

  fillServers();
  const timer = setInterval(async () => {
    fillServers();
    try {
      renderRooms(await api.get("/api/tables/rooms"));
    } catch { /* the next round */ }
  }, 1000);
  return { destroy: () => clearInterval(timer) };
}
