// /playground: a form for every public endpoint, generated from the OpenAPI
// description the gateway serves (GET /api/v3/openapi.json), so a new
// endpoint appears here without touching this file.
//
// Every `/api/v3/*` and `/v1/*` operation gets an entry in the endpoint
// selector and a form built from its parameters and request body schema
// (JSON or multipart). Engine and voice fields are dropdowns filled from
// GET /api/v3/engines and GET /api/v3/voices (a custom voice id is allowed).
// The request is shown as cURL and as Python `requests` code that run as shown
// (uploads are read from the current directory under the chosen file's name);
// the response is shown with its status and timings, and audio gets a player
// and a download link. Streamed synthesis plays while it arrives (wav.js).
//
// An API key, when typed in, is sent as `Authorization: Bearer` (and shown
// in the code samples); it is kept in memory only, never stored.
//
// Invariants: the request sent, the cURL command and the Python code are all
// made from one description of the request, so they cannot disagree; fields
// left empty are omitted (the server applies its defaults); a field that
// cannot be sent (bad JSON, missing required value) is marked beside itself.

import { $, el, replace, pick, show, api, errorText, listOf, copyText, say, markNav } from './common.js';
import { playStream, playableBlob } from './wav.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const DEFAULT_OP = 'POST /api/v3/synthesize';
const CUSTOM = '__custom__';
const OPENAI_MODELS = ['tts-1', 'tts-1-hd', 'gpt-4o-mini-tts'];
const FIELD_ORDER = ['text', 'input', 'items', 'audio', 'name', 'voice_id', 'model', 'engine', 'engines', 'voice',
  'language', 'transcript', 'speed', 'format', 'response_format', 'seed', 'sampling'];
const ENUM_HINTS = {
  format: ['wav', 'wav_f32', 'pcm'],
  response_format: ['wav', 'pcm'],
  response: ['wav', 'json'],
  stream_format: ['audio'],
};
const PATH_ENUM_HINTS = { 'POST /api/v3/synthesize/batch': { format: ['json', 'zip'] } };
const EXAMPLES = {
  text: 'Hello from the vctts playground.',
  input: 'Hello from the vctts playground.',
  name: 'playground-voice',
  items: '[\n  {"text": "The first sentence of the batch."},\n  {"text": "And the second one."}\n]',
};

let spec = null;
let ops = [];
let engines = [];
let voices = [];
let current = null; // the selected operation
let fields = []; // descriptors of the current form
let controller = null;
let audioUrl = '';
let streamCtx = null; // the AudioContext of the last streamed response

// ---- OpenAPI ------------------------------------------------------------------

