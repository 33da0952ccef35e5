// /admin: login, node actions, live settings, log tail and announcements.
//
// API: POST /admin/api/login {username,password} (session cookie),
// GET /admin/api/me, POST /admin/api/logout, GET /admin/api/nodes,
// POST /admin/api/nodes/{id}/{start|stop|restart|activate|standby},
// GET|PUT /admin/api/config, GET /admin/api/logs + SSE /admin/api/logs/stream,
// GET|POST|DELETE /admin/api/announcements[/{id}], GET /admin/api/models,
// POST /admin/api/models/fetch {name}, GET /admin/api/models/fetch/{id}.
//
// Invariants: nothing but the login form is shown until the server confirms
// a session; any 401 from any call ends the session view and returns to the
// login form; destructive actions (stop, standby, restart) run only after an
// explicit confirmation; every state-changing call sends the CSRF header
// (done by `api()`); a 422 naming a field is shown beside that field.

import {
  $, el, replace, pick, num, show, fmtTime, fmtSeconds, api, errorText, listOf, say,
  stateBadge, modelLabel, markNav, DASH,
} from './common.js';

const NODE_POLL_MS = 3000;
const LOG_POLL_MS = 3000;
const LOG_KEEP = 500;
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
const ACTIONS = [
  { action: 'activate', label: 'Activate', confirm: null },
  { action: 'standby', label: 'Standby', confirm: 'puts it on standby: its model is unloaded and it stops taking requests' },
  { action: 'stop', label: 'Stop', confirm: 'stops it: it finishes what it is doing and takes no new work' },
  { action: 'start', label: 'Start', confirm: null },
  { action: 'restart', label: 'Restart', confirm: 'restarts it: its engine reloads and requests in flight may fail' },
];
const SETTINGS = ['limiter.global_rpm', 'limiter.ip_rpm', 'limiter.concurrent_limit', 'default_engine', 'balance_policy',
  'log_level', 'announcements.type', 'announcements.ttl_seconds'];
const INTEGER_SETTINGS = new Set(['limiter.global_rpm', 'limiter.ip_rpm', 'limiter.concurrent_limit', 'announcements.ttl_seconds']);
// Empty means "none" (null): the gateway then uses the first engine with a ready node.
const NULLABLE_SETTINGS = new Set(['default_engine']);

let signedIn = false;
let lastSeq = -1; // highest log sequence number shown (records carry `seq`)
let nodeTimer = 0;
let logTimer = 0;
let logSource = null;
const nodeRows = new Map(); // id -> { tr, cells, buttons }
const busyNodes = new Set();

// ---- session ------------------------------------------------------------------

/** Runs an admin call; a 401 ends the session. */
async function call(method, url, opts) {
  const res = await api(method, url, opts);
  if (res.status === 401 && signedIn) sessionEnded('Your session has ended. Sign in again.');
  return res;
}

function showLogin(message = '') {
  signedIn = false;
  stopLive();
  $('app-view').classList.add('hidden');
  $('session-tools').classList.add('hidden');
  $('login-view').classList.remove('hidden');
  say($('login-error'), message, message ? 'err' : '');
  $('login-password').value = '';
  (message ? $('login-password') : $('login-username')).focus();
}

function sessionEnded(message) {
  showLogin(message);
}

function showApp(username) {
  signedIn = true;
  $('whoami').textContent = show(username);
  $('login-view').classList.add('hidden');
  $('app-view').classList.remove('hidden');
  $('session-tools').classList.remove('hidden');
  nodeRows.clear();
  loadNodes();
  loadSettings();
  loadAnnouncements();
  startLogs();
}

async function checkSession() {
  try {
    const res = await api('GET', '/admin/api/me');
    if (res.ok) return showApp(pick(res.body, 'username', 'user', 'name'));
    if (res.status === 404) return showLogin('This gateway has no admin API.');
    return showLogin('');
  } catch (e) {
    return showLogin(`The gateway does not answer: ${e.message}`);
  }
}

