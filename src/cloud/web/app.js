// lade-cloud's live page: log in, pick an installation, poll GET /api/lade/live/{id} every
// second and show the load tree, the chargers (with Pause/Resume/Stop), the last hour of the
// installation's load and the operator's available-current control. Contract: docs/web.md.
//
// Plain ES module, no dependencies, no build step. It runs under the portal's
// Content-Security-Policy `default-src 'self'`: no inline script or style, no eval, no
// innerHTML with server data (every server string goes through textContent), styles set only
// through the CSSOM (element.style), which that policy allows.

const POLL_MS = 1000;
const STALE_MS = 5000;
const HISTORY_MS = 3600 * 1000;
const TOKEN_KEY = 'lade.token';
const INSTALLATION_KEY = 'lade.installation';

// ChargerOperationMode, observation 710 (shared/reference/portal-api.md).
const MODE_NAMES = {
  0: 'Unknown',
  1: 'Disconnected',
  2: 'Connected_Requesting',
  3: 'Connected_Charging',
  5: 'Connected_Finished',
};
const COMMANDS = {
  pause: { id: 506, label: 'Pause', done: 'Pause accepted (StopChargingFinal).' },
  resume: { id: 507, label: 'Resume', done: 'Resume accepted (ResumeCharging).' },
  stop: { id: 10001, label: 'Stop', done: 'Stop accepted (DeauthorizeAndStop).' },
};
const PHASE_NAMES = ['L1', 'L2', 'L3'];
// Network diagnostics (R19, GET /api/lade/chargers/{id}/network): how the hub's name was found,
// and which bearer slot of `bearers` the reported `bearer` label is.
const DNS_SOURCES = { hosts: 'hosts file', dns: 'DNS', cache: 'cache', literal: 'literal address' };
const BEARER_SLOTS = { Ethernet: 'wired', PLC: 'wired', Wifi: 'wifi', LTE: 'lte' };

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  installations: [],
  installationId: null,
  pollGen: 0,
  pollTimer: 0,
  live: null,
  lastOkMs: 0,
  lastError: '',
  loginBlockedUntil: 0,
  loginTimer: 0,
  nodeEls: new Map(),
  chargerEls: new Map(),
  pending: new Set(), // charger ids with a command in flight
};

// ---------------------------------------------------------------- helpers

/** Builds an element: el('div', {class: 'x', 'data-testid': 'y'}, child, 'text', ...). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function setAttr(e, name, value) {
  const v = String(value);
  if (e.getAttribute(name) !== v) e.setAttribute(name, v);
}

function num(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x : NaN;
}

/** 40 → "40", 31.55 → "31.6", NaN → "–". */
function fmtA(x) {
  const v = num(x);
  if (Number.isNaN(v)) return '–';
  const s = v.toFixed(1);
  return s.endsWith('.0') ? s.slice(0, -2) : s;
}

function fmtList(arr) {
  if (!Array.isArray(arr) || arr.length === 0) return '–';
  return arr.map(fmtA).join(' / ') + ' A';
}

function arr3(a) {
  return Array.isArray(a) ? a.map(num) : [];
}

function clock(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function modeName(mode) {
  return MODE_NAMES[mode] ?? `Mode ${mode}`;
}

function str(x) {
  return typeof x === 'string' ? x : '';
}

function obj(x) {
  return x && typeof x === 'object' && !Array.isArray(x) ? x : null;
}

/** 1 → "1 connect", 3 → "3 connects". */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Minutes as "42 min", "3 h 5 min", "2 d 4 h". */
function fmtMinutes(m) {
  if (m < 60) return `${m} min`;
  if (m < 1440) return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
  const h = Math.floor((m % 1440) / 60);
  return `${Math.floor(m / 1440)} d${h ? ` ${h} h` : ''}`;
}

// ---------------------------------------------------------------- HTTP

class Unauthorized extends Error {}

/** Seconds from a Retry-After header (delta-seconds or HTTP date); null when absent. */
function retryAfterS(header) {
  if (!header) return null;
  const n = Number(header);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const t = Date.parse(header);
  return Number.isNaN(t) ? null : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

/** The human message of an error answer: OAuth, portal (`Code`/`Details`) or plain shapes. */
function errorText(r) {
  const d = r.data;
  if (typeof d === 'string' && d.trim()) return d.trim().slice(0, 300);
  if (d && typeof d === 'object') {
    for (const k of ['error_description', 'Details', 'details', 'Message', 'message', 'error', 'Error']) {
      if (typeof d[k] === 'string' && d[k]) {
        const field = d.field ?? d.Field;
        return typeof field === 'string' && field && !d[k].includes(field) ? `${d[k]} (${field})` : d[k];
      }
    }
    return JSON.stringify(d).slice(0, 300);
  }
  return `HTTP ${r.status}`;
}

/** One request; resolves to {status, ok, data, retryAfter}, rejects only on network errors. */
async function request(method, path, { json, form, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const res = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'same-origin' });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  return { status: res.status, ok: res.ok, data, retryAfter: retryAfterS(res.headers.get('Retry-After')) };
}

/** A call that needs the token: a 401 ends the session and shows the login again. */
async function api(method, path, opts) {
  const r = await request(method, path, opts);
  if (r.status === 401) {
    sessionEnded('Your session has ended; please log in again.');
    throw new Unauthorized();
  }
  return r;
}

// ---------------------------------------------------------------- login / session

function showLogin(message, isError = true) {
  stopPolling();
  $('app').hidden = true;
  $('site').hidden = true;
  $('top-status').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  if (message) {
    err.textContent = message;
    err.classList.toggle('info', !isError);
    err.hidden = false;
  } else {
    err.hidden = true;
  }
  const user = $('login-username');
  (user.value ? $('login-password') : user).focus();
}

function clearSession() {
  state.token = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage may be disabled; the token lived in memory too */
  }
  state.live = null;
  state.lastOkMs = 0;
  state.installations = [];
  for (const { root } of state.nodeEls.values()) root.remove();
  for (const { root } of state.chargerEls.values()) root.remove();
  state.nodeEls.clear();
  state.chargerEls.clear();
}