function resolveRef(ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return {};
  let v = spec;
  for (const part of ref.slice(2).split('/')) v = v && v[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v && typeof v === 'object' ? v : {};
}

/** A schema with $ref, allOf, nullable unions and type arrays resolved. */
function norm(schema, depth = 0) {
  if (!schema || typeof schema !== 'object' || depth > 10) return {};
  let s = schema;
  if (s.$ref) {
    const { $ref, ...rest } = s;
    s = { ...norm(resolveRef($ref), depth + 1), ...rest };
  }
  if (Array.isArray(s.allOf)) {
    const merged = { type: 'object', properties: {}, required: [] };
    for (const part of s.allOf.map((p) => norm(p, depth + 1))) {
      Object.assign(merged.properties, part.properties || {});
      merged.required.push(...(part.required || []));
      if (part.type && part.type !== 'object') merged.type = part.type;
    }
    const { allOf, ...rest } = s;
    s = { ...merged, ...rest, properties: { ...merged.properties, ...(rest.properties || {}) } };
  }
  for (const key of ['oneOf', 'anyOf']) {
    if (!Array.isArray(s[key])) continue;
    const alts = s[key].filter((a) => !(a && (a.type === 'null' || (Array.isArray(a.type) && a.type.length === 1 && a.type[0] === 'null'))));
    const { [key]: _, ...rest } = s;
    if (alts.length === 1) s = { ...norm(alts[0], depth + 1), ...rest, nullable: true };
    else if (alts.length > 1) s = { ...rest, type: 'json', alternatives: alts.length };
  }
  if (Array.isArray(s.type)) {
    const types = s.type.filter((t) => t !== 'null');
    s = { ...s, type: types.length === 1 ? types[0] : 'json', nullable: s.type.includes('null') };
  }
  if (!s.type && s.properties) s = { ...s, type: 'object' };
  return s;
}

function collectOps() {
  const out = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    if (!(path.startsWith('/api/v3') || path.startsWith('/v1/'))) continue;
    for (const m of METHODS) {
      const op = item && item[m];
      if (!op) continue;
      const params = [...(item.parameters || []), ...(op.parameters || [])].map((p) => (p.$ref ? resolveRef(p.$ref) : p));
      const ok = op.responses ? (op.responses['200'] || op.responses['201'] || op.responses['2XX'] || {}) : {};
      const okResp = ok.$ref ? resolveRef(ok.$ref) : ok;
      const produces = Object.keys(okResp.content || {});
      const rb = op.requestBody ? (op.requestBody.$ref ? resolveRef(op.requestBody.$ref) : op.requestBody) : null;
      let body = null;
      if (rb && rb.content) {
        const types = Object.keys(rb.content);
        const json = types.find((t) => t.includes('json'));
        const multipart = types.find((t) => t.startsWith('multipart/') || t === 'application/x-www-form-urlencoded');
        const type = json || multipart || types[0];
        body = { contentType: type, kind: json ? 'json' : (multipart ? 'form' : 'raw'), schema: norm(rb.content[type].schema || {}), required: rb.required !== false };
      }
      out.push({
        key: `${m.toUpperCase()} ${path}`,
        method: m.toUpperCase(),
        path,
        summary: op.summary || '',
        description: op.description || '',
        tag: (op.tags && op.tags[0]) || (path.startsWith('/v1/') ? 'openai' : 'api'),
        params,
        body,
        produces,
      });
    }
  }
  return out;
}

// ---- form fields ----------------------------------------------------------------

