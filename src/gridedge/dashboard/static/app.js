// gridedge supervisory panel: plain JS + SVG, live over Server-Sent Events.
"use strict";
const S = { topology: null, grid: { energised: {}, switches: {}, faults: [] }, devices: [], statuses: {},
            latest: {}, events: [], flisr: null, flisrSteps: [], latency: [], classes: [], vmax: {},
            chartDevice: null, selectedBranch: null };
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
const PH_COL = ["#E69F00", "#0072B2", "#009E73"];  // a, b, c

(function takeTokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("gridedge-admin-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
})();

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmtTime(ns) { return new Date(ns / 1e6).toISOString().substring(11, 23); }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

function switchClosed(b) { return b.id in S.grid.switches ? S.grid.switches[b.id] : b.closed; }
function gridKnown() { return Object.keys(S.grid.energised || {}).length > 0; }
function energised(node) { return gridKnown() ? !!S.grid.energised[node] : null; }
function faultedBranches() { return new Set((S.grid.faults || []).map((f) => f.branch_id)); }

// ---------------------------------------------------------------- single-line diagram
// Built once per topology; live updates only change attributes, so an element under the mouse is
// never replaced between mousedown and mouseup (a rebuilt SVG swallows the operator's clicks).
const SLD = { key: null, branches: {}, switches: {}, nodes: {}, swLabels: {}, faultLabels: {} };
function buildSLD() {
  const svg = $("sld");
  svg.replaceChildren();
  const topo = S.topology;
  Object.assign(SLD, { branches: {}, switches: {}, nodes: {}, swLabels: {}, faultLabels: {} });
  if (!topo) { svg.appendChild(el("text", { x: 20, y: 40, class: "lbl" }, "no topology: the grid interface is not connected")); return; }
  const xs = topo.nodes.map((n) => n.x), ys = topo.nodes.map((n) => n.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const W = 800, H = Math.max(160, Math.min(420, 70 * (y1 - y0 + 1) + 60));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const sx = (x) => 40 + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - 100);
  // topology y grows upwards (as on a drawing); SVG y grows downwards
  const sy = (y) => 40 + (y1 > y0 ? (y1 - y) / (y1 - y0) : 0.5) * (H - 80);
  const pos = Object.fromEntries(topo.nodes.map((n) => [n.id, [sx(n.x), sy(n.y)]]));
  const lines = el("g"), marks = el("g"), labels = el("g");
  svg.append(lines, marks, labels);
  for (const b of topo.branches) {
    const [ax, ay] = pos[b.from_node], [bx, by] = pos[b.to_node];
    // elbow for branches between rows: vertical then horizontal, like a drawn diagram
    const d = ay === by ? `M${ax},${ay} L${bx},${by}` : `M${ax},${ay} L${ax},${by} L${bx},${by}`;
    const path = el("path", { d, class: "br on", "data-testid": `branch-${b.id}` });
    path.appendChild(el("title"));
    lines.appendChild(path);
    SLD.branches[b.id] = path;
    const mx = ay === by ? (ax + bx) / 2 : ax, my = ay === by ? ay : (ay + by) / 2;
    if (b.kind === "line" || b.kind === "cable") {
      const hit = el("path", { d, class: "br-hit", "data-branch": b.id });
      hit.addEventListener("click", () => selectBranch(b.id));
      hit.appendChild(el("title", {}, `${b.id}: click to choose for a fault`));
      lines.appendChild(hit);
      const fl = el("text", { x: mx - 30, y: my + 34, class: "lbl fault", visibility: "hidden" }, `⚡ FAULT ${b.id}`);
      labels.appendChild(fl);
      SLD.faultLabels[b.id] = fl;
    }
    if (b.switchable || ["switch", "breaker", "sectionalizer", "tie"].includes(b.kind)) {
      const r = el("rect", { x: mx - 7, y: my - 7, width: 14, height: 14, class: "sw closed", "data-testid": `switch-${b.id}` });
      r.appendChild(el("title"));
      r.addEventListener("click", () => askSwitch(b, !switchClosed(b)));
      marks.appendChild(r);
      SLD.switches[b.id] = r;
      const t = el("text", { x: mx - (b.kind === "tie" ? 40 : 12), y: my + 20, class: "lbl sw-state" });
      labels.appendChild(t);
      SLD.swLabels[b.id] = t;
    }
  }
  const metersAt = {};
  for (const d of S.devices) { const n = d.location && d.location.node_id; if (n) (metersAt[n] = metersAt[n] || []).push(d.id); }
  for (const p of topo.placements || []) { const l = (metersAt[p.node_id] = metersAt[p.node_id] || []); if (!l.includes(p.device_id)) l.push(p.device_id); }
  for (const n of topo.nodes) {
    const [x, y] = pos[n.id];
    const c = el("circle", { cx: x, cy: y, r: n.kind === "source" ? 9 : 5, class: "node on", "data-testid": `node-${n.id}` });
    c.appendChild(el("title"));
    marks.appendChild(c);
    SLD.nodes[n.id] = c;
    if (["source", "substation"].includes(n.kind) || (topo.nodes.length < 30 && n.kind !== "junction"))
      labels.appendChild(el("text", { x: x - 12, y: y - 10, class: "lbl" }, n.id));
    (metersAt[n.id] || []).forEach((m, i) => {
      const t = el("rect", { x: x - 4 + i * 9, y: y + 8, width: 7, height: 7, class: "meter-mark" });
      t.appendChild(el("title", {}, `meter ${m}`));
      marks.appendChild(t);
    });
  }
}
function renderSLD() {
  const topo = S.topology;
  const key = topo ? `${topo.grid}:${topo.version}:${topo.branches.length}:${S.devices.length}` : null;
  if (key !== SLD.key) { SLD.key = key; buildSLD(); }
  if (!topo) return;
  const faulted = faultedBranches();
  for (const b of topo.branches) {
    const closed = switchClosed(b);
    const eA = energised(b.from_node), eB = energised(b.to_node);
    let state;
    if (faulted.has(b.id)) state = "faulted";
    else if (!closed && (b.normally_open || b.kind === "tie")) state = "open-tie";
    else if (eA === null) state = closed ? "on" : "off";
    else state = closed && eA && eB ? "on" : "off";
    const path = SLD.branches[b.id];
    path.setAttribute("class", `br ${state}${S.selectedBranch === b.id ? " selected" : ""}`);
    path.setAttribute("data-state", state);
    path.firstChild.textContent = `${b.id} (${b.kind}${b.length_m ? ", " + Math.round(b.length_m) + " m" : ""}) ${state}`;
    if (SLD.faultLabels[b.id]) SLD.faultLabels[b.id].setAttribute("visibility", faulted.has(b.id) ? "visible" : "hidden");
    const r = SLD.switches[b.id];
    if (r) {
      r.setAttribute("class", `sw ${closed ? "closed" : "open"}`);
      r.setAttribute("data-state", closed ? "closed" : "open");
      r.firstChild.textContent = `${b.kind} ${b.id}: ${closed ? "closed" : "open"} — click to ${closed ? "open" : "close"}`;
      // closed switches are the normal case: only open ones (and breakers) get a text label
      // (breakers and ties always show their state; the id is in the tooltip when space is short)
      const named = b.kind === "breaker" || b.kind === "tie";
      SLD.swLabels[b.id].textContent = named ? `${b.id} ${closed ? "closed" : "OPEN"}` : closed ? "" : "OPEN";
    }
  }
  for (const n of topo.nodes) {
    const e = energised(n.id), c = SLD.nodes[n.id];
    c.setAttribute("class", n.kind === "source" ? "node source" : `node ${e === false ? "off" : "on"}`);
    c.setAttribute("data-energised", e === null ? "unknown" : String(e));
    c.firstChild.textContent = `${n.id} ${e === null ? "" : e ? "energised" : "DE-ENERGISED"}`;
  }
}