function sessionEnded(message) {
  clearSession();
  showLogin(message, false);
}

function tickLoginBlock() {
  clearTimeout(state.loginTimer);
  const left = Math.ceil((state.loginBlockedUntil - Date.now()) / 1000);
  const err = $('login-error');
  if (left > 0) {
    err.textContent = `Too many attempts, retry in ${left} s.`;
    err.classList.remove('info');
    err.hidden = false;
    $('login-submit').disabled = true;
    state.loginTimer = setTimeout(tickLoginBlock, 250);
  } else {
    $('login-submit').disabled = false;
    err.textContent = 'You can try again now.';
    err.classList.add('info');
  }
}

async function onLogin(ev) {
  ev.preventDefault();
  if (Date.now() < state.loginBlockedUntil) return;
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const submit = $('login-submit');
  const err = $('login-error');
  submit.disabled = true;
  err.hidden = true;
  let r;
  try {
    r = await request('POST', '/oauth/token', {
      form: { grant_type: 'password', username, password },
      auth: false,
    });
  } catch {
    submit.disabled = false;
    showLogin('Cannot reach the portal. Check the connection and try again.');
    return;
  }
  submit.disabled = false;
  if (r.ok && r.data && typeof r.data.access_token === 'string') {
    state.token = r.data.access_token;
    try {
      sessionStorage.setItem(TOKEN_KEY, state.token);
    } catch {
      /* memory only */
    }
    $('login-password').value = '';
    startApp();
  } else if (r.status === 429) {
    state.loginBlockedUntil = Date.now() + (r.retryAfter ?? 1) * 1000;
    tickLoginBlock();
  } else if (r.status === 400 || r.status === 401) {
    const d = r.data && typeof r.data === 'object' ? r.data : {};
    showLogin(d.error_description || 'Wrong user name or password.');
  } else {
    showLogin(`Login failed: ${errorText(r)}`);
  }
}

function onLogout() {
  clearSession();
  showLogin('You are logged out.', false);
}

// ---------------------------------------------------------------- installation

async function startApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('top-status').hidden = false;
  $('dashboard').hidden = true;
  $('no-installation').hidden = true;
  setConn('Loading…', 'pending');
  let r;
  try {
    r = await api('GET', '/api/installation');
  } catch (e) {
    if (e instanceof Unauthorized) return;
    showAppError('Cannot reach the portal; retrying…');
    setTimeout(() => state.token && startApp(), 3000);
    return;
  }
  if (!r.ok) {
    showAppError(`Cannot list installations: ${errorText(r)}`);
    setTimeout(() => state.token && startApp(), 3000);
    return;
  }
  showAppError('');
  const list = r.data && Array.isArray(r.data.Data) ? r.data.Data : [];
  state.installations = list;
  if (list.length === 0) {
    $('no-installation').hidden = false;
    setConn('', 'ok');
    return;
  }
  let saved = null;
  try {
    saved = sessionStorage.getItem(INSTALLATION_KEY);
  } catch {
    /* none */
  }
  const pick = list.find((i) => i.Id === saved) ?? list[0];
  const sel = $('installation-select');
  sel.replaceChildren(...list.map((i) => el('option', { value: i.Id, text: i.Name || i.Id })));
  $('installation-select-label').hidden = list.length < 2;
  $('installation-name').classList.toggle('sr-only', list.length >= 2); // the selector names it
  $('site').hidden = false;
  selectInstallation(pick.Id);
}

function selectInstallation(id) {
  state.installationId = id;
  try {
    sessionStorage.setItem(INSTALLATION_KEY, id);
  } catch {
    /* none */
  }
  const inst = state.installations.find((i) => i.Id === id) ?? {};
  $('installation-select').value = id;
  setText($('installation-name'), inst.Name || id);
  const max = num(inst.MaxCurrent);
  const input = $('available-input');
  input.value = '';
  input.dataset.prefilled = '';
  input.placeholder = Number.isNaN(max) ? 'A' : `0 – ${fmtA(max)}`;
  setText($('available-max'), Number.isNaN(max) ? '' : `The installation allows at most ${fmtA(max)} A.`);
  showMessage($('available-message'), '');
  for (const { root } of state.nodeEls.values()) root.remove();
  for (const { root } of state.chargerEls.values()) root.remove();
  state.nodeEls.clear();
  state.chargerEls.clear();
  state.live = null;
  $('dashboard').hidden = false;
  startPolling();
}

function showAppError(text) {
  const e = $('app-error');
  e.textContent = text;
  e.hidden = !text;
}

function showMessage(e, text, isError = false) {
  e.textContent = text;
  e.classList.toggle('error', isError);
  e.hidden = !text;
}

// ---------------------------------------------------------------- polling

function stopPolling() {
  state.pollGen++;
  clearTimeout(state.pollTimer);
}

function startPolling() {
  stopPolling();
  const gen = state.pollGen;
  poll(gen);
}

async function poll(gen) {
  const started = Date.now();
  let delay = POLL_MS;
  const id = state.installationId;
  try {
    const r = await api('GET', `/api/lade/live/${encodeURIComponent(id)}`);
    if (gen !== state.pollGen) return;
    if (r.ok && r.data && typeof r.data === 'object') {
      state.live = r.data;
      state.lastOkMs = Date.now();
      state.lastError = '';
      render(r.data);
    } else if (r.status === 429) {
      state.lastError = 'rate limited';
      delay = Math.max(POLL_MS, (r.retryAfter ?? 1) * 1000);
    } else {
      state.lastError = errorText(r);
    }
  } catch (e) {
    if (e instanceof Unauthorized || gen !== state.pollGen) return;
    state.lastError = 'portal unreachable';
  }
  updateConn();
  const wait = Math.max(0, delay - (Date.now() - started));
  state.pollTimer = setTimeout(() => poll(gen), wait);
}

