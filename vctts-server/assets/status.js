// /status: announcements, overview cards, a latency/throughput chart, the
// engine → node tree and endpoint health, kept live.
//
// Data: GET /api/v3/nodes, /api/v3/engines, /api/v3/health,
// /api/v3/metrics?format=json (or, from a gateway without the JSON summary,
// its Prometheus text), /api/v3/announcements and
// /api/v3/status/endpoints; live node updates from the SSE stream
// GET /api/v3/events (event `nodes`), falling back to polling every 2 s.
//
// Budget: the public API is rate limited per client IP, and this page shares
// that budget with the viewer's own calls. Nodes come over the event stream
// (or are polled every 2 s), with health and metrics (which the limiter
// exempts); engines, announcements and endpoint checks are read every 10 s;
// a 429 is honoured (Retry-After) before that URL is asked again.
//
// Invariants: a missing field shows the dash, never "undefined" or NaN; a
// node that disappears from the gateway's list stays on the page as offline
// (for five minutes) instead of vanishing or breaking the table; an endpoint
// the gateway does not have (404) is not asked again for a minute, so an
// older gateway does not fill the console; one refresh runs at a time.

import {
  $, el, replace, pick, num, show, fmtInt, fmtPct, fmtMs, fmtBytes, fmtSeconds, fmtTime,
  api, listOf, stateBadge, modelLabel, markNav, DASH,
} from './common.js';

const POLL_MS = 2000;
const SSE_SIDE_POLL_MS = 5000;
const SAMPLE_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const GONE_KEEP_MS = 5 * 60 * 1000;
const MISSING_RETRY_MS = 60 * 1000;
const SLOW_MS = 10 * 1000;

const state = {
  nodes: new Map(), // id -> { data, gone: false | timestamp }
  nodesLoaded: false,
  engines: [],
  health: undefined,
  metrics: undefined,
  endpoints: undefined,
  announcements: [],
  samples: [],
  lastTotal: undefined,
  lastLatency: undefined,
  missing: new Map(), // url -> time it answered 404
  backoff: new Map(), // url -> time before which it is not asked (after a 429)
  slowAt: 0, // when the slow set was last read
  updatedAt: undefined,
  unreachable: false,
};

let source = null; // EventSource
let sseOpen = false;
let pollTimer = 0;
let sampleTimer = 0;
let refreshing = false;
let pendingRefresh = false;

// ---- data -----------------------------------------------------------------

function applyNodes(list) {
  const now = Date.now();
  const seen = new Set();
  for (const n of list) {
    if (!n || typeof n !== 'object' || n.id === undefined || n.id === null) continue;
    const id = String(n.id);
    seen.add(id);
    state.nodes.set(id, { data: n, gone: false });
  }
  for (const [id, entry] of state.nodes) {
    if (seen.has(id)) continue;
    if (!entry.gone) entry.gone = now;
    else if (now - entry.gone > GONE_KEEP_MS) state.nodes.delete(id);
  }
  state.nodesLoaded = true;
}

async function getJson(url) {
  const now = Date.now();
  const missingSince = state.missing.get(url);
  if (missingSince && now - missingSince < MISSING_RETRY_MS) return { skipped: true };
  if ((state.backoff.get(url) || 0) > now) return { skipped: true };
  const res = await api('GET', url, { signal: AbortSignal.timeout(8000) });
  if (res.status === 404) state.missing.set(url, Date.now());
  else state.missing.delete(url);
  if (res.status === 429) {
    const wait = num(res.headers.get('retry-after'));
    state.backoff.set(url, Date.now() + 1000 * Math.min(300, Math.max(1, wait ?? 5)));
  }
  return res;
}

