// vctts pages: helpers shared by status.js, admin.js and playground.js.
//
// Invariants: DOM is built with createElement/textContent only (never from
// HTML strings), so text from the server (log lines, announcements, voice
// names) cannot inject markup; `api()` never throws on an HTTP error status,
// only on a network failure, and always reports the elapsed time; every
// state-changing call carries the CSRF header `X-Requested-With: vctts`.

/** The CSRF header the admin API expects on every state-changing call. */
export const CSRF_HEADER = ['X-Requested-With', 'vctts'];

/** Shown for a value the server did not report. */
export const DASH = '\u2014';

/**
 * Builds an element. `attrs`: `class`, `text`, `dataset` (object), `on`
 * (object of event handlers), booleans (set when true), anything else as an
 * attribute. Children: nodes, strings, or arrays of them; null is skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === 'value') node.value = value;
    else if (key === 'checked' || key === 'selected' || key === 'disabled' || key === 'required' || key === 'multiple') node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces the children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** `document.getElementById`, failing loudly when the page lacks the id. */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`page element #${id} is missing`);
  return node;
}

/** The first of `paths` (dotted) that is defined and not null in `obj`. */
export function pick(obj, ...paths) {
  for (const path of paths) {
    let v = obj;
    for (const key of path.split('.')) {
      if (v === null || v === undefined || typeof v !== 'object') { v = undefined; break; }
      v = v[key];
    }
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

/** A finite number from `v`, or undefined. */
export function num(v) {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** Text of a value, or the dash when missing. */
export function show(v) {
  if (v === undefined || v === null || v === '' || (typeof v === 'number' && !Number.isFinite(v))) return DASH;
  return String(v);
}

export function fmtInt(v) {
  const n = num(v);
  return n === undefined ? DASH : Math.round(n).toLocaleString('en-US');
}

export function fmtPct(v) {
  const n = num(v);
  return n === undefined ? DASH : `${n.toFixed(n < 10 ? 1 : 0)}%`;
}

export function fmtMs(v) {
  const n = num(v);
  if (n === undefined) return DASH;
  if (n >= 1000) return `${(n / 1000).toFixed(n >= 10000 ? 0 : 2)} s`;
  return `${n.toFixed(n < 10 ? 1 : 0)} ms`;
}

export function fmtBytes(v) {
  const n = num(v);
  if (n === undefined) return DASH;
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let x = n;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return `${x.toFixed(i === 0 || x >= 100 ? 0 : 1)} ${units[i]}`;
}

export function fmtSeconds(v) {
  const n = num(v);
  if (n === undefined) return DASH;
  if (n < 60) return `${n.toFixed(n < 10 ? 1 : 0)} s`;
  if (n < 3600) return `${Math.floor(n / 60)} min ${Math.round(n % 60)} s`;
  if (n < 86400) return `${Math.floor(n / 3600)} h ${Math.round((n % 3600) / 60)} min`;
  return `${Math.floor(n / 86400)} d ${Math.round((n % 86400) / 3600)} h`;
}

/** A timestamp (ISO string, or seconds / milliseconds since the epoch) as a Date. */
export function toDate(v) {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return new Date(v < 1e12 ? v * 1000 : v);
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function fmtTime(v) {
  const d = toDate(v);
  if (!d) return DASH;
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString('en-GB') : d.toLocaleString('en-GB');
}

/** Reads a response body as JSON when it says so, else as text. */
async function readBody(res) {
  const type = res.headers.get('content-type') || '';
  const text = await res.text();
  if (type.includes('json')) {
    try { return JSON.parse(text); } catch { return text; }
  }
  return text;
}

/**
 * One HTTP call. Options: `json` (body), `body` (FormData, Blob, string),
 * `headers`, `signal`, `raw` (return the Response unread). Resolves to
 * `{ok, status, statusText, headers, body, elapsed, response}`; rejects only
 * when the network fails (then `err.network` is true).
 */
export async function api(method, url, opts = {}) {
  const headers = new Headers(opts.headers || {});
  let body = opts.body;
  if (opts.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(opts.json);
  }
  if (method !== 'GET' && method !== 'HEAD') headers.set(CSRF_HEADER[0], CSRF_HEADER[1]);
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: opts.signal,
    });
  } catch (e) {
    const err = new Error(`${method} ${url}: ${e && e.message ? e.message : e}`);
    err.network = true;
    err.aborted = e && e.name === 'AbortError';
    throw err;
  }
  const result = {
    ok: response.ok,
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    response,
    firstByte: performance.now() - started,
  };
  if (opts.raw) return result;
  result.body = await readBody(response);
  result.elapsed = performance.now() - started;
  return result;
}

/** The message of an error body `{error:{code,message,field}}`, or a fallback. */
export function errorText(res) {
  const e = res && res.body && typeof res.body === 'object' ? res.body.error : undefined;
  if (e && typeof e === 'object') {
    const code = e.code ? ` (${e.code})` : '';
    return `${e.message || 'request failed'}${code}`;
  }
  if (res && typeof res.body === 'string' && res.body.trim()) return `${res.status} ${res.body.trim().slice(0, 200)}`;
  return res ? `HTTP ${res.status} ${res.statusText || ''}`.trim() : 'request failed';
}

/** A list from a body that is either the list itself or an object holding it under `key`. */
export function listOf(body, key) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === 'object' && Array.isArray(body[key])) return body[key];
  return [];
}