/** Description text without Markdown code ticks (utoipa keeps them from doc comments). */
function plain(text) {
  return String(text || '').replace(/`([^`]*)`/g, '$1');
}

function fieldId(where, path) {
  return `f-${where}-${path.replace(/[^A-Za-z0-9_]/g, '-')}`;
}

function orderOf(name) {
  const i = FIELD_ORDER.indexOf(name);
  return i < 0 ? FIELD_ORDER.length : i;
}

function enumFor(name, schema) {
  if (Array.isArray(schema.enum)) return schema.enum.filter((v) => v !== null).map(String);
  const byPath = PATH_ENUM_HINTS[current.key];
  if (byPath && byPath[name]) return byPath[name];
  if (schema.type === 'string' && ENUM_HINTS[name]) return ENUM_HINTS[name];
  return null;
}

/** Field descriptors for an object schema's properties. */
function describeObject(where, schema, prefix = '') {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  return Object.keys(props)
    .sort((a, b) => (required.has(b) - required.has(a)) || (orderOf(a) - orderOf(b)) || a.localeCompare(b))
    .map((name) => describe(where, `${prefix}${name}`, name, norm(props[name]), required.has(name)));
}

function describe(where, path, name, schema, required) {
  const d = { where, path, name, schema, required, id: fieldId(where, path), description: plain(schema.description) };
  const isVoicesPath = current.path.startsWith('/api/v3/voices/');
  const binary = schema.format === 'binary' || Boolean(schema.contentMediaType) || (schema.contentEncoding === 'base64' && where === 'form');
  if (schema.type === 'string' && binary) d.kind = 'file';
  else if (where === 'path' && name === 'id' && isVoicesPath) d.kind = 'voice';
  else if ((name === 'voice') && schema.type === 'string') d.kind = 'voice';
  else if (name === 'engine' && schema.type === 'string') d.kind = 'engine';
  else if (name === 'model' && current.path.startsWith('/v1/')) d.kind = 'model';
  else if (schema.type === 'object' && schema.properties && Object.keys(schema.properties).length) {
    d.kind = 'object';
    d.children = describeObject(where, schema, `${path}.`);
  } else if (enumFor(name, schema)) {
    d.kind = 'enum';
    d.options = enumFor(name, schema);
  } else if (schema.type === 'boolean') d.kind = 'boolean';
  else if (schema.type === 'integer' || schema.type === 'number') d.kind = schema.type;
  else if (schema.type === 'string') d.kind = (name === 'text' || name === 'input' || name === 'transcript') ? 'textarea' : 'string';
  else d.kind = 'json';
  return d;
}

function voiceOptions(d) {
  const speech = current.path.startsWith('/v1/');
  const opts = [];
  if (speech) opts.push(el('option', { value: 'alloy', text: "alloy (an OpenAI name, mapped to a vctts voice)" }));
  else if (!d.required) opts.push(el('option', { value: '', text: "(the engine's default voice)" }));
  if (voices.length) {
    opts.push(el('optgroup', { label: 'Stored voices' },
      voices.map((v) => el('option', { value: String(v.id), text: v.name && v.name !== v.id ? `${v.name} (${v.id})` : String(v.id) }))));
  }
  for (const e of engines) {
    const builtin = (e.builtin_voices || []).filter(Boolean);
    if (builtin.length) opts.push(el('optgroup', { label: `Built-in: ${e.engine}` }, builtin.map((b) => el('option', { value: String(b), text: String(b) }))));
  }
  opts.push(el('option', { value: CUSTOM, text: 'Custom voice id\u2026' }));
  return opts;
}

function engineOptions(d) {
  const opts = d.required ? [] : [el('option', { value: '', text: '(the default engine)' })];
  for (const e of engines) {
    const name = String(pick(e, 'engine', 'name'));
    const note = e.available === false ? ' (no ready node)' : (e.default ? ' (default)' : '');
    opts.push(el('option', { value: name, text: `${name}${note}` }));
  }
  return opts;
}

function control(d) {
  const common = { id: d.id, name: `${d.where}.${d.path}`, dataset: { kind: d.kind }, 'aria-describedby': `${d.id}-err ${d.id}-hint` };
  const example = d.schema.example ?? d.schema.default;
  switch (d.kind) {
    case 'file':
      return el('input', { ...common, type: 'file', accept: 'audio/*,.wav,.mp3,.flac,.ogg' });
    case 'voice': {
      const select = el('select', common, voiceOptions(d));
      const custom = el('input', {
        type: 'text', id: `${d.id}-custom`, class: 'hidden', placeholder: 'voice id', 'aria-label': `${d.name}: custom voice id`,
      });
      select.addEventListener('change', () => custom.classList.toggle('hidden', select.value !== CUSTOM));
      return [select, custom];
    }
    case 'engine':
      return el('select', common, engineOptions(d));
    case 'model': {
      const names = [...OPENAI_MODELS, ...engines.map((e) => String(e.engine))];
      return el('select', common, names.map((n) => el('option', { value: n, text: n })));
    }
    case 'enum':
      return el('select', common, [d.required ? null : el('option', { value: '', text: '(default)' }), d.options.map((o) => el('option', { value: o, text: o }))]);
    case 'boolean':
      return el('select', common, [el('option', { value: '', text: '(default)' }), el('option', { value: 'true', text: 'true' }), el('option', { value: 'false', text: 'false' })]);
    case 'integer':
    case 'number': {
      const attrs = { ...common, type: 'number', step: d.kind === 'integer' ? '1' : 'any' };
      if (d.schema.minimum !== undefined) attrs.min = d.schema.minimum;
      if (d.schema.maximum !== undefined) attrs.max = d.schema.maximum;
      return el('input', attrs);
    }
    case 'textarea':
      return el('textarea', { ...common, class: 'prose', rows: 3, value: d.required ? (EXAMPLES[d.name] ?? example ?? '') : '' });
    case 'json': {
      const value = EXAMPLES[d.name] ?? (example !== undefined ? JSON.stringify(example, null, 2) : '');
      return el('textarea', { ...common, rows: 5, spellcheck: 'false', value: d.required ? value : '', placeholder: 'JSON' });
    }
    default: {
      const attrs = { ...common, type: 'text', value: d.required ? (EXAMPLES[d.name] ?? (example !== undefined ? String(example) : '')) : '' };
      if (d.name === 'language') attrs.list = 'languages';
      return el('input', attrs);
    }
  }
}

function renderField(d) {
  if (d.kind === 'object') {
    return el('details', { open: d.required },
      el('summary', { text: `${d.name}${d.required ? ' *' : ' (optional)'}` }),
      el('fieldset', {}, el('legend', { class: 'visually-hidden', text: d.name }),
        d.description ? el('p', { class: 'hint', text: d.description }) : null,
        el('div', { class: 'form-grid' }, d.children.map(renderField))));
  }
  return el('div', { class: 'field', dataset: { field: `${d.where}.${d.path}` } },
    el('label', { for: d.id }, d.name, d.required ? el('span', { 'aria-hidden': 'true', text: ' *' }) : null,
      d.required ? el('span', { class: 'visually-hidden', text: ' (required)' }) : null,
      d.where !== 'body' && d.where !== 'form' ? el('span', { class: 'hint', text: ` (${d.where})` }) : null),
    control(d),
    d.description ? el('span', { class: 'hint', id: `${d.id}-hint`, text: d.description }) : null,
    el('p', { class: 'field-error', id: `${d.id}-err` }));
}

function renderForm() {
  const form = $('op-form');
  form.dataset.op = current.key;
  fields = [];
  for (const p of current.params) {
    if (p.in !== 'path' && p.in !== 'query') continue;
    const schema = norm(p.schema || {});
    if (!schema.description && p.description) schema.description = p.description;
    fields.push(describe(p.in, p.name, p.name, schema, Boolean(p.required || p.in === 'path')));
  }
  if (current.body) {
    const where = current.body.kind === 'json' ? 'body' : (current.body.kind === 'form' ? 'form' : 'raw');
    if (current.body.kind === 'raw') {
      fields.push({ where, path: 'file', name: 'file', kind: 'file', schema: {}, required: true, id: fieldId(where, 'file'), description: `sent as ${current.body.contentType}` });
    } else if (current.body.schema.type === 'object' && current.body.schema.properties) {
      fields.push(...describeObject(where, current.body.schema));
    } else {
      fields.push(describe(where, '', 'body', { ...current.body.schema, type: 'json' }, current.body.required));
    }
  }
  const langs = [...new Set(engines.flatMap((e) => e.languages || []))];
  replace(form,
    el('datalist', { id: 'languages' }, langs.map((l) => el('option', { value: l }))),
    fields.length ? fields.map(renderField) : el('p', { class: 'muted', text: 'This endpoint takes no parameters.' }));
  $('op-summary').textContent = [current.summary, current.description].filter(Boolean).map(plain).join(' \u2014 ');
  updateCode();
}

// ---- reading the form -----------------------------------------------------------

function flat(list) {
  return list.flatMap((d) => (d.kind === 'object' ? flat(d.children) : [d]));
}

function setAt(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  keys.slice(0, -1).forEach((k) => { o = o[k] = o[k] && typeof o[k] === 'object' ? o[k] : {}; });
  o[keys[keys.length - 1]] = value;
}

/** The request the form describes: `{method, url, path, query, json, form, files, errors}`. */
function buildRequest() {
  const errors = [];
  let path = current.path;
  const query = new URLSearchParams();
  let json;
  const form = [];
  const files = [];
  let raw = null;
  for (const d of flat(fields)) {
    const node = document.getElementById(d.id);
    if (!node) continue;
    let value;
    if (d.kind === 'file') {
      const file = node.files && node.files[0];
      if (!file) { if (d.required) errors.push([d, 'Choose a file.']); continue; }
      if (d.where === 'raw') raw = file;
      else files.push({ name: d.path, file });
      continue;
    }
    if (d.kind === 'voice' && node.value === CUSTOM) value = document.getElementById(`${d.id}-custom`).value.trim();
    else value = node.value.trim ? node.value.trim() : node.value;
    if (value === '') {
      if (d.required) errors.push([d, 'Required.']);
      continue;
    }
    if (d.kind === 'integer' || d.kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || (d.kind === 'integer' && !Number.isInteger(n))) { errors.push([d, d.kind === 'integer' ? 'Enter a whole number.' : 'Enter a number.']); continue; }
      value = n;
    } else if (d.kind === 'boolean') {
      value = value === 'true';
    } else if (d.kind === 'json') {
      try { value = JSON.parse(value); } catch (e) { errors.push([d, `Not valid JSON: ${e.message}`]); continue; }
    }
    if (d.where === 'path') path = path.replace(`{${d.name}}`, encodeURIComponent(String(value)));
    else if (d.where === 'query') query.set(d.name, String(value));
    else if (d.where === 'form') form.push([d.path, typeof value === 'string' ? value : JSON.stringify(value)]);
    else if (d.path === '') json = value;
    else { json = json || {}; setAt(json, d.path, value); }
  }
  if (current.body && current.body.kind === 'json' && json === undefined && current.body.required) json = {};
  const qs = query.toString();
  const url = `${location.origin}${path}${qs ? `?${qs}` : ''}`;
  const key = $('api-key').value.trim();
  return { method: current.method, url, path, query, json, form, files, raw, errors, auth: key ? `Bearer ${key}` : '' };
}

/** What the response will be, to name the output file of the code samples. */
function expectedOutput(req) {
  const fmt = (req.json && (req.json.format || req.json.response_format)) || req.query.get('format') || '';
  const responseKind = (req.form.find(([k]) => k === 'response') || [])[1];
  if (fmt === 'zip') return 'batch.zip';
  if (fmt === 'json' || responseKind === 'json') return null;
  const audio = current.produces.some((t) => t.startsWith('audio/'));
  if (!audio) return null;
  const base = current.path.includes('preprocess') ? 'processed' : (current.path.includes('/voices/') ? 'voice' : 'speech');
  return `${base}.${fmt === 'pcm' ? 'pcm' : 'wav'}`;
}

// ---- code samples -----------------------------------------------------------------

function shq(s) {
  return `'${String(s).replace(/'/g, "'\\''")}'`;
}