function selectBranch(id) {
  S.selectedBranch = id;
  $("fault-branch").value = id;
  renderSLD();
}

// ---------------------------------------------------------------- operator actions
function token() { return sessionStorage.getItem("gridedge-admin-token") || ""; }
function confirmAction(text) {
  return new Promise((resolve) => {
    const dlg = $("confirm");
    $("confirm-text").textContent = text;
    $("token-row").style.display = token() ? "none" : "";
    $("token").value = "";
    dlg.onclose = () => {
      if (dlg.returnValue !== "ok") return resolve(false);
      if (!token() && $("token").value) sessionStorage.setItem("gridedge-admin-token", $("token").value);
      resolve(true);
    };
    dlg.returnValue = "";
    dlg.showModal();
  });
}
async function call(method, url, body) {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json", Authorization: `Bearer ${token()}` },
                               body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 || r.status === 403) sessionStorage.removeItem("gridedge-admin-token");
  if (!r.ok) throw new Error(`${r.status} ${data.title || ""} ${data.detail || ""}`);
  return data;
}
async function askSwitch(b, close) {
  if (!(await confirmAction(`${close ? "Close" : "Open"} ${b.kind} ${b.id} (${b.from_node} – ${b.to_node})? This operates the device.`))) return;
  try { await call("POST", `/api/switches/${encodeURIComponent(b.id)}`, { closed: close }); $("action-result").textContent = `${b.id}: ${close ? "close" : "open"} sent`; }
  catch (e) { $("action-result").textContent = `${b.id}: refused — ${e.message}`; }
  refreshState();
}
$("inject").addEventListener("click", async () => {
  const branch = $("fault-branch").value, kind = $("fault-kind").value;
  if (!branch) return;
  if (!(await confirmAction(`Inject a ${kind} fault on ${branch}? (demo: the twin's protection will trip)`))) return;
  try { await call("POST", "/api/faults", { branch_id: branch, kind, position: 0.5, resistance_ohm: 0.001 }); $("action-result").textContent = `fault injected on ${branch}`; }
  catch (e) { $("action-result").textContent = `fault refused — ${e.message}`; }
  refreshState();
});
$("clear").addEventListener("click", async () => {
  if (!(await confirmAction("Clear every fault in the twin?"))) return;
  try { await call("DELETE", "/api/faults"); $("action-result").textContent = "faults cleared"; }
  catch (e) { $("action-result").textContent = `refused — ${e.message}`; }
  refreshState();
});