async function refresh({ includeNodes = true, all = false } = {}) {
  if (refreshing) { pendingRefresh = true; return; }
  refreshing = true;
  try {
    const calls = {
      health: getJson('/api/v3/health'),
      metrics: getJson('/api/v3/metrics?format=json'),
    };
    if (all || Date.now() - state.slowAt >= SLOW_MS) {
      state.slowAt = Date.now();
      calls.engines = getJson('/api/v3/engines');
      calls.announcements = getJson('/api/v3/announcements');
      calls.endpoints = getJson('/api/v3/status/endpoints');
    }
    if (includeNodes) calls.nodes = getJson('/api/v3/nodes');
    const keys = Object.keys(calls);
    const settled = await Promise.allSettled(Object.values(calls));
    const out = {};
    keys.forEach((k, i) => { out[k] = settled[i]; });
    let networkFailures = 0;
    const ok = (k) => {
      const s = out[k];
      if (!s) return undefined;
      if (s.status === 'rejected') { networkFailures += 1; return undefined; }
      const r = s.value;
      return r && !r.skipped && r.ok && r.body && typeof r.body === 'object' ? r.body : undefined;
    };
    const nodes = ok('nodes');
    if (nodes) applyNodes(listOf(nodes, 'nodes'));
    const engines = ok('engines');
    if (engines) state.engines = listOf(engines, 'engines');
    const health = ok('health');
    if (health) state.health = health;
    const metrics = ok('metrics');
    if (metrics) state.metrics = metrics;
    else if (out.metrics && out.metrics.status === 'fulfilled' && out.metrics.value.ok && typeof out.metrics.value.body === 'string') {
      state.metrics = fromPrometheus(out.metrics.value.body);
    }
    const announcements = ok('announcements');
    if (announcements) state.announcements = listOf(announcements, 'announcements');
    const endpoints = ok('endpoints');
    const checks = out.endpoints && out.endpoints.status === 'fulfilled' ? out.endpoints.value : undefined;
    if (endpoints) state.endpoints = listOf(endpoints, 'endpoints');
    else if (checks && checks.status === 404) state.endpoints = null;
    state.unreachable = networkFailures === keys.length;
    if (state.unreachable) markAllStale();
    else state.updatedAt = Date.now();
    render();
  } finally {
    refreshing = false;
    if (pendingRefresh) { pendingRefresh = false; refresh({ includeNodes: !sseOpen }); }
  }
}

// When the gateway itself does not answer, what we show is no longer known.
function markAllStale() {
  const now = Date.now();
  for (const entry of state.nodes.values()) if (!entry.gone) entry.gone = now;
}

// ---- figures ----------------------------------------------------------------

// Routes the pages themselves poll: not counted as service traffic.
const MONITORING = /^\/api\/v3\/(health|metrics|nodes|engines|announcements|openapi\.json|status|events)(\/|$)/;

/** The overview figures from Prometheus text: requests and latency of the API routes, in-flight per node. */
function fromPrometheus(text) {
  let requests = 0;
  let sum = 0;
  let count = 0;
  let inFlight = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const route = (/route="([^"]*)"/.exec(m[2] || '') || [])[1] || '';
    const api = (route.startsWith('/api/v3/') || route.startsWith('/v1/')) && !MONITORING.test(route);
    if (m[1] === 'vctts_http_requests_total' && api) { requests += value; seen = true; }
    else if (m[1] === 'vctts_http_request_duration_seconds_sum' && api) sum += value;
    else if (m[1] === 'vctts_http_request_duration_seconds_count' && api) count += value;
    else if (m[1] === 'vctts_node_in_flight') { inFlight += value; seen = true; }
  }
  if (!seen) return undefined;
  return { requests_total: requests, in_flight: inFlight, latency_sum_ms: sum * 1000, latency_count: count,
    avg_latency_ms: count ? (sum * 1000) / count : undefined };
}

function liveNodes() {
  return [...state.nodes.values()].filter((e) => !e.gone).map((e) => e.data);
}

function isOnline(n) {
  const s = String(pick(n, 'state') || '').toLowerCase();
  return s !== '' && s !== 'offline';
}

function sum(list, path) {
  let total = 0;
  let any = false;
  for (const n of list) {
    const v = num(pick(n, path));
    if (v !== undefined) { total += v; any = true; }
  }
  return any ? total : undefined;
}

