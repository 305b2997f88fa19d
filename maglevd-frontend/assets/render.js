// Pure rendering: a maglevd's state in, HTML out. No I/O here.

const BAD = new Set(["down", "paused", "disabled", "removed"]);

/** Escapes text for HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** An age as the original shows it: "now", "42s", "10m30s", "1h12m", "3d4h". */
export function age(ms) {
  if (!ms || ms < 0) return "now";
  const s = Math.floor(ms / 1000);
  if (s < 1) return "now";
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** The class of a backend state's badge: "st-up", "bad" (takes no traffic) or "st-unknown". */
export function stateClass(state) {
  if (state === "up") return "st-up";
  return BAD.has(state) ? `bad st-${esc(state)}` : `st-${esc(state)}`;
}

/**
 * A frontend's health icon: ✅ every member of the active pool up, ⚠️ up but degraded,
 * ❗ down for a moment (held back while it settles), ‼️ down, ❓ unknown.
 */
export function healthIcon(frontend, downSinceMs, nowMs) {
  if (frontend.state === "unknown") return ["❓", "unknown"];
  if (frontend.state === "down") {
    return downSinceMs && nowMs - downSinceMs < 10000 ? ["❗", "down (settling)"] : ["‼️", "down"];
  }
  const pool = frontend.pools[frontend.active_pool] || frontend.pools[0];
  const allUp = pool && pool.backends.every((b) => b.state === "up");
  return allUp && frontend.active_pool === 0 ? ["✅", "healthy"] : ["⚠️", "degraded"];
}

function num(n) {
  return Number(n || 0).toLocaleString("en-US");
}

/** The VPP panel. */
export function vppPanel(scope, nowMs) {
  const vpp = scope.vpp || {};
  const badge = vpp.connected ? `<span class="badge connected" data-testid="vpp-badge">VPP connected</span>`
    : `<span class="badge disconnected" data-testid="vpp-badge">VPP disconnected</span>`;
  const counters = (scope.counters || []).map((c) =>
    `<div><dt>${esc(c.frontend || "?")}</dt><dd>${num(c.first)} new · ${num(c.existing)} existing · ${num(c.no_server)} no server · ${num(c.route_packets)} packets, ${num(c.route_bytes)} bytes routed</dd></div>`).join("");
  return `<h2>${esc(scope.name)} ${scope.connected ? `<span class="badge connected">maglevd ${esc(scope.version || "")}</span>` : `<span class="badge disconnected" title="${esc(scope.error || "")}">maglevd disconnected</span>`} ${badge}</h2>
  <dl class="kv">
    <div><dt>version</dt><dd data-key="vpp-version">${esc(vpp.version || "–")}</dd></div>
    <div><dt>uptime</dt><dd data-since="${vpp.boot_ms || 0}">${vpp.boot_ms ? age(nowMs - vpp.boot_ms) : "–"}</dd></div>
    <div><dt>connected</dt><dd data-since="${vpp.connect_ms || 0}">${vpp.connect_ms ? age(nowMs - vpp.connect_ms) : "–"}</dd></div>
    <div><dt>API</dt><dd><span class="pulse" id="api-pulse" title="lb operations sent">↑↓</span> <span data-key="vpp-ops">${num(vpp.api_ops)}</span> ops</dd></div>
    <div><dt>VIPs</dt><dd data-key="vpp-vips">${(scope.vips || []).length}</dd></div>
    ${counters}
  </dl>`;
}

/**
 * The probe heartbeat of a backend: ❤️ while a probe is in flight (started, not yet done, and
 * not stale) or for a moment after one finished, else a dot.
 */
export function heartbeat(backend, nowMs) {
  const started = backend.probe_start_ms || 0;
  const done = backend.last_probe_ms || 0;
  const inFlight = started > done && nowMs - started < 10000;
  return inFlight || (done && nowMs - done < 1000) ? "❤️" : "•";
}

function memberRow(scope, frontend, pool, m, admin, nowMs) {
  const backend = (scope.backends || {})[m.name] || {};
  const share = frontend.table_length ? (100 * m.buckets) / frontend.table_length : 0;
  const since = backend.since_ms || 0;
  const beat = heartbeat(backend, nowMs);
  const key = `${frontend.name}/${pool.name}/${m.name}`;
  const weight = m.weight_override ?? m.weight;
  const actions = admin ? `<td><div class="actions">
      <button type="button" data-act="pause" data-backend="${esc(m.name)}">pause</button>
      <button type="button" data-act="resume" data-backend="${esc(m.name)}">resume</button>
      <button type="button" data-act="enable" data-backend="${esc(m.name)}">enable</button>
      <button type="button" data-act="disable" data-backend="${esc(m.name)}">disable</button>
      <input type="number" min="0" max="100" value="${weight}" aria-label="weight of ${esc(m.name)} in ${esc(pool.name)}" data-weight="${esc(key)}">
      <button type="button" data-act="weight" data-frontend="${esc(frontend.name)}" data-pool="${esc(pool.name)}" data-backend="${esc(m.name)}">set</button>
      <button type="button" data-act="preview" data-frontend="${esc(frontend.name)}" data-pool="${esc(pool.name)}" data-backend="${esc(m.name)}">preview</button>
    </div></td>` : "";
  return `<tr data-backend="${esc(m.name)}">
    <td><span class="hb" title="probe heartbeat">${beat}</span>${esc(m.name)}</td>
    <td class="opt muted">${esc(m.address)}</td>
    <td class="state"><span class="${stateClass(m.state)}" data-key="${esc(key)}/state">${esc(m.state)}</span></td>
    <td data-key="${esc(key)}/weight">${m.weight}${m.weight_override != null ? ` → ${m.weight_override}` : ""}</td>
    <td data-key="${esc(key)}/effective">${m.effective_weight}</td>
    <td><span data-key="${esc(key)}/buckets">${m.buckets}</span> <span class="muted">${share.toFixed(1)}%</span><span class="bar" aria-hidden="true"><i style="width:${share.toFixed(1)}%"></i></span></td>
    <td class="opt" data-since="${since}">${since ? age(nowMs - since) : "–"}</td>
    ${actions}
  </tr>`;
}

/** One frontend's card. */
export function card(scope, frontend, open, admin, downSinceMs, nowMs) {
  const [icon, title] = healthIcon(frontend, downSinceMs, nowMs);
  const active = frontend.pools[frontend.active_pool];
  const port = frontend.protocol === "any" ? "all ports" : `${frontend.protocol}/${frontend.port}`;
  const rows = frontend.pools.map((pool) => `
    <tr class="pool-head${pool.active ? "" : " inactive"}"><td colspan="${admin ? 8 : 7}">pool ${esc(pool.name)}${pool.active ? " (active)" : ""}</td></tr>
    ${pool.backends.map((m) => memberRow(scope, frontend, pool, m, admin, nowMs)).join("")}`).join("");
  const cardActions = admin ? `<div class="actions card-actions">
      <button type="button" data-act="sync" data-frontend="${esc(frontend.name)}">sync now</button>
      <button type="button" data-act="plan" data-frontend="${esc(frontend.name)}">dry-run plan</button></div>` : "";
  return `<details class="card" data-frontend="${esc(frontend.name)}" data-state="${esc(frontend.state)}"${open ? " open" : ""}>
    <summary><span class="name">${esc(frontend.name)}</span>
      <span class="badge ${esc(frontend.state)}" data-key="${esc(frontend.name)}/state">${esc(frontend.state)}</span>
      <span class="health" title="${title}" role="img" aria-label="${title}">${icon}</span>
      <span class="vip">${esc(frontend.prefix)} ${esc(port)}</span>
      <span class="muted">active pool: <b data-key="${esc(frontend.name)}/active">${esc(active ? active.name : "none")}</b></span>
      ${frontend.description ? `<span class="desc">${esc(frontend.description)}</span>` : ""}
    </summary>
    <div class="table-wrap"><table>
      <thead><tr><th>backend</th><th class="opt">address</th><th>state</th><th>weight</th><th>effective</th><th>buckets</th><th class="opt">since</th>${admin ? "<th>actions</th>" : ""}</tr></thead>
      <tbody>${rows}</tbody>
    </table></div>
    ${cardActions}
  </details>`;
}