// ---------------------------------------------------------------- devices (seed 002 panel: supply and phase flags)
function statusBadge(st) {
  if (st === "connected") return '<span class="badge online">online</span>';
  if (st === "disconnected") return '<span class="badge offline">DISCONNECTED</span>';
  return `<span class="badge unknown">${esc(st || "unknown")}</span>`;
}
function deviceRows() {
  const ids = new Map();
  for (const d of S.devices) ids.set(d.id, d);
  for (const id of Object.keys(S.statuses)) if (!ids.has(id)) ids.set(id, { id, status: S.statuses[id] });
  for (const id of Object.keys(S.latest)) if (!ids.has(id)) ids.set(id, { id });
  return [...ids.values()].sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
}
function renderMeters() {
  const rows = deviceRows();
  const body = $("meters").querySelector("tbody");
  body.replaceChildren();
  let online = 0;
  for (const d of rows) {
    const st = S.statuses[d.id] || d.status;
    if (st === "connected") online++;
    const node = d.location && d.location.node_id;
    const e = node ? energised(node) : null;
    const r = S.latest[d.id];
    let phases = '<span class="ph none">no data</span>';
    if (r && r.voltage_v) {
      const vmax = (S.vmax[d.id] = Math.max(S.vmax[d.id] || 0, ...r.voltage_v.filter((v) => v !== null)));
      phases = r.voltage_v.map((v, i) => v === null ? "" :
        `<span class="ph ${v > 0.1 * vmax ? "live" : "dead"}" title="phase ${"abc"[i]}">${"abc"[i]} ${v >= 1000 ? (v / 1000).toFixed(1) + "k" : v.toFixed(0)}</span>`).join("");
    }
    const supply = e === null ? '<span class="muted">–</span>' : e ? '<span class="badge online">supplied</span>' : '<span class="badge offline">NO SUPPLY</span>';
    const tr = document.createElement("tr");
    tr.className = "clickable" + (S.chartDevice === d.id ? " selected" : "");
    tr.dataset.testid = `device-${d.id}`;
    tr.setAttribute("data-testid", `device-${d.id}`);
    tr.setAttribute("data-status", st || "unknown");
    tr.innerHTML = `<td>${esc(d.id)}${d.kind ? ` <span class="muted small">${esc(d.kind)}${node ? " @" + esc(node) : ""}</span>` : ""}</td><td>${statusBadge(st)}</td><td>${supply}</td><td>${phases}</td>`;
    tr.addEventListener("click", () => { S.chartDevice = d.id; renderMeters(); renderChart(); });
    body.appendChild(tr);
  }
  $("device-summary").textContent = `devices: ${online}/${rows.length} online`;
  $("device-summary").dataset.online = String(online);
  $("device-summary").dataset.total = String(rows.length);
  const flag = $("supply-flag");
  if (!gridKnown()) { flag.className = "flag unknown"; flag.textContent = "supply: unknown"; }
  else {
    const dead = Object.entries(S.grid.energised).filter(([, v]) => !v).map(([k]) => k);
    flag.className = dead.length ? "flag outage" : "flag ok";
    flag.textContent = dead.length ? `OUTAGE: ${dead.length} node(s) de-energised` : "supply OK: all nodes energised";
  }
  flag.dataset.state = flag.className.split(" ")[1];
}