function overview() {
  const nodes = liveNodes();
  const m = state.metrics || {};
  const all = [...state.nodes.values()];
  const online = nodes.filter(isOnline).length;
  const requests = num(pick(m, 'requests_total', 'total_requests', 'requests.total', 'requests'))
    ?? sum(nodes, 'metrics.requests');
  const concurrency = num(pick(m, 'in_flight', 'concurrency', 'current_concurrency', 'inflight'))
    ?? sum(nodes, 'metrics.in_flight');
  const queued = num(pick(m, 'queued', 'queue', 'queue_depth')) ?? sum(nodes, 'metrics.queued');
  let latency = num(pick(m, 'avg_latency_ms', 'average_latency_ms', 'latency_ms.avg', 'latency_ms.mean', 'latency_ms'));
  if (latency === undefined) {
    let weight = 0;
    let acc = 0;
    for (const n of nodes) {
      const l = num(pick(n, 'metrics.latency_ms'));
      if (l === undefined) continue;
      const w = Math.max(1, num(pick(n, 'metrics.requests')) || 0);
      acc += l * w;
      weight += w;
    }
    latency = weight ? acc / weight : undefined;
  }
  const rate = num(pick(m, 'requests_per_second', 'rps', 'throughput_rps'));
  const latencySum = num(m.latency_sum_ms);
  const latencyCount = num(m.latency_count);
  return { online, total: all.length, requests, concurrency, queued, latency, rate, latencySum, latencyCount };
}

// ---- rendering --------------------------------------------------------------

function render() {
  renderBanner();
  renderAnnouncements();
  renderCards();
  renderEngines();
  renderEndpoints();
  renderFooter();
}

function renderBanner() {
  const b = $('gateway-banner');
  if (state.unreachable) {
    b.textContent = 'The gateway does not answer. Showing the last known state; retrying.';
    b.classList.remove('hidden');
  } else {
    b.classList.add('hidden');
  }
}

function announcementKind(a) {
  const k = String(pick(a, 'type', 'kind', 'level') || 'info').toLowerCase();
  return k === 'warning' || k === 'error' ? k : 'info';
}

function renderAnnouncements() {
  const list = $('announcements');
  const now = Date.now();
  const items = (state.announcements || []).filter((a) => {
    const exp = pick(a, 'expires_at', 'expires');
    const d = exp ? new Date(typeof exp === 'number' && exp < 1e12 ? exp * 1000 : exp) : undefined;
    return !d || Number.isNaN(d.getTime()) || d.getTime() > now;
  });
  replace(list, items.map((a) => {
    const kind = announcementKind(a);
    const when = pick(a, 'created_at', 'time', 'timestamp');
    return el('li', { class: `notice ${kind}`, dataset: { kind } },
      el('strong', { text: `[${kind}]` }),
      el('span', { class: 'grow', text: show(pick(a, 'message', 'text')) }),
      when !== undefined ? el('span', { class: 'when', text: fmtTime(when) }) : null);
  }));
}

function renderCards() {
  const o = overview();
  $('card-online').textContent = state.nodesLoaded ? `${o.online} / ${o.total}` : DASH;
  $('card-requests').textContent = fmtInt(o.requests);
  $('card-concurrency').textContent = o.concurrency === undefined ? DASH
    : `${fmtInt(o.concurrency)}${o.queued ? ` (+${fmtInt(o.queued)} queued)` : ''}`;
  $('card-latency').textContent = fmtMs(o.latency);
}

function engineNames() {
  const withNodes = (n) => [...state.nodes.values()].some((e) => String(pick(e.data, 'engine')) === n);
  const names = [];
  for (const e of state.engines) {
    const n = pick(e, 'engine', 'name', 'id');
    if (n !== undefined && !names.includes(String(n))) names.push(String(n));
  }
  for (const { data } of state.nodes.values()) {
    const n = pick(data, 'engine');
    if (n !== undefined && !names.includes(String(n))) names.push(String(n));
  }
  // Engines with nodes first; the others follow in their own order.
  return [...names.filter(withNodes), ...names.filter((n) => !withNodes(n))];
}