function curlOf(req) {
  const lines = [`curl -sS --fail-with-body${req.method === 'GET' ? '' : ` -X ${req.method}`} ${shq(req.url)}`];
  if (current.path.endsWith('/stream')) lines[0] += ' -N';
  if (req.auth) lines.push(`-H ${shq(`Authorization: ${req.auth}`)}`);
  if (req.json !== undefined) {
    lines.push(`-H ${shq('Content-Type: application/json')}`);
    lines.push(`-d ${shq(JSON.stringify(req.json))}`);
  }
  for (const f of req.files) lines.push(`-F ${shq(`${f.name}=@${f.file.name}`)}`);
  for (const [k, v] of req.form) lines.push(`-F ${shq(`${k}=${v}`)}`);
  if (req.raw) lines.push(`-H ${shq(`Content-Type: ${current.body.contentType}`)}`, `--data-binary ${shq(`@${req.raw.name}`)}`);
  const out = expectedOutput(req);
  if (out) lines.push(`-o ${out}`);
  return lines.join(' \\\n  ');
}

function py(v, indent = 0) {
  const pad = '    '.repeat(indent + 1);
  const end = '    '.repeat(indent);
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'None';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => `${pad}${py(x, indent + 1)},`).join('\n')}\n${end}]` : '[]';
  const keys = Object.keys(v);
  return keys.length ? `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${py(v[k], indent + 1)},`).join('\n')}\n${end}}` : '{}';
}

