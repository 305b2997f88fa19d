// The dashboard: fetches the state, follows the event stream, renders, and (in /admin/)
// sends actions. Plain ES module, no build step.
import { age, card, esc, heartbeat, vppPanel } from "./render.js";

const mode = document.body.dataset.mode;
const admin = mode === "admin";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

const model = { scopes: new Map(), order: [], selected: null, closed: new Set(), downSince: new Map(), loaded: false };
let prevValues = new Map();
let stream = null;
let logPaused = false;

function cookie(name) {
  const m = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return m ? decodeURIComponent(m[1]) : null;
}

function select(name) {
  model.selected = name;
  document.cookie = `maglev_scope=${encodeURIComponent(name)}; path=/; max-age=31536000; samesite=strict`;
  render();
}

// Absolute URLs from the origin: a page opened with user:pass@ in its URL must not resolve
// relative URLs with the credentials in them (fetch refuses those).
const url = (path) => `${location.origin}${path}`;

async function getJson(path) {
  const response = await fetch(url(path), { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function noteDown(scopeName, frontend) {
  const key = `${scopeName}/${frontend.name}`;
  if (frontend.state === "down") {
    if (!model.downSince.has(key)) model.downSince.set(key, Date.now());
  } else {
    model.downSince.delete(key);
  }
}

function store(scope) {
  model.scopes.set(scope.name, scope);
  for (const f of Object.values(scope.frontends || {})) noteDown(scope.name, f);
}

async function fetchAll() {
  try {
    const all = await getJson("/view/api/state");
    model.order = all.maglevds.map((s) => s.name);
    for (const scope of all.maglevds) store(scope);
    if (!model.selected || !model.scopes.has(model.selected)) {
      const remembered = cookie("maglev_scope");
      model.selected = model.scopes.has(remembered) ? remembered : model.order[0] ?? null;
    }
    render();
    model.loaded = true;
  } catch (e) {
    notice(`cannot load the state: ${e.message}`);
  }
}

const pending = new Map();
function refetch(name) {
  if (pending.has(name)) return;
  pending.set(name, setTimeout(async () => {
    pending.delete(name);
    try {
      store(await getJson(`/view/api/state/${encodeURIComponent(name)}`));
      render();
    } catch (e) {
      notice(`cannot load ${name}: ${e.message}`);
    }
  }, 150));
}

function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = !text;
}

function renderTabs() {
  const nav = $("tabs");
  nav.innerHTML = model.order.map((name) => {
    const s = model.scopes.get(name);
    return `<button type="button" role="tab" data-scope="${esc(name)}" aria-selected="${name === model.selected}"
      class="${s && s.connected ? "connected" : "disconnected"}"><span class="dot" aria-hidden="true"></span>${esc(name)}</button>`;
  }).join("");
}

function render() {
  renderTabs();
  const scope = model.scopes.get(model.selected);
  const now = Date.now();
  if (!scope) {
    $("vpp").innerHTML = "<p>No maglevd.</p>";
    $("frontends").innerHTML = "";
    return;
  }
  $("vpp").innerHTML = vppPanel(scope, now);
  const frontends = Object.values(scope.frontends || {});
  $("frontends").innerHTML = frontends.length
    ? frontends.map((f) => card(scope, f, !model.closed.has(`${scope.name}/${f.name}`), admin,
        model.downSince.get(`${scope.name}/${f.name}`), now)).join("")
    : `<p class="panel">${scope.connected ? "No frontend." : `maglevd is not reachable${scope.error ? `: ${esc(scope.error)}` : ""}.`}</p>`;
  // Flash what changed since the last render of the same scope (never on first load).
  const values = new Map();
  for (const el of document.querySelectorAll("[data-key]")) {
    const key = `${scope.name}|${el.dataset.key}`;
    values.set(key, el.textContent);
    if (model.loaded && prevValues.has(key) && prevValues.get(key) !== el.textContent) el.classList.add("flash");
  }
  prevValues = values;
}

/** Redraws the heartbeat of every member row of the selected scope, in place. */
function beats(now) {
  const scope = model.scopes.get(model.selected);
  if (!scope) return;
  for (const el of document.querySelectorAll("tr[data-backend] .hb")) {
    const b = (scope.backends || {})[el.closest("tr").dataset.backend];
    if (b) el.textContent = heartbeat(b, now);
  }
}

/** A `probe-start` or `probe-done` record from maglevd's DEBUG log: moves the heartbeat. */
function onProbe(data) {
  const field = data.name === "probe-start" ? "probe_start_ms" : data.name === "probe-done" ? "last_probe_ms" : null;
  const scope = model.scopes.get(data.maglevd);
  const b = field && scope && (scope.backends || {})[(data.fields || {}).backend];
  if (!b) return;
  b[field] = data.at_ms || Date.now();
  if (data.maglevd === model.selected) beats(Date.now());
}

function tick() {
  const now = Date.now();
  beats(now);
  for (const el of document.querySelectorAll("[data-since]")) {
    const since = Number(el.dataset.since);
    if (since) el.textContent = age(now - since);
  }
}

function pulse() {
  const el = $("api-pulse");
  if (!el) return;
  el.classList.remove("on");
  void el.offsetWidth;
  el.classList.add("on");
}

function log(kind, data) {
  if (!admin || logPaused) return;
  const list = $("log-list");
  const li = document.createElement("li");
  const when = new Date(data.at_ms || Date.now()).toLocaleTimeString();
  const { maglevd, at_ms: _, ...rest } = data;
  li.className = rest.level || "";
  li.textContent = `${when} ${maglevd} ${kind} ${JSON.stringify(rest)}`;
  list.append(li);
  while (list.children.length > 500) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function onBackend(data) {
  const scope = model.scopes.get(data.maglevd);
  if (!scope) return;
  for (const f of Object.values(scope.frontends || {})) {
    for (const p of f.pools) for (const m of p.backends) if (m.name === data.backend) m.state = data.to;
  }
  const b = (scope.backends || {})[data.backend];
  if (b) {
    b.state = data.to;
    if (!data.replay) b.since_ms = data.at_ms;
  }
  if (data.maglevd === model.selected) render();
  refetch(data.maglevd);
}

const handlers = {
  backend: (d) => { onBackend(d); log("backend", d); },
  frontend: (d) => { refetch(d.maglevd); log("frontend", d); },
  state: (d) => refetch(d.maglevd),
  maglevd: (d) => { refetch(d.maglevd); log("maglevd", d); },
  vpp: (d) => { refetch(d.maglevd); log("vpp", d); },
  "sync-op": (d) => { if (d.maglevd === model.selected) pulse(); log("sync-op", d); },
  sync: (d) => log("sync", d),
  reload: (d) => { refetch(d.maglevd); log("reload", d); },
  log: (d) => { onProbe(d); log("log", d); },
  missed: (d) => { refetch(d.maglevd); log("missed", d); },
};

function openStream() {
  if (stream) stream.close();
  stream = new EventSource(url("/view/api/events"));
  const badge = $("stream");
  stream.onopen = () => { badge.textContent = "live"; badge.className = "badge connected"; };
  stream.onerror = () => { badge.textContent = "reconnecting"; badge.className = "badge disconnected"; };
  for (const [kind, handle] of Object.entries(handlers)) {
    stream.addEventListener(kind, (e) => {
      try { handle(JSON.parse(e.data)); } catch (err) { console.error("bad event", kind, err); }
    });
  }
  stream.addEventListener("resync", () => fetchAll());
}

// A laptop that slept, or a tab the browser froze: the clock jumps; reopen and refetch.
let lastBeat = Date.now();
function watchdog() {
  const now = Date.now();
  if (now - lastBeat > 5000 || (stream && stream.readyState === EventSource.CLOSED)) {
    openStream();
    fetchAll();
  }
  lastBeat = now;
}

async function post(path, body) {
  const response = await fetch(url(`/admin/api/${encodeURIComponent(model.selected)}/${path}`), {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body ?? {}),
  });
  const text = await response.text();
  let data;
  try { data = JSON.parse(text); } catch { data = text; }
  if (!response.ok) throw new Error(data && data.error ? data.error : `${response.status} ${text}`);
  return data;
}

function showResult(title, data) {
  const el = $("result");
  el.hidden = false;
  el.innerHTML = `<h2>${esc(title)}</h2><pre>${esc(typeof data === "string" ? data : JSON.stringify(data, null, 2))}</pre>`;
}

async function act(button) {
  const { act: what, backend, frontend, pool } = button.dataset;
  button.disabled = true;
  try {
    if (["pause", "resume", "enable", "disable"].includes(what)) {
      const r = await post(`backends/${encodeURIComponent(backend)}/${what}`);
      showResult(`${what} ${backend}`, r);
    } else if (what === "weight") {
      const input = document.querySelector(`input[data-weight="${CSS.escape(`${frontend}/${pool}/${backend}`)}"]`);
      const r = await post("weight", { frontend, pool, backend, weight: Number(input.value) });
      showResult(`weight of ${backend} in ${frontend}/${pool}`, r);
    } else if (what === "preview") {
      const input = document.querySelector(`input[data-weight="${CSS.escape(`${frontend}/${pool}/${backend}`)}"]`);
      const r = await post("preview", { frontend, backend, kind: "set-weight", weight: Number(input.value) });
      showResult(`preview: ${backend} at weight ${input.value} moves ${r.changed_buckets} of ${r.table_length} buckets`, r);
    } else if (what === "sync") {
      showResult(`sync ${frontend}`, await post("sync", { frontend }));
    } else if (what === "plan") {
      showResult(`dry-run plan for ${frontend}`, await post("plan", { frontend }));
    }
    refetch(model.selected);
  } catch (e) {
    showResult(`${what} failed`, e.message);
  } finally {
    button.disabled = false;
  }
}

function init() {
  const link = $("mode-link");
  if (admin) {
    link.href = "/view/";
    link.textContent = "view";
    $("log").hidden = false;
    $("log-pause").addEventListener("click", (e) => {
      logPaused = !logPaused;
      e.target.textContent = logPaused ? "resume" : "pause";
      e.target.setAttribute("aria-pressed", String(logPaused));
    });
  }
  $("tabs").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-scope]");
    if (b) select(b.dataset.scope);
  });
  $("tabs").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    const i = model.order.indexOf(model.selected) + (e.key === "ArrowRight" ? 1 : -1);
    const next = model.order[(i + model.order.length) % model.order.length];
    if (next) { select(next); document.querySelector(`button[data-scope="${CSS.escape(next)}"]`)?.focus(); }
  });
  $("frontends").addEventListener("toggle", (e) => {
    const d = e.target;
    if (!(d instanceof HTMLDetailsElement)) return;
    const key = `${model.selected}/${d.dataset.frontend}`;
    if (d.open) model.closed.delete(key); else model.closed.add(key);
  }, true);
  $("frontends").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]");
    if (b && admin) act(b);
  });
  fetchAll();
  openStream();
  setInterval(tick, 1000);
  setInterval(watchdog, 1000);
}

init();