// ---------------------------------------------------------------- events, latency, FLISR
function renderEvents() {
  const ul = $("events");
  ul.replaceChildren();
  for (const ev of S.events.slice(0, 80)) {
    const li = document.createElement("li");
    const alarm = ["last-gasp", "fault-captured", "alarm", "app-error", "disconnected", "bad payload", "fault"].includes(ev.kind);
    if (alarm) li.className = "alarm";
    let detail = "";
    if (ev.payload && typeof ev.payload === "object") {
      const p = ev.payload;
      detail = p.text || p.reason || (p.target ? `${p.target} ${p.action || ""}${p.closed !== undefined && p.closed !== null ? (p.closed ? " → closed" : " → open") : ""}` : "");
    }
    li.textContent = `${fmtTime(ev.ts_ns)}  ${ev.device_id}  ${ev.stream}/${ev.kind}  ${detail}`;
    ul.appendChild(li);
  }
}
function ms(v) { return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 0)} ms`; }
function renderLatency() {
  const body = $("latency").querySelector("tbody");
  body.replaceChildren();
  for (const p of S.latency) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${esc(p.path)}</td><td>${p.count}</td><td>${ms(p.median_ms)}</td><td>${ms(p.max_ms)}</td><td><b>${p.class_max}</b></td>`;
    body.appendChild(tr);
  }
  $("tt-legend").textContent = "class of the worst sample: " + S.classes.map((c) => `${c.name} ≤ ${c.limit_ms} ms`).join(" · ") + " · TT0 > 1 s";
}
function renderFlisr() {
  const rec = S.flisr, svg = $("flisr-timeline");
  svg.replaceChildren();
  if (!rec) { $("flisr-summary").textContent = "no FLISR run yet"; return; }
  const loc = rec.location || {};
  const parts = [];
  if (rec.outcome) parts.push(`outcome: ${rec.outcome}`);
  if (loc.section_id) parts.push(`located: ${loc.section_id} (${loc.from_node}–${loc.to_node}), ${Math.round(loc.distance_m)} m from ${loc.from_node}, by ${loc.device_id}`);
  if (rec.isolated_switches) parts.push(`isolated: ${rec.isolated_switches.join(", ") || "—"}`);
  if (rec.closed_switches) parts.push(`closed: ${rec.closed_switches.join(", ") || "—"}`);
  if (rec.total_s !== undefined) parts.push(`total ${ms(rec.total_s * 1000)}`);
  if (rec.problems && rec.problems.length) parts.push(`problems: ${rec.problems.join("; ")}`);
  $("flisr-summary").textContent = parts.join(" · ") || "FLISR record received";
  const steps = S.flisrSteps;
  if (!steps.length) return;
  const end = Math.max(...steps.map((s) => s.start_ms + s.duration_ms)) || 1;
  const rowH = Math.min(22, 110 / steps.length);
  svg.setAttribute("viewBox", `0 0 400 ${steps.length * rowH + 20}`);
  steps.forEach((s, i) => {
    const x = 130 + (s.start_ms / end) * 230, w = Math.max(2, (s.duration_ms / end) * 230);
    svg.appendChild(el("text", { x: 2, y: i * rowH + rowH * 0.7, class: "lbl" }, s.name.substring(0, 24)));
    const bar = el("rect", { x, y: i * rowH + 2, width: w, height: rowH - 5, fill: PH_COL[i % 3], "data-testid": "flisr-step" });
    bar.appendChild(el("title", {}, `${s.name}: ${ms(s.duration_ms)}`));
    svg.appendChild(bar);
    svg.appendChild(el("text", { x: Math.min(x + w + 2, 362), y: i * rowH + rowH * 0.7, class: "lbl" }, ms(s.duration_ms)));
  });
  svg.appendChild(el("text", { x: 130, y: steps.length * rowH + 15, class: "lbl" }, `total ${ms(end)}`));
}