function pythonOf(req) {
  const stream = current.path.endsWith('/stream');
  const args = [`    ${JSON.stringify(req.url)},`];
  if (req.json !== undefined) args.push(`    json=${py(req.json, 1)},`);
  if (req.files.length) args.push(`    files={${req.files.map((f) => `${JSON.stringify(f.name)}: open(${JSON.stringify(f.file.name)}, "rb")`).join(', ')}},`);
  if (req.form.length) args.push(`    data=${py(Object.fromEntries(req.form), 1)},`);
  const headers = {};
  if (req.auth) headers.Authorization = req.auth;
  if (req.raw) {
    args.push(`    data=open(${JSON.stringify(req.raw.name)}, "rb"),`);
    headers['Content-Type'] = current.body.contentType;
  }
  if (Object.keys(headers).length) args.push(`    headers=${py(headers, 1)},`);
  if (stream) args.push('    stream=True,');
  args.push('    timeout=300,');
  const out = expectedOutput(req);
  const lines = ['import requests', '', `resp = requests.${req.method.toLowerCase()}(`, ...args, ')', 'resp.raise_for_status()'];
  if (out && stream) {
    lines.push(`with open(${JSON.stringify(out)}, "wb") as f:`, '    for chunk in resp.iter_content(chunk_size=8192):', '        f.write(chunk)');
  } else if (out) {
    lines.push(`with open(${JSON.stringify(out)}, "wb") as f:`, '    f.write(resp.content)');
  } else {
    lines.push('print(resp.json() if "json" in resp.headers.get("content-type", "") else resp.text)');
  }
  return lines.join('\n');
}