function nodeRow(id, entry) {
  const n = entry.data;
  const m = n.metrics || {};
  const st = entry.gone ? 'offline' : pick(n, 'state');
  const gpu = [];
  if (num(m.gpu_percent) !== undefined) gpu.push(fmtPct(m.gpu_percent));
  if (num(m.gpu_memory_bytes) !== undefined) gpu.push(fmtBytes(m.gpu_memory_bytes));
  const seen = entry.gone ? `not reported since ${fmtTime(entry.gone)}` : fmtSeconds(n.last_seen_seconds);
  return el('tr', { class: entry.gone ? 'gone' : '', dataset: { nodeId: id } },
    el('td', { 'data-label': 'Node', class: 'mono', text: id }),
    el('td', { 'data-label': 'Address', class: 'mono', text: show(pick(n, 'endpoint', 'address', 'url')) }),
    el('td', { 'data-label': 'State', dataset: { field: 'state' } }, stateBadge(st)),
    el('td', { 'data-label': 'Model', dataset: { field: 'model' }, text: entry.gone ? DASH : modelLabel(n) }),
    el('td', { 'data-label': 'CPU', class: 'num', text: fmtPct(pick(m, 'cpu_percent')) }),
    el('td', { 'data-label': 'Memory', class: 'num', text: fmtBytes(pick(m, 'memory_bytes')) }),
    el('td', { 'data-label': 'GPU', class: 'num', text: gpu.length ? gpu.join(' · ') : DASH }),
    el('td', { 'data-label': 'In-flight', class: 'num', dataset: { field: 'in_flight' }, text: fmtInt(pick(m, 'in_flight')) }),
    el('td', { 'data-label': 'Queue', class: 'num', dataset: { field: 'queued' }, text: fmtInt(pick(m, 'queued', 'queue')) }),
    el('td', { 'data-label': 'Latency', class: 'num', text: fmtMs(pick(m, 'latency_ms')) }),
    el('td', { 'data-label': 'Last seen', class: 'small', text: seen }));
}

function renderEngines() {
  const root = $('engines');
  const names = engineNames();
  if (!names.length) {
    replace(root, el('p', { class: 'muted', text: state.nodesLoaded ? 'No engines or nodes are registered.' : 'Loading\u2026' }));
    return;
  }
  const blocks = names.map((name) => {
    const info = state.engines.find((e) => String(pick(e, 'engine', 'name', 'id')) === name) || {};
    const entries = [...state.nodes.entries()].filter(([, e]) => String(pick(e.data, 'engine')) === name)
      .sort(([a], [b]) => a.localeCompare(b));
    const ready = entries.filter(([, e]) => !e.gone && ['ready', 'busy'].includes(String(e.data.state).toLowerCase())).length;
    const available = info.available ?? ready > 0;
    const head = el('div', { class: 'panel-head' },
      el('h3', { text: name }),
      info.name ? el('span', { class: 'muted small', text: info.name }) : null,
      el('span', { class: `badge ${available ? 'ok' : 'err'}`, text: available ? 'available' : 'unavailable' }),
      info.default ? el('span', { class: 'badge info', text: 'default' }) : null,
      el('span', { class: 'muted small', text: `${ready} of ${entries.filter(([, e]) => !e.gone).length} nodes ready` }));
    const body = entries.length
      ? el('div', { class: 'table-wrap' }, el('table', { class: 'stack' },
        el('thead', {}, el('tr', {}, ['Node', 'Address', 'State', 'Model', 'CPU', 'Memory', 'GPU', 'In-flight', 'Queue', 'Latency', 'Last seen']
          .map((h, i) => el('th', { scope: 'col', class: i >= 4 && i <= 9 ? 'num' : '', text: h })))),
        el('tbody', {}, entries.map(([id, e]) => nodeRow(id, e)))))
      : el('p', { class: 'muted small', text: 'No nodes registered for this engine.' });
    return el('section', { class: 'engine-block', dataset: { engine: name } }, head, body);
  });
  replace(root, blocks);
}

function endpointStatus(e) {
  const code = num(pick(e, 'status', 'status_code', 'code'));
  if (code === undefined) return el('span', { class: 'badge', text: show(pick(e, 'status', 'error')) });
  const ok = code >= 200 && code < 400;
  const label = `${ok ? '\u2705' : '\u274c'} ${code}${ok ? ' OK' : ''}`;
  return el('span', { class: `badge ${ok ? 'ok' : 'err'}`, text: label });
}