// ---------------------------------------------------------------- telemetry chart (SVG)
async function renderChart() {
  const svg = $("chart");
  if (!S.chartDevice) {
    // the meter that last lost or regained supply is the one worth a look; else the first meter
    const ev = S.events.find((e) => (e.kind === "last-gasp" || e.kind === "restore") && S.latest[e.device_id]);
    const first = deviceRows().find((d) => S.latest[d.id]);
    if (ev) S.chartDevice = ev.device_id; else if (first) S.chartDevice = first.id;
  }
  if (!S.chartDevice) return;
  $("chart-device").textContent = `${S.chartDevice} — phase voltages, last 5 min`;
  const since = (Date.now() - 300000) * 1e6;
  let data;
  try { data = await (await fetch(`/api/series?device_id=${encodeURIComponent(S.chartDevice)}&quantity=voltage_v&start_ns=${since}&max_points=300`)).json(); }
  catch (e) { return; }
  svg.replaceChildren();
  const pts = data.points || [];
  if (!pts.length) { svg.appendChild(el("text", { x: 10, y: 20, class: "lbl" }, "no stored readings yet")); return; }
  const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  const vals = pts.flatMap((p) => p.slice(1)).filter((v) => v !== null);
  const vmin = Math.min(0, ...vals), vmax = Math.max(...vals, 1) * 1.1;
  const X = (t) => 45 + ((t - t0) / (t1 - t0)) * 345, Y = (v) => 125 - ((v - vmin) / (vmax - vmin)) * 115;
  svg.appendChild(el("line", { x1: 45, y1: 125, x2: 390, y2: 125, stroke: "#999" }));
  svg.appendChild(el("line", { x1: 45, y1: 10, x2: 45, y2: 125, stroke: "#999" }));
  svg.appendChild(el("text", { x: 0, y: 14, class: "lbl" }, vmax >= 1000 ? `${(vmax / 1000).toFixed(1)} kV` : `${vmax.toFixed(0)} V`));
  svg.appendChild(el("text", { x: 0, y: 125, class: "lbl" }, "0"));
  const hms = (ns) => new Date(ns / 1e6).toISOString().substring(11, 19);
  svg.appendChild(el("text", { x: 45, y: 138, class: "lbl", "text-anchor": "start" }, hms(t0)));
  svg.appendChild(el("text", { x: 390, y: 138, class: "lbl", "text-anchor": "end" }, `${hms(t1)} UTC`));
  for (let ph = 0; ph < 3; ph++) {
    const line = pts.filter((p) => p[ph + 1] !== null).map((p) => `${X(p[0]).toFixed(1)},${Y(p[ph + 1]).toFixed(1)}`).join(" ");
    if (!line) continue;
    svg.appendChild(el("polyline", { points: line, fill: "none", stroke: PH_COL[ph], "stroke-width": 1.6, "stroke-dasharray": ["", "5 2", "1 2"][ph] }));
    svg.appendChild(el("text", { x: 150 + ph * 40, y: 138, class: "lbl", fill: PH_COL[ph] }, `— ${"abc"[ph]}`));
  }
}