function updateCode() {
  if (!current) return;
  const req = buildRequest();
  $('code-curl').textContent = curlOf(req);
  $('code-python').textContent = pythonOf(req);
}

// ---- sending ------------------------------------------------------------------------

function showErrors(errors) {
  for (const p of $('op-form').querySelectorAll('.field-error')) p.textContent = '';
  for (const n of $('op-form').querySelectorAll('[aria-invalid]')) n.removeAttribute('aria-invalid');
  for (const [d, msg] of errors) {
    const p = document.getElementById(`${d.id}-err`);
    if (p) p.textContent = msg;
    const n = document.getElementById(d.id);
    if (n) n.setAttribute('aria-invalid', 'true');
  }
  if (errors.length) {
    const first = document.getElementById(errors[0][0].id);
    if (first) first.focus();
  }
}

function resetResponse() {
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = '';
  const audio = $('response-audio');
  audio.removeAttribute('src');
  audio.load();
  audio.classList.remove('hidden');
  $('download').textContent = 'Download audio';
  $('response-audio-box').classList.add('hidden');
  $('response-body').textContent = '';
  $('response-headers').textContent = '';
  $('stream-status').textContent = '';
  replace($('response-extra'));
}

function showAudio(blob, fileName) {
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = URL.createObjectURL(blob);
  const audio = $('response-audio');
  audio.src = audioUrl;
  audio.load();
  const a = $('download');
  a.href = audioUrl;
  a.setAttribute('download', fileName);
  $('response-audio-box').classList.remove('hidden');
}