function renderEndpoints() {
  const body = $('endpoints');
  if (state.endpoints === null) {
    replace(body, el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'This gateway does not report endpoint checks.' })));
    return;
  }
  if (state.endpoints === undefined) return;
  if (!state.endpoints.length) {
    replace(body, el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No endpoint checks yet.' })));
    return;
  }
  replace(body, state.endpoints.map((e) => el('tr', { dataset: { endpoint: show(pick(e, 'endpoint', 'path')) } },
    el('td', { 'data-label': 'Endpoint', class: 'mono', text: show(pick(e, 'endpoint', 'path')) }),
    el('td', { 'data-label': 'Method', text: show(pick(e, 'method')) }),
    el('td', { 'data-label': 'Status' }, endpointStatus(e)),
    el('td', { 'data-label': 'Average latency', class: 'num', text: fmtMs(pick(e, 'avg_ms', 'avg_latency_ms', 'latency_ms')) }),
    el('td', { 'data-label': 'Checked', class: 'small', text: fmtTime(pick(e, 'checked_at', 'time')) }))));
}

function renderFooter() {
  const h = state.health || {};
  const parts = [];
  if (h.status) parts.push(`gateway ${h.status}`);
  if (h.version) parts.push(`version ${h.version}`);
  if (num(h.uptime_seconds) !== undefined) parts.push(`up ${fmtSeconds(h.uptime_seconds)}`);
  parts.push(`updated ${state.updatedAt ? fmtTime(state.updatedAt) : DASH}`);
  $('footer-line').textContent = parts.join(' \u00b7 ');
}

// ---- chart ------------------------------------------------------------------

function sample() {
  const now = Date.now();
  const o = overview();
  let rate = o.rate;
  if (rate === undefined && o.requests !== undefined) {
    const prev = state.lastTotal;
    if (prev && now > prev.t) rate = Math.max(0, (o.requests - prev.requests) / ((now - prev.t) / 1000));
    state.lastTotal = { t: now, requests: o.requests };
  }
  // With cumulative latency figures, the chart shows each interval's own average.
  let latency = o.latency;
  if (o.latencySum !== undefined && o.latencyCount !== undefined) {
    const prev = state.lastLatency;
    if (prev && o.latencyCount > prev.count) latency = (o.latencySum - prev.sum) / (o.latencyCount - prev.count);
    else if (prev) latency = undefined;
    state.lastLatency = { sum: o.latencySum, count: o.latencyCount };
  }
  state.samples.push({ t: now, latency, rate });
  while (state.samples.length && now - state.samples[0].t > WINDOW_MS) state.samples.shift();
  drawCharts();
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function drawChart(canvas, key, format) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, canvas.clientWidth);
  const h = Math.max(50, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pts = state.samples.filter((s) => num(s[key]) !== undefined);
  const max = Math.max(1e-9, ...pts.map((s) => s[key]));
  const top = max * 1.15;
  const pad = { l: 6, r: 6, t: 16, b: 6 };
  const now = Date.now();
  // Until the window fills, the samples so far span the width (at least 30 s).
  const first = state.samples.length ? state.samples[0].t : now;
  const span = Math.min(WINDOW_MS, Math.max(30000, now - first));
  const x = (t) => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / span);
  const y = (v) => h - pad.b - (h - pad.t - pad.b) * (v / top);
  g.strokeStyle = cssVar('--border');
  g.lineWidth = 1;
  for (let i = 1; i <= 3; i += 1) {
    const yy = pad.t + ((h - pad.t - pad.b) * i) / 4;
    g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(w - pad.r, yy); g.stroke();
  }
  g.fillStyle = cssVar('--muted');
  g.font = '11px system-ui, sans-serif';
  g.fillText(`max ${pts.length ? format(max) : DASH}`, pad.l + 2, 12);
  if (pts.length < 2) return;
  g.strokeStyle = cssVar('--accent');
  g.lineWidth = 2;
  g.beginPath();
  pts.forEach((s, i) => (i ? g.lineTo(x(s.t), y(s[key])) : g.moveTo(x(s.t), y(s[key]))));
  g.stroke();
}