/** Copies text to the clipboard; falls back to a selected textarea. Resolves to true when copied. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection fallback (no permission, unfocused page)
  }
  const area = el('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', readonly: true });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  return ok;
}

/** Writes a message into a status line element (`kind`: 'ok', 'err' or ''). */
export function say(node, text, kind = '') {
  node.textContent = text;
  node.classList.remove('ok', 'err');
  if (kind) node.classList.add(kind);
}

/** State names and their badge style. */
const STATE_CLASS = {
  ready: 'ok',
  online: 'ok',
  ok: 'ok',
  busy: 'warn',
  loading: 'info',
  standby: 'info',
  stopped: 'warn',
  error: 'err',
  failed: 'err',
  offline: 'err',
};

/** A badge for a node or model state. */
export function stateBadge(state, extra = {}) {
  const s = state === undefined || state === null || state === '' ? DASH : String(state);
  const cls = STATE_CLASS[s.toLowerCase()] || '';
  return el('span', { class: `badge ${cls}`.trim(), text: s, ...extra });
}

/** Loaded / Unloaded / Loading / Failed from a node: its `model_state`, else `model_loaded`, else its state. */
export function modelLabel(node) {
  const m = pick(node, 'model_state', 'model.state', 'model');
  const raw = typeof m === 'string' ? m : (m && typeof m === 'object' ? m.state : undefined);
  const s = String(raw || '').toLowerCase();
  if (s === 'ready' || s === 'loaded') return 'Loaded';
  if (s === 'unloaded') return 'Unloaded';
  if (s === 'loading') return 'Loading';
  if (s === 'failed' || s.startsWith('failed')) return 'Failed';
  const st = String(pick(node, 'state') || '').toLowerCase();
  if (st === 'loading') return 'Loading';
  if (typeof node.model_loaded === 'boolean') return node.model_loaded ? 'Loaded' : 'Unloaded';
  if (st === 'ready' || st === 'busy') return 'Loaded';
  if (st === 'standby') return 'Unloaded';
  if (st === 'loading') return 'Loading';
  if (st === 'error') return 'Failed';
  return DASH;
}

/** Marks the nav link of the current page. */
export function markNav() {
  for (const a of document.querySelectorAll('.site-nav a')) {
    if (a.getAttribute('href') === location.pathname) a.setAttribute('aria-current', 'page');
  }
}