async function login(ev) {
  ev.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!username || !password) {
    say($('login-error'), 'Enter a user name and a password.', 'err');
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  say($('login-error'), '');
  try {
    const res = await api('POST', '/admin/api/login', { json: { username, password } });
    if (res.ok) {
      const me = await api('GET', '/admin/api/me');
      if (me.ok) showApp(pick(me.body, 'username', 'user', 'name') ?? username);
      else showLogin(`Signed in, but the session was not kept: ${errorText(me)}`);
    } else if (res.status === 401) {
      showLogin('Wrong user name or password.');
    } else if (res.status === 429) {
      const wait = res.headers.get('retry-after');
      showLogin(`Too many attempts. Try again${wait ? ` in ${wait} s` : ' later'}.`);
    } else {
      showLogin(`Sign-in failed: ${errorText(res)}`);
    }
  } catch (e) {
    showLogin(`The gateway does not answer: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try { await api('POST', '/admin/api/logout'); } catch { /* the view ends either way */ }
  showLogin('');
  say($('login-error'), 'Signed out.', 'ok');
}

function stopLive() {
  clearTimeout(fetchTimer);
  clearTimeout(nodeTimer);
  clearTimeout(logTimer);
  if (logSource) logSource.close();
  logSource = null;
}

// ---- nodes --------------------------------------------------------------------

function canAct(node, action) {
  const s = String(pick(node, 'state') || '').toLowerCase();
  if (s === 'offline') return false;
  if (s === 'stopped') return action === 'start' || action === 'restart';
  if (action === 'start') return false;
  if (action === 'activate') return s !== 'ready' && s !== 'busy' && s !== 'loading';
  if (action === 'standby') return s !== 'standby';
  return true;
}

function heartbeat(n) {
  const s = num(pick(n, 'last_seen_seconds', 'last_heartbeat_seconds'));
  if (s !== undefined) return `${fmtSeconds(s)} ago`;
  const t = pick(n, 'last_heartbeat', 'last_seen');
  return t !== undefined ? fmtTime(t) : DASH;
}

function buildRow(id) {
  const cells = {
    node: el('td', { 'data-label': 'Node' }),
    address: el('td', { 'data-label': 'Address', class: 'mono' }),
    state: el('td', { 'data-label': 'State', dataset: { field: 'state' } }),
    model: el('td', { 'data-label': 'Model', dataset: { field: 'model' } }),
    heartbeat: el('td', { 'data-label': 'Last heartbeat', class: 'small' }),
  };
  const buttons = {};
  const actions = el('div', { class: 'actions' });
  for (const a of ACTIONS) {
    buttons[a.action] = el('button', {
      type: 'button',
      class: `small${a.confirm ? ' danger' : ''}`,
      text: a.label,
      dataset: { action: a.action, nodeId: id },
      'aria-label': `${a.label} ${id}`,
      on: { click: () => nodeAction(id, a) },
    });
    actions.appendChild(buttons[a.action]);
  }
  const tr = el('tr', { dataset: { nodeId: id } }, cells.node, cells.address, cells.state, cells.model, cells.heartbeat, el('td', { 'data-label': 'Actions' }, actions));
  return { tr, cells, buttons };
}

function renderNodes(list) {
  const body = $('node-rows');
  if (!list.length) {
    nodeRows.clear();
    replace(body, el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No nodes are registered.' })));
    return;
  }
  const ids = list.map((n) => String(n.id));
  for (const id of [...nodeRows.keys()]) if (!ids.includes(id)) { nodeRows.get(id).tr.remove(); nodeRows.delete(id); }
  if (!nodeRows.size) body.replaceChildren();
  list.forEach((n, i) => {
    const id = String(n.id);
    let row = nodeRows.get(id);
    if (!row) { row = buildRow(id); nodeRows.set(id, row); }
    // Update in place so a focused button keeps focus across refreshes.
    if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    const where = [show(n.engine)];
    if (n.local) where.push('in-process');
    if (n.supervised) where.push(`supervised as ${n.supervised}`);
    replace(row.cells.node, el('span', { class: 'mono', text: id }), el('br'), el('span', { class: 'muted small', text: where.join(' \u00b7 ') }));
    row.cells.address.textContent = show(pick(n, 'endpoint', 'address', 'url'));
    replace(row.cells.state, stateBadge(pick(n, 'state')),
      pick(n, 'error', 'reason') ? el('div', { class: 'small muted', text: String(pick(n, 'error', 'reason')) }) : null);
    row.cells.model.textContent = modelLabel(n);
    row.cells.heartbeat.textContent = heartbeat(n);
    for (const a of ACTIONS) row.buttons[a.action].disabled = busyNodes.has(id) || !canAct(n, a.action);
  });
}

async function loadNodes() {
  clearTimeout(nodeTimer);
  if (!signedIn) return;
  try {
    const res = await call('GET', '/admin/api/nodes');
    if (!signedIn) return;
    if (res.ok) renderNodes(listOf(res.body, 'nodes'));
    else if (res.status !== 401) say($('node-result'), `Could not read the nodes: ${errorText(res)}`, 'err');
  } catch (e) {
    say($('node-result'), `The gateway does not answer: ${e.message}`, 'err');
  }
  if (signedIn) nodeTimer = setTimeout(loadNodes, NODE_POLL_MS);
}

function confirmAction(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = () => { dialog.removeEventListener('close', done); resolve(dialog.returnValue === 'ok'); };
    dialog.returnValue = 'cancel';
    dialog.addEventListener('close', done);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

async function nodeAction(id, a) {
  if (a.confirm && !(await confirmAction(`${a.label} node ${id}? This ${a.confirm}.`))) {
    say($('node-result'), `${a.label} on ${id}: cancelled.`);
    return;
  }
  busyNodes.add(id);
  const row = nodeRows.get(id);
  if (row) Object.values(row.buttons).forEach((b) => { b.disabled = true; });
  say($('node-result'), `${a.label} on ${id}\u2026`);
  try {
    const res = await call('POST', `/admin/api/nodes/${encodeURIComponent(id)}/${a.action}`);
    if (res.ok) {
      const st = pick(res.body, 'node.state', 'state');
      say($('node-result'), `${a.label} on ${id}: done${st ? ` (state ${st})` : ''}.`, 'ok');
    } else if (res.status !== 401) {
      say($('node-result'), `${a.label} on ${id} failed: ${errorText(res)}`, 'err');
    }
  } catch (e) {
    say($('node-result'), `${a.label} on ${id} failed: ${e.message}`, 'err');
  } finally {
    busyNodes.delete(id);
    loadNodes();
  }
}

// ---- settings -----------------------------------------------------------------

function settingInput(path) {
  return $('settings-form').querySelector(`[name="${path}"]`);
}

function clearFieldErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

function fieldError(form, path, message) {
  const p = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
  const input = form.querySelector(`[name="${CSS.escape(path)}"]`);
  if (!p || !input) return false;
  p.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  return true;
}

/** Reads a setting from the config body: nested (`limiter.ip_rpm`) or flat keys, and the file's own names. */
function configValue(cfg, path) {
  const aliases = {
    balance_policy: ['balance_policy', 'registry.policy', 'policy'],
    log_level: ['log_level', 'logging.level'],
  };
  return pick(cfg, ...(aliases[path] || [path]));
}

function setEngineOptions(engines, current) {
  const select = settingInput('default_engine');
  const names = engines.map((e) => String(pick(e, 'engine', 'name'))).filter((n) => n && n !== 'undefined');
  if (current && !names.includes(current)) names.push(current);
  replace(select, el('option', { value: '', text: '(the first engine with a ready node)' }),
    names.map((n) => el('option', { value: n, text: n })));
  select.value = current || '';
}

async function loadSettings() {
  const form = $('settings-form');
  clearFieldErrors(form);
  try {
    const [cfg, engines] = await Promise.all([call('GET', '/admin/api/config'), api('GET', '/api/v3/engines')]);
    if (!signedIn) return;
    if (!cfg.ok) {
      if (cfg.status !== 401) say($('settings-result'), `Could not read the settings: ${errorText(cfg)}`, 'err');
      return;
    }
    const body = cfg.body && typeof cfg.body === 'object' ? (cfg.body.config || cfg.body) : {};
    setEngineOptions(engines.ok ? listOf(engines.body, 'engines') : [], configValue(body, 'default_engine'));
    for (const path of SETTINGS) {
      if (path === 'default_engine') continue;
      const v = configValue(body, path);
      const input = settingInput(path);
      // Settings this gateway does not have are not offered (nor sent).
      if (input.dataset.optional) input.closest('.field').classList.toggle('hidden', v === undefined);
      input.disabled = v === undefined && Boolean(input.dataset.optional);
      if (v === undefined) continue;
      if (input.tagName === 'SELECT') {
        const value = path === 'log_level' ? String(v).toUpperCase() : String(v);
        if (![...input.options].some((o) => o.value === value)) input.appendChild(el('option', { value, text: value }));
        input.value = value;
      } else {
        input.value = String(v);
      }
    }
    say($('settings-result'), '');
  } catch (e) {
    say($('settings-result'), `The gateway does not answer: ${e.message}`, 'err');
  }
}

async function saveSettings(ev) {
  ev.preventDefault();
  const form = $('settings-form');
  clearFieldErrors(form);
  const body = {};
  for (const path of SETTINGS) {
    const input = settingInput(path);
    if (input.disabled) continue;
    const raw = input.value.trim();
    let value = raw;
    if (raw === '') {
      if (!NULLABLE_SETTINGS.has(path)) { fieldError(form, path, 'Enter a value.'); return; }
      value = null;
    } else if (INTEGER_SETTINGS.has(path)) {
      value = Number(raw);
      if (!Number.isInteger(value)) { fieldError(form, path, 'Enter a whole number.'); return; }
    }
    const [head, tail] = path.split('.');
    if (tail) { body[head] = body[head] || {}; body[head][tail] = value; } else body[head] = value;
  }
  const button = $('settings-save');
  button.disabled = true;
  say($('settings-result'), 'Saving\u2026');
  try {
    const res = await call('PUT', '/admin/api/config', { json: body });
    if (res.ok) {
      say($('settings-result'), 'Settings saved and applied.', 'ok');
    } else if (res.status !== 401) {
      const err = pick(res.body, 'error') || {};
      const field = err.field ? String(err.field) : '';
      const shown = field && fieldError(form, field, String(err.message || 'invalid value'));
      say($('settings-result'), shown ? `Not saved: check ${field}.` : `Not saved: ${errorText(res)}`, 'err');
    }
  } catch (e) {
    say($('settings-result'), `Not saved: ${e.message}`, 'err');
  } finally {
    button.disabled = false;
  }
}

// ---- logs ---------------------------------------------------------------------

function logFilters() {
  return { category: $('log-category').value, level: $('log-level').value, q: $('log-q').value.trim() };
}

function levelRank(l) {
  let name = String(l || '').toUpperCase();
  if (name === 'WARN') name = 'WARNING';
  if (name === 'FATAL') name = 'CRITICAL';
  const i = LEVELS.indexOf(name);
  return i < 0 ? LEVELS.indexOf('INFO') : i;
}

function passes(rec) {
  const f = logFilters();
  if (f.category && String(pick(rec, 'category') || '') !== f.category) return false;
  if (f.level && levelRank(pick(rec, 'level')) < levelRank(f.level)) return false;
  if (f.q && !JSON.stringify(rec).toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

function logLine(rec) {
  const level = String(pick(rec, 'level') || 'INFO').toUpperCase();
  const parts = [];
  const m = pick(rec, 'method');
  const ep = pick(rec, 'endpoint', 'path');
  if (m || ep) parts.push(`${m || ''} ${ep || ''}`.trim());
  const sc = pick(rec, 'status_code', 'status');
  if (sc !== undefined) parts.push(String(sc));
  const d = num(pick(rec, 'duration_ms'));
  if (d !== undefined) parts.push(`${d.toFixed(d < 10 ? 1 : 0)} ms`);
  const rid = pick(rec, 'request_id');
  if (rid) parts.push(`req ${rid}`);
  return el('li', { dataset: { category: show(pick(rec, 'category')), level } },
    el('span', { class: 'muted', text: `${fmtTime(pick(rec, 'timestamp', 'time'))} ` }),
    el('span', { class: `lvl lvl-${level}`, text: level }),
    ` [${show(pick(rec, 'category'))}] `,
    el('span', { class: 'msg', text: show(pick(rec, 'message', 'msg')) }),
    parts.length ? el('span', { class: 'muted', text: ` \u00b7 ${parts.join(' \u00b7 ')}` }) : null);
}

function showLogs(records, { append = false } = {}) {
  const list = $('log-list');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  if (!append) { list.replaceChildren(); lastSeq = -1; }
  for (const r of records) {
    if (!r || typeof r !== 'object') continue;
    // The tail may repeat what the first read showed; `seq` tells.
    const seq = num(r.seq);
    if (seq !== undefined) {
      if (append && seq <= lastSeq) continue;
      lastSeq = Math.max(lastSeq, seq);
    }
    if (passes(r)) list.appendChild(logLine(r));
  }
  while (list.children.length > LOG_KEEP) list.firstChild.remove();
  if (atBottom || !append) list.scrollTop = list.scrollHeight;
}

function logQuery(extra = {}) {
  const q = new URLSearchParams();
  const f = logFilters();
  if (f.category) q.set('category', f.category);
  if (f.level) q.set('level', f.level);
  if (f.q) q.set('q', f.q);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q.toString();
}

function setLogMode(text, kind = '') {
  const b = $('log-mode');
  b.textContent = text;
  b.className = `badge ${kind}`.trim();
}

async function loadLogs() {
  try {
    const res = await call('GET', `/admin/api/logs?${logQuery({ limit: 200 })}`);
    if (!signedIn) return false;
    if (res.ok) {
      // Oldest first in the view; the API may answer newest first.
      const recs = listOf(res.body, 'records').length ? listOf(res.body, 'records') : listOf(res.body, 'logs');
      const key = (r) => (num(r.seq) !== undefined ? String(r.seq).padStart(20, '0') : String(pick(r, 'timestamp') || ''));
      const sorted = [...recs].sort((a, b) => key(a).localeCompare(key(b)));
      showLogs(sorted);
      return true;
    }
    if (res.status !== 401) setLogMode(`logs unavailable: HTTP ${res.status}`, 'err');
  } catch (e) {
    setLogMode('gateway unreachable', 'err');
  }
  return false;
}

function pollLogs() {
  clearTimeout(logTimer);
  if (!signedIn || !$('log-follow').checked) return;
  logTimer = setTimeout(async () => { await loadLogs(); pollLogs(); }, LOG_POLL_MS);
}

async function startLogs() {
  clearTimeout(logTimer);
  if (logSource) logSource.close();
  logSource = null;
  const ok = await loadLogs();
  if (!signedIn) return;
  if (!$('log-follow').checked) { setLogMode(ok ? 'paused' : $('log-mode').textContent); return; }
  if (typeof EventSource === 'undefined') { setLogMode(`polling every ${LOG_POLL_MS / 1000} s`, 'info'); pollLogs(); return; }
  const src = new EventSource(`/admin/api/logs/stream?${logQuery(lastSeq >= 0 ? { since: String(lastSeq) } : {})}`);
  logSource = src;
  const onRecord = (ev) => {
    try {
      const data = JSON.parse(ev.data);
      showLogs(Array.isArray(data) ? data : [data], { append: true });
    } catch { /* a keep-alive or a malformed line: nothing to show */ }
  };
  src.addEventListener('message', onRecord);
  src.addEventListener('log', onRecord);
  src.addEventListener('open', () => { if (logSource === src) { clearTimeout(logTimer); setLogMode('live tail', 'ok'); } });
  src.addEventListener('error', () => {
    if (logSource !== src) return;
    if (src.readyState === EventSource.CLOSED) {
      logSource = null;
      setLogMode(`polling every ${LOG_POLL_MS / 1000} s`, 'info');
      pollLogs();
    } else {
      setLogMode('reconnecting', 'warn');
    }
  });
}

// ---- announcements --------------------------------------------------------------

async function loadAnnouncements() {
  try {
    const res = await call('GET', '/admin/api/announcements');
    if (!signedIn) return;
    if (!res.ok) {
      if (res.status !== 401) say($('ann-result'), `Could not read the announcements: ${errorText(res)}`, 'err');
      return;
    }
    const items = listOf(res.body, 'announcements');
    if (!items.length) {
      replace($('ann-list'), el('li', { class: 'muted small', text: 'No announcements.' }));
      return;
    }
    replace($('ann-list'), items.map((a) => {
      const kind = String(pick(a, 'type', 'kind') || 'info').toLowerCase();
      const exp = pick(a, 'expires_at', 'expires');
      const id = pick(a, 'id');
      return el('li', { class: `notice ${['warning', 'error'].includes(kind) ? kind : 'info'}`, dataset: { announcementId: show(id) } },
        el('strong', { text: `[${kind}]` }),
        el('span', { class: 'grow', text: show(pick(a, 'message')) }),
        el('span', { class: 'when', text: exp ? `until ${fmtTime(exp)}` : 'no expiry' }),
        id !== undefined ? el('button', {
          type: 'button', class: 'small danger', text: 'Delete', 'aria-label': `Delete announcement: ${show(pick(a, 'message'))}`,
          on: { click: () => deleteAnnouncement(id) },
        }) : null);
    }));
  } catch (e) {
    say($('ann-result'), `The gateway does not answer: ${e.message}`, 'err');
  }
}

async function createAnnouncement(ev) {
  ev.preventDefault();
  const form = $('ann-form');
  clearFieldErrors(form);
  const message = $('ann-message').value.trim();
  if (!message) { fieldError(form, 'message', 'Write the message.'); return; }
  const body = { type: $('ann-type').value, message };
  const exp = $('ann-expires').value;
  if (exp) {
    const d = new Date(exp);
    if (Number.isNaN(d.getTime())) { fieldError(form, 'expires_at', 'Not a date and time.'); return; }
    body.expires_at = d.toISOString();
  }
  const res = await call('POST', '/admin/api/announcements', { json: body }).catch((e) => ({ ok: false, status: 0, body: e.message }));
  if (res.ok) {
    say($('ann-result'), 'Announcement published.', 'ok');
    $('ann-message').value = '';
    $('ann-expires').value = '';
    loadAnnouncements();
  } else if (res.status !== 401) {
    const field = pick(res.body, 'error.field');
    if (!(field && fieldError(form, String(field), String(pick(res.body, 'error.message') || 'invalid value')))) {
      say($('ann-result'), `Not published: ${errorText(res)}`, 'err');
    }
  }
}

async function deleteAnnouncement(id) {
  const res = await call('DELETE', `/admin/api/announcements/${encodeURIComponent(id)}`).catch((e) => ({ ok: false, status: 0, body: e.message }));
  if (res.ok) say($('ann-result'), 'Announcement deleted.', 'ok');
  else if (res.status !== 401) say($('ann-result'), `Not deleted: ${errorText(res)}`, 'err');
  loadAnnouncements();
}

// ---- models -----------------------------------------------------------------------
// Loaded when the section is opened; fetch jobs are polled while any runs.

const FETCH_POLL_MS = 1000;
let fetchTimer = 0;

function fmtBytes(n) {
  if (typeof n !== 'number') return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function jobLine(j) {
  const total = j.bytes_total;
  const pct = typeof total === 'number' && total > 0 ? ` ${Math.floor((100 * j.bytes_done) / total)}%` : '';
  let text;
  if (j.state === 'running') text = `${j.name}: fetching${pct} (${fmtBytes(j.bytes_done)} of ${fmtBytes(total)})`;
  else if (j.state === 'done') text = j.already_installed ? `${j.name}: already installed` : `${j.name}: installed in ${show(j.target)}`;
  else text = `${j.name}: failed — ${show(pick(j, 'error.message'))}`;
  const kind = j.state === 'failed' ? 'error' : (j.state === 'done' ? 'info' : 'warning');
  const li = el('li', { class: `notice ${kind}`, dataset: { jobId: show(j.id) } }, el('span', { class: 'grow', text }));
  if (j.state === 'running' && typeof total === 'number' && total > 0) {
    li.append(el('progress', { max: String(total), value: String(j.bytes_done), 'aria-label': `${j.name} progress` }));
  }
  return li;
}

function renderModels(body) {
  $('models-where').textContent = `Models folder: ${show(body.models_root)} · catalog: ${show(body.catalog)}`;
  const rows = (body.models || []).map((m) => el('tr', {},
    el('td', { text: m.name, title: show(m.description) }),
    el('td', { text: show(m.engine) }),
    el('td', { text: m.size != null ? fmtBytes(m.size) : DASH }),
    el('td', { class: 'small', text: show(m.licence) }),
    el('td', { text: m.installed ? 'installed' : 'not installed' }),
    el('td', {}, m.fetchable
      ? el('button', { type: 'button', class: 'small', text: m.installed ? 'Fetch again' : 'Fetch', on: { click: () => startFetch(m.name, m.installed) } })
      : el('span', { class: 'muted small', text: show(m.import) }))));
  replace($('model-rows'), rows.length ? rows : el('tr', {}, el('td', { colspan: '6', class: 'muted', text: 'The catalog is empty.' })));
  renderJobs(body.jobs || []);
}

function renderJobs(jobs) {
  replace($('fetch-jobs'), jobs.length ? jobs.slice().reverse().map(jobLine) : el('li', { class: 'muted small', text: 'No fetches yet.' }));
  clearTimeout(fetchTimer);
  if (signedIn && jobs.some((j) => j.state === 'running')) fetchTimer = setTimeout(loadModels, FETCH_POLL_MS);
}

async function loadModels() {
  if (!$('models-details').open) return;
  try {
    const res = await call('GET', '/admin/api/models');
    if (!signedIn) return;
    if (res.ok) renderModels(res.body);
    else if (res.status !== 401) say($('models-result'), `Could not read the models: ${errorText(res)}`, 'err');
  } catch (e) {
    say($('models-result'), `The gateway does not answer: ${e.message}`, 'err');
  }
}

async function startFetch(name, force = false) {
  const res = await call('POST', '/admin/api/models/fetch', { json: { name, force } }).catch((e) => ({ ok: false, status: 0, body: e.message }));
  if (res.ok) say($('models-result'), `Fetching ${name}…`, 'ok');
  else if (res.status !== 401) say($('models-result'), `Not started: ${errorText(res)}`, 'err');
  loadModels();
}

function fetchPiper(ev) {
  ev.preventDefault();
  const form = $('piper-form');
  clearFieldErrors(form);
  const name = $('piper-name').value.trim();
  if (!$('piper-name').checkValidity() || !name) { fieldError(form, 'name', 'Write a voice name such as de_DE-thorsten-medium.'); return; }
  startFetch(name);
}

// ---- wiring ---------------------------------------------------------------------

function init() {
  markNav();
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('nodes-reload').addEventListener('click', loadNodes);
  $('settings-form').addEventListener('submit', saveSettings);
  $('settings-reload').addEventListener('click', loadSettings);
  $('log-category').addEventListener('change', startLogs);
  $('log-level').addEventListener('change', startLogs);
  $('log-follow').addEventListener('change', startLogs);
  let searchTimer = 0;
  $('log-q').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(startLogs, 400); });
  $('log-clear').addEventListener('click', () => $('log-list').replaceChildren());
  $('ann-form').addEventListener('submit', createAnnouncement);
  $('models-details').addEventListener('toggle', loadModels);
  $('piper-form').addEventListener('submit', fetchPiper);
  checkSession();
}

init();