// ---------------------------------------------------------------- state and live updates
function fillFaultSelect() {
  const sel = $("fault-branch");
  const keep = sel.value;
  sel.replaceChildren();
  for (const b of (S.topology ? S.topology.branches : []).filter((b) => b.kind === "line" || b.kind === "cable")) {
    const o = document.createElement("option"); o.value = b.id; o.textContent = `${b.id} (${b.from_node}–${b.to_node})`; sel.appendChild(o);
  }
  if (keep) sel.value = keep;
}
function applyState(st) {
  S.topology = st.topology;
  if (st.grid && (st.grid.seq || 0) >= (S.grid.seq || 0)) S.grid = st.grid; S.devices = st.devices || []; S.statuses = st.statuses || {};
  S.latest = st.latest || {}; S.events = st.events || []; S.flisr = st.flisr; S.flisrSteps = st.flisr_steps || [];
  S.latency = st.latency || []; S.classes = st.transfer_classes || [];
  $("grid-name").textContent = `grid: ${st.topology ? st.topology.grid : "—"}`;
  fillFaultSelect(); renderAll();
}
function renderAll() { renderSLD(); renderMeters(); renderEvents(); renderLatency(); renderFlisr(); }
async function refreshState() {
  try { applyState(await (await fetch("/api/state")).json()); } catch (e) { $("conn").textContent = "offline"; }
}
// coalesce bursts of updates: each renderer runs at most once per 150 ms
const pending = new Set();
function soon(fn) {
  if (pending.has(fn)) return;
  pending.add(fn);
  setTimeout(() => { pending.delete(fn); fn(); }, 150);
}
function renderGrid() { renderSLD(); renderMeters(); }
function connect() {
  const es = new EventSource("/api/stream");
  es.onopen = () => { $("conn").textContent = "live"; $("conn").dataset.state = "live"; refreshState(); };
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").dataset.state = "down"; };
  es.addEventListener("grid", (m) => { const g = JSON.parse(m.data); if ((g.seq || 0) >= (S.grid.seq || 0)) S.grid = g; soon(renderGrid); });
  es.addEventListener("status", (m) => { const d = JSON.parse(m.data); S.statuses[d.device_id] = d.status; soon(renderMeters); });
  es.addEventListener("telemetry", (m) => { const r = JSON.parse(m.data); S.latest[r.device_id] = r; soon(renderMeters); });
  es.addEventListener("event", (m) => { S.events.unshift(JSON.parse(m.data)); S.events.length = Math.min(S.events.length, 200); soon(renderEvents); });
  es.addEventListener("flisr", () => refreshState());
}
setInterval(() => { $("clock").textContent = new Date().toISOString().substring(0, 19).replace("T", " ") + " UTC"; }, 1000);
setInterval(renderChart, 3000);
setInterval(async () => { try { const l = await (await fetch("/api/latency")).json(); S.latency = l.paths; renderLatency(); } catch (e) {} }, 3000);
refreshState().then(renderChart);
connect();