function setConn(text, cls) {
  const c = $('conn-status');
  setText(c, text);
  c.className = `conn ${cls}`;
}

function updateConn() {
  const age = Date.now() - state.lastOkMs;
  if (!state.lastOkMs) {
    setConn(state.lastError ? `No data: ${state.lastError}; retrying` : 'Loading…', state.lastError ? 'bad' : 'pending');
  } else if (state.lastError || age > STALE_MS) {
    setConn(`Stale since ${clock(state.lastOkMs)}${state.lastError ? ` (${state.lastError})` : ''}; retrying`, 'bad');
  } else {
    setConn(`Live · ${clock(state.lastOkMs)}`, 'ok');
  }
}

// ---------------------------------------------------------------- rendering

function render(live) {
  const inst = live.Installation ?? {};
  const avail = arr3(inst.AvailableCurrent);
  const availEl = $('available-current');
  setText(availEl, fmtList(avail));
  setAttr(availEl, 'data-values', avail.join(','));
  const input = $('available-input');
  if (!input.dataset.prefilled && avail.length && document.activeElement !== input) {
    input.value = fmtA(Math.max(...avail));
    input.dataset.prefilled = '1';
  }
  renderNodes(Array.isArray(live.Nodes) ? live.Nodes : []);
  renderChargers(Array.isArray(live.Chargers) ? live.Chargers : [], live.Nodes ?? []);
  drawPlot();
}