function requestView(req) {
  const lines = [`${req.method} ${req.url}`];
  if (req.auth) lines.push('Authorization: Bearer \u2022\u2022\u2022\u2022');
  if (req.json !== undefined) lines.push('Content-Type: application/json', '', JSON.stringify(req.json, null, 2));
  if (req.files.length || req.form.length) {
    lines.push('Content-Type: multipart/form-data', '');
    for (const f of req.files) lines.push(`${f.name}: <file ${f.file.name}, ${f.file.size} bytes>`);
    for (const [k, v] of req.form) lines.push(`${k}: ${v}`);
  }
  if (req.raw) lines.push(`Content-Type: ${current.body.contentType}`, '', `<file ${req.raw.name}, ${req.raw.size} bytes>`);
  return lines.join('\n');
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

function extraAudio(body) {
  // JSON answers that carry audio (preprocess with response=json, batch items).
  const items = [];
  if (body && typeof body.audio_base64 === 'string') items.push({ label: 'audio', b64: body.audio_base64, type: 'audio/wav' });
  for (const it of (body && Array.isArray(body.items) ? body.items : [])) {
    if (it && typeof it.audio_base64 === 'string') items.push({ label: `item ${it.index ?? items.length}`, b64: it.audio_base64, type: it.content_type || 'audio/wav' });
  }
  replace($('response-extra'), items.map((it) => {
    const url = URL.createObjectURL(playableBlob(b64ToBytes(it.b64), it.type));
    return el('div', { class: 'field' }, el('span', { class: 'small', text: it.label }), el('audio', { controls: true, src: url, preload: 'metadata' }));
  }));
}

async function send() {
  if (!current) return;
  const req = buildRequest();
  showErrors(req.errors);
  if (req.errors.length) {
    say($('response-status'), 'Fix the marked fields first.', 'err');
    return;
  }
  resetResponse();
  $('request-view').textContent = requestView(req);
  const streaming = current.path.endsWith('/stream');
  // The AudioContext must be made in the click for the browser to let it play.
  let ctx = null;
  let playing = false;
  if (streaming && typeof AudioContext !== 'undefined') {
    if (streamCtx) streamCtx.close().catch(() => {});
    streamCtx = null;
    ctx = new AudioContext();
    ctx.resume().catch(() => {});
  }
  let body;
  const headers = {};
  if (req.auth) headers.Authorization = req.auth;
  if (req.json !== undefined) { body = JSON.stringify(req.json); headers['Content-Type'] = 'application/json'; }
  if (req.files.length || req.form.length) {
    body = new FormData();
    for (const f of req.files) body.append(f.name, f.file, f.file.name);
    for (const [k, v] of req.form) body.append(k, v);
  }
  if (req.raw) { body = req.raw; headers['Content-Type'] = current.body.contentType; }
  controller = new AbortController();
  $('send').disabled = true;
  $('cancel').disabled = false;
  say($('response-status'), `Sending ${req.method} ${req.path}\u2026`);
  const started = performance.now();
  try {
    const res = await api(req.method, req.url, { body, headers, signal: controller.signal, raw: true });
    const type = res.headers.get('content-type') || '';
    const headLine = `${res.status} ${res.statusText || ''}`.trim();
    $('response-headers').textContent = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
    const first = Math.round(res.firstByte);
    const out = expectedOutput(req) || 'speech.wav';
    if (res.ok && streaming && /^audio\//.test(type) && ctx) {
      playing = true;
      say($('response-status'), `${headLine} \u00b7 first byte ${first} ms \u00b7 streaming\u2026`, 'ok');
      const result = await playStream(res.response, ctx, type, ({ seconds, firstAudioMs }) => {
        $('stream-status').textContent = `Playing as it arrives: ${seconds.toFixed(2)} s received, first audio after ${Math.round(firstAudioMs)} ms.`;
      }, started);
      const total = Math.round(performance.now() - started);
      say($('response-status'), `${headLine} \u00b7 first byte ${first} ms \u00b7 total ${total} ms \u00b7 ${result.seconds.toFixed(2)} s of audio`, 'ok');
      showAudio(result.blob, out.replace(/\.pcm$/, '.wav'));
      $('response-body').textContent = `(audio stream, ${type})`;
    } else {
      const bytes = new Uint8Array(await res.response.arrayBuffer());
      const total = Math.round(performance.now() - started);
      say($('response-status'), `${headLine} \u00b7 first byte ${first} ms \u00b7 total ${total} ms \u00b7 ${bytes.length.toLocaleString('en-US')} bytes`, res.ok ? 'ok' : 'err');
      if (res.ok && (/^audio\//.test(type) || type.startsWith('application/octet-stream'))) {
        showAudio(playableBlob(bytes, type), out.replace(/\.pcm$/, '.wav'));
        $('response-body').textContent = `(audio, ${type})`;
      } else if (res.ok && type.includes('zip')) {
        showAudio(new Blob([bytes], { type: 'application/zip' }), 'batch.zip');
        $('response-audio').classList.add('hidden');
        $('download').textContent = 'Download ZIP';
        $('response-body').textContent = `(ZIP archive, ${bytes.length} bytes)`;
      } else {
        const text = new TextDecoder().decode(bytes);
        let parsed;
        try { parsed = JSON.parse(text); } catch { parsed = undefined; }
        $('response-body').textContent = parsed !== undefined ? JSON.stringify(parsed, (k, v) => (k === 'audio_base64' && typeof v === 'string' && v.length > 80 ? `${v.slice(0, 60)}\u2026 (${v.length} chars)` : v), 2) : text;
        if (res.ok && parsed) extraAudio(parsed);
        if (!res.ok) say($('response-status'), `${headLine} \u00b7 total ${total} ms \u00b7 ${errorText({ status: res.status, statusText: res.statusText, body: parsed ?? text })}`, 'err');
      }
    }
    if (res.ok && (current.path.includes('extract_voice') || (current.method === 'DELETE' && current.path.includes('/voices')))) await loadLists();
  } catch (e) {
    say($('response-status'), e.aborted || (e.name === 'AbortError') ? 'Cancelled.' : `Failed: ${e.message}`, 'err');
  } finally {
    // A played stream keeps its context until the scheduled audio has played.
    if (ctx && !playing) ctx.close().catch(() => {});
    else if (ctx) streamCtx = ctx;
    controller = null;
    $('send').disabled = false;
    $('cancel').disabled = true;
  }
}

// ---- lists ------------------------------------------------------------------------

function authHeaders() {
  const key = $('api-key').value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function loadVoices() {
  const all = [];
  let offset = 0;
  for (let page = 0; page < 10; page += 1) {
    const res = await api('GET', `/api/v3/voices?limit=200&offset=${offset}`, { headers: authHeaders() });
    if (!res.ok) break;
    all.push(...listOf(res.body, 'voices'));
    const next = pick(res.body, 'next_offset');
    if (next === undefined || next === null || next <= offset) break;
    offset = next;
  }
  return all;
}

async function loadLists() {
  const [e, v] = await Promise.allSettled([api('GET', '/api/v3/engines', { headers: authHeaders() }), loadVoices()]);
  if (e.status === 'fulfilled' && e.value.ok) engines = listOf(e.value.body, 'engines');
  if (v.status === 'fulfilled') voices = v.value;
  refreshPickers();
}

/** Refills the engine and voice dropdowns of the current form, keeping the choices. */
function refreshPickers() {
  for (const d of flat(fields)) {
    if (d.kind !== 'voice' && d.kind !== 'engine') continue;
    const node = document.getElementById(d.id);
    if (!node) continue;
    const keep = node.value;
    replace(node, d.kind === 'voice' ? voiceOptions(d) : engineOptions(d));
    if ([...node.options].some((o) => o.value === keep)) node.value = keep;
  }
  updateCode();
}

function selectOp(key) {
  current = ops.find((o) => o.key === key) || ops[0];
  if (!current) return;
  $('endpoint').value = current.key;
  if (location.hash.slice(1) !== encodeURIComponent(current.key)) history.replaceState(null, '', `#${encodeURIComponent(current.key)}`);
  renderForm();
  say($('response-status'), 'No request sent yet.');
  resetResponse();
}

async function init() {
  markNav();
  $('op-form').addEventListener('input', updateCode);
  $('op-form').addEventListener('change', updateCode);
  $('op-form').addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
  $('send').addEventListener('click', send);
  $('cancel').addEventListener('click', () => controller && controller.abort());
  $('endpoint').addEventListener('change', (ev) => selectOp(ev.target.value));
  $('reload-lists').addEventListener('click', loadLists);
  $('api-key').addEventListener('input', updateCode);
  for (const [button, pre, what] of [['copy-curl', 'code-curl', 'cURL'], ['copy-python', 'code-python', 'Python']]) {
    $(button).addEventListener('click', async () => {
      const ok = await copyText($(pre).textContent);
      say($('copy-result'), ok ? `${what} copied to the clipboard.` : `Could not copy; select the ${what} text instead.`, ok ? 'ok' : 'err');
    });
  }
  let res;
  try {
    res = await api('GET', '/api/v3/openapi.json');
  } catch (e) {
    say($('spec-status'), `Could not read /api/v3/openapi.json: ${e.message}`, 'err');
    return;
  }
  if (!res.ok || !res.body || typeof res.body !== 'object' || !res.body.paths) {
    say($('spec-status'), `Could not read /api/v3/openapi.json: ${errorText(res)}`, 'err');
    return;
  }
  spec = res.body;
  ops = collectOps();
  const groups = new Map();
  for (const o of ops) {
    if (!groups.has(o.tag)) groups.set(o.tag, []);
    groups.get(o.tag).push(o);
  }
  replace($('endpoint'), [...groups].map(([tag, list]) => el('optgroup', { label: tag },
    list.map((o) => el('option', { value: o.key, text: `${o.key}${o.summary ? ` \u2014 ${o.summary}` : ''}` })))));
  $('endpoint').disabled = false;
  $('send').disabled = false;
  const title = pick(spec, 'info.title');
  const version = pick(spec, 'info.version');
  say($('spec-status'), `${ops.length} endpoints from ${show(title)} ${version ? `v${version}` : ''}`.trim());
  await loadLists();
  const fromHash = decodeURIComponent(location.hash.slice(1));
  selectOp(ops.some((o) => o.key === fromHash) ? fromHash : (ops.some((o) => o.key === DEFAULT_OP) ? DEFAULT_OP : ops[0] && ops[0].key));
}

init();