function drawCharts() {
  drawChart($('chart-latency'), 'latency', fmtMs);
  drawChart($('chart-rate'), 'rate', (v) => `${v.toFixed(2)}/s`);
  const last = state.samples[state.samples.length - 1] || {};
  $('chart-latency-now').textContent = last.latency !== undefined ? `now ${fmtMs(last.latency)}` : '';
  $('chart-rate-now').textContent = last.rate !== undefined ? `now ${last.rate.toFixed(2)}/s` : '';
  $('chart-span').textContent = `${Math.round(WINDOW_MS / 60000)} minutes, a point every ${SAMPLE_MS / 1000} s`;
}

// ---- live updates -------------------------------------------------------------

function setMode(text, kind) {
  const badge = $('live-mode');
  badge.textContent = text;
  badge.className = `badge ${kind || ''}`.trim();
  badge.dataset.mode = text.split(' ')[0];
}

function schedulePoll() {
  clearTimeout(pollTimer);
  if (!$('live-toggle').checked) return;
  const delay = sseOpen ? SSE_SIDE_POLL_MS : POLL_MS;
  pollTimer = setTimeout(async () => {
    await refresh({ includeNodes: !sseOpen });
    schedulePoll();
  }, delay);
}

function parseEvent(ev) {
  try { return JSON.parse(ev.data); } catch { return undefined; }
}

function openStream() {
  if (source || typeof EventSource === 'undefined') return;
  if (state.missing.has('/api/v3/events') && Date.now() - state.missing.get('/api/v3/events') < MISSING_RETRY_MS) return;
  source = new EventSource('/api/v3/events');
  source.addEventListener('open', () => {
    sseOpen = true;
    setMode('live (server events)', 'ok');
    schedulePoll();
  });
  source.addEventListener('nodes', (ev) => {
    const data = parseEvent(ev);
    if (data === undefined) return;
    applyNodes(listOf(data, 'nodes'));
    state.updatedAt = Date.now();
    render();
  });
  source.addEventListener('announcements', (ev) => {
    const data = parseEvent(ev);
    if (data !== undefined) { state.announcements = listOf(data, 'announcements'); renderAnnouncements(); }
  });
  source.addEventListener('metrics', (ev) => {
    const data = parseEvent(ev);
    if (data && typeof data === 'object') { state.metrics = data; renderCards(); }
  });
  source.addEventListener('endpoints', (ev) => {
    const data = parseEvent(ev);
    if (data !== undefined) { state.endpoints = listOf(data, 'endpoints'); renderEndpoints(); }
  });
  source.addEventListener('error', () => {
    const closed = !source || source.readyState === EventSource.CLOSED;
    sseOpen = false;
    if (closed) {
      // The gateway refused the stream (no such endpoint, or not an event
      // stream): poll, and try the stream again a minute later.
      if (source) source.close();
      source = null;
      state.missing.set('/api/v3/events', Date.now());
    }
    setMode(`polling every ${POLL_MS / 1000} s`, 'info');
    refresh();
    schedulePoll();
  });
}

function closeStream() {
  if (source) source.close();
  source = null;
  sseOpen = false;
}

function start() {
  openStream();
  if (!sseOpen) setMode(source ? 'connecting' : `polling every ${POLL_MS / 1000} s`, 'info');
  refresh({ all: true });
  schedulePoll();
  clearInterval(sampleTimer);
  sampleTimer = setInterval(() => {
    if (!source && $('live-toggle').checked) openStream();
    sample();
  }, SAMPLE_MS);
}

function stop() {
  closeStream();
  clearTimeout(pollTimer);
  clearInterval(sampleTimer);
  setMode('paused', '');
}

function init() {
  markNav();
  $('live-toggle').addEventListener('change', (ev) => (ev.target.checked ? start() : stop()));
  $('refresh-now').addEventListener('click', () => refresh({ all: true }));
  window.addEventListener('resize', drawCharts);
  render();
  drawCharts();
  start();
}

init();