/** Nodes in tree order (parent before children), with their depth. */
function treeOrder(nodes) {
  const ids = new Set(nodes.map((n) => n.Id));
  const kids = new Map();
  const roots = [];
  for (const n of nodes) {
    if (n.ParentId && ids.has(n.ParentId) && n.ParentId !== n.Id) {
      if (!kids.has(n.ParentId)) kids.set(n.ParentId, []);
      kids.get(n.ParentId).push(n);
    } else {
      roots.push(n);
    }
  }
  const out = [];
  const seen = new Set();
  const walk = (n, depth) => {
    if (seen.has(n.Id)) return;
    seen.add(n.Id);
    out.push([n, depth]);
    for (const k of kids.get(n.Id) ?? []) walk(k, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  for (const n of nodes) if (!seen.has(n.Id)) out.push([n, 0]); // a cycle: still show it
  return out;
}

/** ok / warn (within 10 % of the limit) / over (above it). */
function loadLevel(limit, might, measured) {
  const top = Math.max(Number.isNaN(might) ? 0 : might, Number.isNaN(measured) ? 0 : measured);
  if (Number.isNaN(limit)) return 'ok';
  if (top > limit + 0.05) return 'over';
  if (top >= 0.9 * limit && top > 0) return 'warn';
  return 'ok';
}

function makeNodeEl(n) {
  const title = el('h3', { class: 'node-name', 'data-testid': 'node-name' });
  const kind = el('span', { class: 'node-kind', 'data-testid': 'node-kind' });
  const limit = el('span', { class: 'node-limit', 'data-testid': 'node-limit' });
  const phasesEl = el('div', { class: 'phases' });
  const root = el(
    'div',
    { class: 'node', 'data-testid': 'node', 'data-node-id': n.Id },
    el(
      'div',
      { class: 'node-head' },
      title,
      kind,
      el('span', { class: 'spacer' }),
      el('span', { class: 'node-limit-wrap' }, 'limit ', limit),
    ),
    phasesEl,
  );
  return { root, title, kind, limit, phasesEl, phases: [] };
}

function makePhaseEl() {
  const label = el('span', { class: 'ph-label' });
  const might = el('div', { class: 'bar-might', 'data-testid': 'node-mightdraw' });
  const measured = el('div', { class: 'bar-measured', 'data-testid': 'node-measured' });
  const mark = el('div', { class: 'bar-limit', 'data-testid': 'node-limit-mark' });
  const bar = el('div', { class: 'bar', 'aria-hidden': 'true', 'data-testid': 'node-bar' }, might, measured, mark);
  const text = el('span', { class: 'ph-text' });
  const root = el('div', { class: 'phase', 'data-testid': 'node-phase' }, label, bar, text);
  return { root, label, bar, might, measured, mark, text };
}

function renderNodes(nodes) {
  const container = $('nodes');
  const alive = new Set();
  const ordered = treeOrder(nodes);
  ordered.forEach(([n, depth], index) => {
    alive.add(n.Id);
    let ne = state.nodeEls.get(n.Id);
    if (!ne) {
      ne = makeNodeEl(n);
      state.nodeEls.set(n.Id, ne);
    }
    if (container.children[index] !== ne.root) container.insertBefore(ne.root, container.children[index] ?? null);
    setAttr(ne.root, 'data-kind', n.Kind ?? '');
    setAttr(ne.root, 'data-depth', Math.min(depth, 4));
    setText(ne.title, n.Name || n.Id);
    setText(ne.kind, n.Kind ?? '');
    const limit = arr3(n.Limit);
    const might = arr3(n.MightDraw);
    const measured = arr3(n.Measured);
    setText(ne.limit, fmtList(limit));
    setAttr(ne.root, 'data-limit', limit.join(','));
    setAttr(ne.root, 'data-mightdraw', might.join(','));
    setAttr(ne.root, 'data-measured', measured.join(','));
    const count = Math.max(limit.length, might.length, measured.length);
    while (ne.phases.length < count) {
      const p = makePhaseEl();
      ne.phases.push(p);
      ne.phasesEl.append(p.root);
    }
    while (ne.phases.length > count) ne.phases.pop().root.remove();
    let worst = 'ok';
    ne.phases.forEach((p, i) => {
      const L = limit[i] ?? NaN;
      const M = might[i] ?? NaN;
      const D = measured[i] ?? NaN;
      const scale = Math.max(1, ...[L, M, D].filter((x) => !Number.isNaN(x)));
      const pct = (x) => `${Number.isNaN(x) ? 0 : Math.max(0, Math.min(100, (100 * x) / scale))}%`;
      const level = loadLevel(L, M, D);
      if (level === 'over' || (level === 'warn' && worst === 'ok')) worst = level;
      setText(p.label, count === 1 ? 'L' : PHASE_NAMES[i] ?? `P${i + 1}`);
      setAttr(p.root, 'data-phase', i + 1);
      setAttr(p.root, 'data-level', level);
      p.measured.style.width = pct(D);
      p.might.style.width = pct(M);
      p.mark.style.left = pct(L);
      p.mark.hidden = Number.isNaN(L);
      setText(p.text, `${fmtA(D)} A · might ${fmtA(M)} · of ${fmtA(L)} A`);
    });
    setAttr(ne.root, 'data-level', worst);
  });
  for (const [id, ne] of state.nodeEls) {
    if (!alive.has(id)) {
      ne.root.remove();
      state.nodeEls.delete(id);
    }
  }
}

function makeChargerEl(c) {
  const name = el('h3', { class: 'ch-name', 'data-testid': 'charger-name' });
  const device = el('span', { class: 'ch-device', 'data-testid': 'charger-device' });
  const circuit = el('span', { class: 'ch-circuit', 'data-testid': 'charger-circuit' });
  const online = el('span', { class: 'badge', 'data-testid': 'charger-online' });
  const mode = el('span', { class: 'badge mode', 'data-testid': 'charger-mode' });
  const final = el('span', { class: 'badge final', 'data-testid': 'charger-finalstop', text: 'final stop' });
  const allocated = el('dd', { 'data-testid': 'charger-allocated' });
  const drawn = el('dd', { 'data-testid': 'charger-drawn' });
  const power = el('dd', { 'data-testid': 'charger-power' });
  const energy = el('dd', { 'data-testid': 'charger-energy' });
  const firmware = el('div', { class: 'ch-fw', 'data-testid': 'charger-firmware' });
  const bars = el('div', { class: 'ch-bars', 'aria-hidden': 'true' });
  const buttons = {};
  for (const [key, cmd] of Object.entries(COMMANDS)) {
    buttons[key] = el('button', {
      type: 'button',
      class: `btn ${key === 'stop' ? 'btn-danger' : ''}`,
      'data-testid': `charger-${key}`,
      'data-command': cmd.id,
      text: cmd.label,
    });
  }
  // Not disabled when the charger is offline: that is when an installer needs it most.
  const netId = `charger-net-${String(c.Id).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const netButton = el('button', {
    type: 'button',
    class: 'btn btn-net',
    'data-testid': 'charger-network',
    'aria-expanded': 'false',
    'aria-controls': netId,
    text: 'Network',
  });
  const netPanel = el('section', { class: 'ch-net', id: netId, 'data-testid': 'charger-network-panel', hidden: true });
  const msg = el('p', { class: 'msg', role: 'status', 'aria-live': 'polite', 'data-testid': 'charger-message', hidden: true });
  const root = el(
    'article',
    { class: 'charger', 'data-testid': 'charger-row', 'data-charger-id': c.Id },
    el('div', { class: 'ch-head' }, name, online, mode, final),
    el('div', { class: 'ch-sub' }, device, circuit),
    el(
      'dl',
      { class: 'ch-figures' },
      el('div', {}, el('dt', { text: 'Allocated' }), allocated),
      el('div', {}, el('dt', { text: 'Drawn' }), drawn),
      el('div', {}, el('dt', { text: 'Power' }), power),
      el('div', {}, el('dt', { text: 'Session' }), energy),
    ),
    bars,
    firmware,
    el('div', { class: 'ch-actions' }, buttons.pause, buttons.resume, buttons.stop, netButton),
    msg,
    netPanel,
  );
  for (const key of Object.keys(COMMANDS)) {
    buttons[key].addEventListener('click', () => sendCommand(c.Id, key));
  }
  netButton.addEventListener('click', () => toggleNetwork(c.Id));
  return {
    root, name, device, circuit, online, mode, final, allocated, drawn, power, energy, firmware, bars, barEls: [], buttons, msg,
    netButton, netPanel, netGen: 0,
  };
}

// "Firmware 9.1.0 · downloading 40 % → 9.2.0" from the live view's Firmware object.
function firmwareLine(fw) {
  if (!fw || typeof fw !== 'object') return 'Firmware –';
  let t = `Firmware ${fw.Version || '–'}`;
  const st = typeof fw.State === 'string' ? fw.State : '';
  if (st && st !== 'idle') {
    t += ` · ${st}`;
    if (Number.isFinite(fw.Progress)) t += ` ${fw.Progress} %`;
    if (fw.Target) t += ` → ${fw.Target}`;
  }
  if (fw.RestartDeferred === true) t += ' · restart waits for the session';
  if (fw.LastError) t += ` · ${fw.LastError}`;
  return t;
}

function renderChargers(chargers, nodes) {
  const container = $('chargers');
  const nodeNames = new Map(nodes.map((n) => [n.Id, n.Name || n.Id]));
  const sorted = [...chargers].sort((a, b) =>
    String(a.Name ?? '').localeCompare(String(b.Name ?? ''), undefined, { numeric: true }) ||
    String(a.Id).localeCompare(String(b.Id)),
  );
  $('no-chargers').hidden = sorted.length > 0;
  const alive = new Set();
  sorted.forEach((c, index) => {
    alive.add(c.Id);
    let ce = state.chargerEls.get(c.Id);
    if (!ce) {
      ce = makeChargerEl(c);
      state.chargerEls.set(c.Id, ce);
    }
    if (container.children[index] !== ce.root) container.insertBefore(ce.root, container.children[index] ?? null);
    const label = c.Name || c.DeviceId || c.Id;
    const mode = Number.isInteger(c.Mode) ? c.Mode : 0;
    const online = c.Online === true;
    const finalStop = c.FinalStop === true;
    setAttr(ce.root, 'data-mode', mode);
    setAttr(ce.root, 'data-online', online);
    setAttr(ce.root, 'data-finalstop', finalStop);
    setAttr(ce.root, 'aria-label', `Charger ${label}`);
    setText(ce.name, label);
    setText(ce.device, c.DeviceId ?? '');
    setText(ce.circuit, c.CircuitId && nodeNames.has(c.CircuitId) ? `on ${nodeNames.get(c.CircuitId)}` : '');
    setText(ce.online, online ? 'online' : 'offline');
    setAttr(ce.online, 'class', `badge ${online ? 'on' : 'off'}`);
    setText(ce.mode, modeName(mode));
    setAttr(ce.mode, 'class', `badge mode mode-${mode}`);
    ce.final.hidden = !finalStop;

    const phases = Number.isInteger(c.Phases) && c.Phases > 0 ? c.Phases : 0;
    const alloc = num(c.Allocated);
    const drawn = arr3(c.Drawn);
    setText(ce.allocated, `${fmtA(alloc)} A${phases ? ` × ${phases} ph` : ''}`);
    setText(ce.drawn, fmtList(drawn));
    const kw = num(c.PowerW) / 1000;
    setText(ce.power, Number.isNaN(kw) ? '–' : `${kw.toFixed(2)} kW`);
    const kwh = num(c.SessionEnergyKWh);
    setText(ce.energy, Number.isNaN(kwh) ? '–' : `${kwh.toFixed(3)} kWh`);
    setText(ce.firmware, firmwareLine(c.Firmware));

    // Per phase: drawn against what this phase was allocated (phases beyond Phases get none).
    const count = Math.max(drawn.length, phases);
    while (ce.barEls.length < count) {
      const fill = el('div', { class: 'mini-fill' });
      const mark = el('div', { class: 'mini-alloc' });
      const lab = el('span', { class: 'mini-label' });
      const row = el('div', { class: 'mini' }, lab, el('div', { class: 'mini-bar' }, fill, mark));
      ce.barEls.push({ row, fill, mark, lab });
      ce.bars.append(row);
    }
    while (ce.barEls.length > count) ce.barEls.pop().row.remove();
    ce.barEls.forEach((b, i) => {
      const a = i < phases && !Number.isNaN(alloc) ? alloc : 0;
      const d = Number.isNaN(drawn[i] ?? NaN) ? 0 : drawn[i];
      const scale = Math.max(a, d, 6);
      setText(b.lab, PHASE_NAMES[i] ?? `P${i + 1}`);
      b.fill.style.width = `${Math.min(100, (100 * d) / scale)}%`;
      b.mark.style.left = `${Math.min(100, (100 * a) / scale)}%`;
      b.fill.classList.toggle('over', d > a + 0.5);
    });

    const busy = state.pending.has(c.Id);
    ce.buttons.pause.disabled = busy || !online || finalStop || !(mode === 2 || mode === 3);
    ce.buttons.resume.disabled = busy || !online || !(mode === 5 && finalStop);
    ce.buttons.stop.disabled = busy || !online || !(mode === 2 || mode === 3 || mode === 5);
    for (const [key, b] of Object.entries(ce.buttons)) setAttr(b, 'aria-label', `${COMMANDS[key].label} ${label}`);
    setAttr(ce.netButton, 'aria-label', `Network diagnostics of ${label}`);
    setAttr(ce.netPanel, 'aria-label', `Network diagnostics of ${label}`);
  });
  for (const [id, ce] of state.chargerEls) {
    if (!alive.has(id)) {
      ce.root.remove();
      state.chargerEls.delete(id);
    }
  }
}

async function sendCommand(chargerId, key) {
  const cmd = COMMANDS[key];
  const ce = state.chargerEls.get(chargerId);
  if (!ce || state.pending.has(chargerId)) return;
  state.pending.add(chargerId);
  for (const b of Object.values(ce.buttons)) b.disabled = true;
  showMessage(ce.msg, `Sending ${cmd.label.toLowerCase()}…`);
  let text;
  let isError = true;
  try {
    const r = await api('POST', `/api/chargers/${encodeURIComponent(chargerId)}/sendCommand/${cmd.id}`);
    if (r.ok) {
      text = cmd.done;
      isError = false;
    } else if (r.status === 500 && r.data && r.data.Code === 520) {
      text = 'The charger is offline; the command was not delivered.';
    } else if (r.status === 429) {
      text = `Too many requests, retry in ${r.retryAfter ?? 1} s.`;
    } else {
      text = `${cmd.label} refused: ${errorText(r)}`;
    }
  } catch (e) {
    state.pending.delete(chargerId);
    if (e instanceof Unauthorized) return;
    text = 'Cannot reach the portal; the command may not have been sent.';
  }
  state.pending.delete(chargerId);
  const now = state.chargerEls.get(chargerId);
  if (now) showMessage(now.msg, text, isError);
  if (state.live) renderChargers(state.live.Chargers ?? [], state.live.Nodes ?? []);
}

// ---------------------------------------------------------------- network diagnostics

/** Opens (and loads, every time) or closes the charger's network panel. */
function toggleNetwork(chargerId) {
  const ce = state.chargerEls.get(chargerId);
  if (!ce) return;
  const open = ce.netPanel.hidden;
  ce.netGen++; // an answer still on its way for an earlier opening is dropped
  setAttr(ce.netButton, 'aria-expanded', open);
  ce.netPanel.hidden = !open;
  if (open) loadNetwork(chargerId, ce);
  else ce.netPanel.replaceChildren();
}

function netMessage(ce, text, isError = false) {
  const p = el('p', { class: `msg${isError ? ' error' : ''}`, role: 'status', 'data-testid': 'net-message', text });
  ce.netPanel.replaceChildren(p);
}

async function loadNetwork(chargerId, ce) {
  const gen = ce.netGen;
  const current = () => ce.netGen === gen && state.chargerEls.get(chargerId) === ce && !ce.netPanel.hidden;
  netMessage(ce, 'Loading…');
  setAttr(ce.netPanel, 'aria-busy', true);
  let r;
  try {
    r = await api('GET', `/api/lade/chargers/${encodeURIComponent(chargerId)}/network`);
  } catch (e) {
    if (e instanceof Unauthorized || !current()) return;
    setAttr(ce.netPanel, 'aria-busy', false);
    netMessage(ce, 'Cannot reach the portal; the diagnostics were not loaded.', true);
    return;
  }
  if (!current()) return;
  setAttr(ce.netPanel, 'aria-busy', false);
  if (r.ok && obj(r.data)) {
    renderNetwork(ce, r.data);
  } else if (r.status === 429) {
    netMessage(ce, `Too many requests, retry in ${r.retryAfter ?? 1} s.`, true);
  } else {
    const why = errorText(r);
    const wait = r.retryAfter !== null ? ` Retry in ${r.retryAfter} s.` : '';
    netMessage(ce, `Diagnostics not available: ${why}${/[.!?]$/.test(why) ? '' : '.'}${wait}`, true);
  }
}

/** One row of the diagnostics list: label, main text, an optional muted second line. */
function netFact(label, testid, main, { attrs = {}, extra = [], detail = '' } = {}) {
  const dd = el('dd', { 'data-testid': testid, ...attrs }, el('span', { class: 'net-main', text: main || '–' }), ...extra);
  if (detail) dd.append(el('span', { class: 'net-detail', text: detail }));
  return el('div', {}, el('dt', { text: label }), dd);
}

function renderNetwork(ce, d) {
  const online = d.IsOnline === true;
  const fw = str(d.FirmwareVersion);
  const summary = el('p', {
    class: 'net-summary',
    'data-testid': 'net-summary',
    'data-online': String(online),
    text: `${online ? 'Online' : 'Offline — what it reported last'}${fw ? ` · firmware ${fw}` : ''}`,
  });
  const n = obj(d.Network);
  if (!n) {
    ce.netPanel.replaceChildren(summary, el('p', { class: 'msg', 'data-testid': 'net-message', text: 'No diagnostics reported yet.' }));
    return;
  }
  const rows = [];

  // Bearer, with the signal of the one in use when the charger knows it.
  const bearer = str(n.bearer);
  const bearers = obj(n.bearers);
  const slot = bearers && BEARER_SLOTS[bearer] ? obj(bearers[BEARER_SLOTS[bearer]]) : null;
  const bearerParts = [bearer || 'none'];
  if (slot) {
    if (Number.isFinite(slot.signalDbm)) bearerParts.push(`${slot.signalDbm} dBm`);
    if (Number.isFinite(slot.channel)) bearerParts.push(`channel ${slot.channel}`);
    if (str(slot.ssid)) bearerParts.push(`“${slot.ssid}”`);
    if (str(slot.operator)) bearerParts.push(slot.operator);
  }
  let bearerDetail = '';
  if (bearers) {
    const each = Object.entries(bearers)
      .filter(([, b]) => obj(b))
      .map(([name, b]) => {
        const bits = [b.up === true ? 'up' : 'down'];
        if (str(b.usable)) bits.push(b.usable);
        if (str(b.state)) bits.push(b.state);
        if (Number.isFinite(b.failures) && b.failures > 0) bits.push(plural(b.failures, 'failure'));
        if (str(b.lastError)) bits.push(b.lastError);
        return `${name}: ${bits.join(', ')}`;
      });
    if (str(n.lastSwitch)) each.push(`last switch: ${n.lastSwitch}`);
    bearerDetail = each.join('; ');
  }
  rows.push(netFact('Bearer', 'net-bearer', bearerParts.join(' · '), { attrs: { 'data-bearer': bearer }, detail: bearerDetail }));

  // Address: only a charger that runs its own network knows it; otherwise the host does.
  if (typeof n.address === 'string') {
    const parts = [n.address || 'none'];
    if (str(n.addressSource)) parts[0] += ` (${n.addressSource})`;
    if (str(n.interface)) parts.push(`on ${n.interface}`);
    const left = num(n.leaseLeftMin);
    if (left === -1) parts.push('lease never ends');
    else if (left > 0) parts.push(`lease ${fmtMinutes(left)} left`);
    else if (left === 0 && n.addressSource === 'dhcp') parts.push('lease < 1 min left');
    const detail = [];
    if (Array.isArray(n.dhcpDnsServers) && n.dhcpDnsServers.length) {
      detail.push(`DNS from DHCP: ${n.dhcpDnsServers.map(String).join(', ')}`);
    }
    const cc = num(n.carrierChanges);
    const ac = num(n.addressChanges);
    if (!Number.isNaN(cc)) detail.push(`carrier changed ${cc}×`);
    if (!Number.isNaN(ac)) detail.push(`address changed ${ac}×`);
    rows.push(
      netFact('Address', 'net-address', parts.join(' · '), {
        attrs: { 'data-address': n.address, 'data-source': str(n.addressSource) },
        detail: detail.join(' · '),
      }),
    );
  } else {
    rows.push(netFact('Address', 'net-address', 'from the host (the charger does not manage its network)'));
  }

  // DNS: how the hub's name was resolved.
  const dns = obj(n.dns) ?? {};
  const src = str(dns.source);
  const dnsParts = [src ? DNS_SOURCES[src] ?? src : ''];
  if (str(dns.server)) dnsParts.push(`via ${dns.server}`);
  if (Number.isFinite(dns.ms) && (src === 'dns' || dns.ms > 0)) dnsParts.push(`${dns.ms} ms`); // a file read takes 0
  const fallback = dns.fallback === true ? [el('span', { class: 'badge net-flag', 'data-testid': 'net-dns-fallback', text: 'fallback' })] : [];
  rows.push(
    netFact('DNS', 'net-dns', dnsParts.filter(Boolean).join(' · '), {
      attrs: { 'data-source': src, 'data-fallback': String(dns.fallback === true) },
      extra: fallback,
      detail: str(dns.lastError) ? `last error: ${dns.lastError}` : '',
    }),
  );

  // Time: certificates are checked on the trusted clock only.
  const time = obj(n.time);
  if (time) {
    const ts = str(time.source);
    const tsName = ts === 'host' ? 'host clock' : ts === 'ntp' ? 'NTP' : ts;
    rows.push(
      netFact('Time', 'net-time', [time.trusted === true ? 'trusted' : 'not trusted', tsName].filter(Boolean).join(' · '), {
        attrs: { 'data-trusted': String(time.trusted === true), 'data-source': ts },
        detail: str(time.state),
      }),
    );
  } else {
    rows.push(netFact('Time', 'net-time', '', { attrs: { 'data-trusted': 'false', 'data-source': '' } }));
  }

  // The hub: where the link goes, and how it has fared.
  const hubAddress = str(n.hubAddress);
  rows.push(netFact('Hub address', 'net-hub-address', hubAddress, { attrs: { 'data-address': hubAddress } }));
  const hub = obj(n.hub) ?? {};
  const connects = num(hub.connects);
  const failures = num(hub.failures);
  const lastError = str(hub.lastError);
  const lastReason = str(hub.lastReason);
  let hubDetail = '';
  if (lastError) hubDetail = `last error: ${lastError}${lastReason ? ` — ${lastReason}` : ''}`;
  else if (lastReason) hubDetail = `last reason: ${lastReason}`;
  rows.push(
    netFact(
      'Hub link',
      'net-hub',
      [Number.isNaN(connects) ? '' : plural(connects, 'connect'), Number.isNaN(failures) ? '' : plural(failures, 'failure')]
        .filter(Boolean)
        .join(', '),
      {
        attrs: { 'data-connects': Number.isNaN(connects) ? '' : connects, 'data-failures': Number.isNaN(failures) ? '' : failures },
        detail: hubDetail,
      },
    ),
  );

  rows.push(siteCheckFact(d.SiteCheck));

  ce.netPanel.replaceChildren(summary, el('dl', { class: 'net-facts', 'data-testid': 'net-facts' }, ...rows));
}

/** The last site check the charger ran on demand (SiteCheck: its twin's siteCheck, R18): the
 * verdict, when, the counts, and each warning or failure with its remedy. */
function siteCheckFact(sc) {
  const r = obj(sc);
  if (!r || !Array.isArray(r.checks)) {
    return netFact('Site check', 'net-site-check', 'none reported', { attrs: { 'data-status': '' } });
  }
  const status = str(r.status);
  const counts = {};
  for (const c of r.checks) if (obj(c) && str(c.status)) counts[c.status] = (counts[c.status] ?? 0) + 1;
  const parts = [status || '?'];
  const n = ['pass', 'note', 'warn', 'fail'].filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`);
  if (n.length) parts.push(n.join(', '));
  const at = num(r.at);
  if (at > 0) parts.push(new Date(at * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC');
  const problems = r.checks.filter((c) => obj(c) && (c.status === 'warn' || c.status === 'fail'));
  const extra = problems.length
    ? [
        el(
          'ul',
          { class: 'net-checks', 'data-testid': 'net-site-check-problems' },
          ...problems.map((c) =>
            el(
              'li',
              { 'data-id': str(c.id), 'data-status': str(c.status) },
              el('span', { class: 'net-check-summary', text: `${str(c.status)}: ${str(c.summary) || str(c.id)}` }),
              ...(str(c.remedy) ? [el('span', { class: 'net-detail', text: `→ ${c.remedy}` })] : []),
            ),
          ),
        ),
      ]
    : [];
  return netFact('Site check', 'net-site-check', parts.join(' · '), { attrs: { 'data-status': status }, extra });
}

// ---------------------------------------------------------------- operator control

async function onAvailableSubmit(ev) {
  ev.preventDefault();
  const msg = $('available-message');
  const raw = $('available-input').value.trim().replace(',', '.');
  const a = Number(raw);
  if (raw === '' || !Number.isFinite(a)) {
    showMessage(msg, 'Enter a current in amperes.', true);
    return;
  }
  const submit = $('available-submit');
  submit.disabled = true;
  showMessage(msg, 'Saving…');
  try {
    const r = await api('POST', `/api/installation/${encodeURIComponent(state.installationId)}/update`, {
      json: { availableCurrent: a },
    });
    if (r.ok) showMessage(msg, `Available current set to ${fmtA(a)} A.`);
    else if (r.status === 429) showMessage(msg, `Too many requests, retry in ${r.retryAfter ?? 1} s.`, true);
    else showMessage(msg, `Not changed: ${errorText(r)}`, true);
  } catch (e) {
    if (!(e instanceof Unauthorized)) showMessage(msg, 'Cannot reach the portal; not changed.', true);
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- plot

/** A "nice" step (1, 2, 2.5, 5 × 10^k) so that range / step is about `ticks`. */
function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function drawPlot() {
  const canvas = $('history-plot');
  if (!canvas || canvas.offsetParent === null) return;
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth;
  const cssH = canvas.clientHeight;
  if (cssW === 0 || cssH === 0) return;
  const w = Math.round(cssW * dpr);
  const h = Math.round(cssH * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, cssW, cssH);

  const live = state.live ?? {};
  const hist = live.History ?? {};
  const T = Array.isArray(hist.T) ? hist.T : [];
  const meas = Array.isArray(hist.Measured) ? hist.Measured : [];
  const lim = Array.isArray(hist.Limit) ? hist.Limit : [];
  const now = Number.isFinite(live.Now) ? live.Now : Date.now();
  const t0 = now - HISTORY_MS;
  canvas.dataset.points = String(T.length); // for the browser test and for curious people

  const fg = cssVar('--fg-muted', '#666');
  const grid = cssVar('--grid', '#ddd');
  const colours = [cssVar('--l1', '#d9480f'), cssVar('--l2', '#1971c2'), cssVar('--l3', '#2f9e44')];
  const limitColour = cssVar('--limit', '#c92a2a');
  g.font = '11px system-ui, sans-serif';

  let yMax = 10;
  for (const rows of [meas, lim]) {
    for (const row of rows) {
      if (!Array.isArray(row)) continue;
      for (const v of row) if (Number.isFinite(v) && v > yMax) yMax = v;
    }
  }
  const yStep = niceStep(yMax * 1.1, cssH < 200 ? 3 : 5);
  yMax = Math.ceil((yMax * 1.05) / yStep) * yStep;

  const left = 36;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const pw = cssW - left - right;
  const ph = cssH - top - bottom;
  const x = (t) => left + ((t - t0) / HISTORY_MS) * pw;
  const y = (v) => top + ph - (v / yMax) * ph;

  // Grid and axes.
  g.lineWidth = 1;
  g.strokeStyle = grid;
  g.fillStyle = fg;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath();
    g.moveTo(left, yy);
    g.lineTo(left + pw, yy);
    g.stroke();
    g.fillText(`${fmtA(v)}`, left - 4, yy);
  }
  g.save();
  g.translate(10, top + ph / 2);
  g.rotate(-Math.PI / 2);
  g.textAlign = 'center';
  g.fillText('A', 0, 0);
  g.restore();
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const tickMs = pw < 320 ? 20 * 60 * 1000 : 10 * 60 * 1000;
  for (let t = Math.ceil(t0 / tickMs) * tickMs; t <= now; t += tickMs) {
    const xx = Math.round(x(t)) + 0.5;
    g.beginPath();
    g.moveTo(xx, top);
    g.lineTo(xx, top + ph);
    g.stroke();
    const label = clock(t).slice(0, 5);
    const half = g.measureText(label).width / 2;
    g.fillText(label, Math.min(Math.max(xx, left + half), cssW - half - 1), top + ph + 4);
  }

  if (T.length === 0) {
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText('No history yet', left + pw / 2, top + ph / 2);
    return;
  }

  // A gap in the samples (portal restarted, data lost) breaks the line instead of bridging it.
  const dts = [];
  for (let i = 1; i < T.length; i++) dts.push(T[i] - T[i - 1]);
  dts.sort((a, b) => a - b);
  const gapMs = Math.max(60000, 5 * (dts[dts.length >> 1] ?? 0));

  const series = (rows, phase, step) => {
    g.beginPath();
    let open = false;
    let prevT = 0;
    let prevV = 0;
    for (let i = 0; i < T.length; i++) {
      const t = T[i];
      const v = Array.isArray(rows[i]) ? rows[i][phase] : undefined;
      if (!Number.isFinite(t) || t < t0 - gapMs || !Number.isFinite(v)) {
        open = false;
        continue;
      }
      const tt = Math.max(t, t0);
      if (open && t - prevT > gapMs) open = false;
      if (!open) {
        g.moveTo(x(tt), y(v));
        open = true;
      } else {
        if (step && v !== prevV) g.lineTo(x(tt), y(prevV));
        g.lineTo(x(tt), y(v));
      }
      prevT = t;
      prevV = v;
    }
    g.stroke();
  };

  g.save();
  g.beginPath();
  g.rect(left, top, pw, ph);
  g.clip();
  g.lineJoin = 'round';
  const phases = Math.max(1, ...meas.map((r) => (Array.isArray(r) ? r.length : 0)));
  g.setLineDash([6, 4]);
  g.lineWidth = 1.5;
  g.strokeStyle = limitColour;
  for (let p = 0; p < 3; p++) series(lim, p, true);
  g.setLineDash([]);
  g.lineWidth = 1.75;
  for (let p = 0; p < Math.min(3, phases); p++) {
    g.strokeStyle = colours[p];
    series(meas, p, false);
  }
  g.restore();
}

// ---------------------------------------------------------------- start

function init() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('available-form').addEventListener('submit', onAvailableSubmit);
  $('installation-select').addEventListener('change', (ev) => selectInstallation(ev.target.value));
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawPlot, 100);
  });
  let saved = null;
  try {
    saved = sessionStorage.getItem(TOKEN_KEY);
  } catch {
    /* none */
  }
  if (saved) {
    state.token = saved;
    startApp();
  } else {
    showLogin('');
  }
}

init();
