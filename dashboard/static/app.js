// logmesh dashboard: plain JavaScript over the peer's JSON API. Everything
// from the cluster (log lines above all) is put on the page as text, never
// as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
}

function fmtNum(n) {
  if (n === undefined || n === null) return '';
  return Math.round(n).toLocaleString('en-US');
}

function fmtSecs(s) {
  if (s === undefined || s === null || isNaN(s)) return '';
  if (s < 1) return (s * 1000).toFixed(0) + ' ms';
  if (s < 120) return s.toFixed(1) + ' s';
  if (s < 7200) return (s / 60).toFixed(0) + ' min';
  if (s < 172800) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

function isZeroTime(t) { return !t || t.startsWith('0001-'); }

// A peer started with --api-token-file answers 401 without a token: the
// page then asks for one and keeps it for this tab only (sessionStorage).
function headers(accept) {
  const h = { Accept: accept };
  const tok = sessionStorage.getItem('logmesh-token');
  if (tok) h.Authorization = 'Bearer ' + tok;
  return h;
}

function needToken(r, body) {
  if (r.status !== 401 && r.status !== 403) return;
  let msg = body;
  try { msg = JSON.parse(body).error || body; } catch (e) { /* plain text */ }
  $('login').hidden = false;
  $('login-why').textContent = msg;
}

async function getJSON(url, timeoutMs) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs || 10000);
  try {
    const r = await fetch(url, { signal: ctl.signal, headers: headers('application/json') });
    if (!r.ok) {
      const body = (await r.text()).trim();
      needToken(r, body);
      throw new Error(url + ': ' + r.status + ' ' + body);
    }
    return await r.json();
  } finally {
    clearTimeout(timer);
  }
}

// Refresh loops wait at least their period, and four times as long as the
// last answer took, so a large or slow cluster is never polled harder than it answers.
function loop(fn, period) {
  const run = async () => {
    const t0 = performance.now();
    try { await fn(); } catch (e) { console.warn(e); }
    setTimeout(run, Math.max(period, 4 * (performance.now() - t0)));
  };
  run();
}

// ---- peers

const previous = new Map(); // peer -> {at, ingested}

function ingested(st) {
  let n = st.ingest && st.ingest.http ? st.ingest.http.accepted : 0;
  const sl = st.ingest && st.ingest.syslog;
  if (sl) n += (sl.tcp ? sl.tcp.messages : 0) + (sl.udp ? sl.udp.messages : 0);
  return n;
}

async function refreshPeers() {
  let c;
  try {
    c = await getJSON('/v1/cluster', 15000);
  } catch (e) {
    $('refresh').textContent = 'cannot reach this peer: ' + e.message;
    $('refresh').className = 'error';
    return;
  }
  $('refresh').className = 'muted';
  $('refresh').textContent = 'updated ' + new Date().toLocaleTimeString();
  $('answered-by').textContent = 'answered by ' + c.answered_by;
  const counts = {};
  const body = document.createElement('tbody');
  const now = performance.now();
  for (const p of c.peers || []) {
    counts[p.state] = (counts[p.state] || 0) + 1;
    const tr = el('tr');
    tr.dataset.peer = p.name;
    tr.dataset.state = p.state;
    if (p.name === c.answered_by) tr.classList.add('self');
    tr.append(el('td', 'name', p.name));
    const st = el('td');
    st.append(el('span', 'state ' + p.state, p.state));
    tr.append(st);
    const s = p.status;
    if (s) {
      let rate = '';
      const prev = previous.get(p.name);
      const n = ingested(s);
      if (prev && now > prev.at && n >= prev.n) rate = fmtNum((n - prev.n) / ((now - prev.at) / 1000));
      previous.set(p.name, { at: now, n: n });
      let lag = 0;
      for (const t of s.replication || []) lag = Math.max(lag, t.lag_p99_seconds || 0);
      tr.append(el('td', 'num records', fmtNum(s.records)), el('td', 'num', rate),
        el('td', 'num', fmtBytes(s.undelivered_bytes)), el('td', 'num', fmtBytes(s.disk_bytes)),
        el('td', 'num', (s.replication || []).length ? fmtSecs(lag) : ''),
        el('td', 'num', fmtBytes(s.runtime && s.runtime.rss_bytes)), el('td', 'num', fmtSecs(s.uptime_seconds)));
      const ck = el('td', 'num clock');
      if (s.clock) {
        ck.textContent = (s.clock.skew_seconds >= 0 ? '+' : '') + s.clock.skew_seconds.toFixed(3) + ' s';
        ck.title = 'this peer\'s clock minus the cluster\'s (median of ' + s.clock.compared + ' clocks); bound ' + s.clock.max_skew_seconds + ' s';
        if (s.clock.skewed) ck.classList.add('error');
      }
      tr.append(ck);
      const notes = [];
      for (const t of s.replication || []) {
        if (t.last_error) notes.push('→' + t.peer + ': ' + t.last_error);
        if (t.debt_partitions) notes.push('→' + t.peer + ': owes ' + t.debt_partitions + ' partition(s) to anti-entropy');
      }
      const ps = s.partitions;
      if (ps && ps.filling && ps.filling.length) notes.push('filling ' + ps.filling.length + ' of ' + ps.owned + ' partitions');
      tr.append(el('td', 'muted', notes.join('; ')));
    } else {
      previous.delete(p.name);
      for (let i = 0; i < 8; i++) tr.append(el('td', 'num'));
      tr.append(el('td', 'muted', p.error || (p.state === 'alive' ? '' : 'not asked: ' + p.state)));
    }
    body.append(tr);
  }
  $('members').replaceChild(body, $('members').tBodies[0]);
  $('members').dataset.renderMs = (performance.now() - now).toFixed(1); // for tests and curious operators
  $('summary').textContent = Object.keys(counts).sort().map((k) => counts[k] + ' ' + k).join(', ');
}

// ---- convergence

const cells = [];

function buildGrid() {
  const g = $('grid');
  for (let i = 0; i < 256; i++) {
    const c = el('span', 'cell never');
    c.setAttribute('role', 'gridcell');
    c.dataset.partition = String(i);
    cells.push(c);
    g.append(c);
  }
}

async function refreshConvergence() {
  const cv = await getJSON('/v1/convergence', 30000);
  const now = Date.now();
  let fresh = 0;
  for (const p of cv.partitions || []) {
    const c = cells[p.partition];
    if (!c) continue;
    let cls = 'never';
    let age = null;
    if (!isZeroTime(p.proven_equal_at)) {
      age = (now - Date.parse(p.proven_equal_at)) / 1000;
      cls = age < 120 ? 'fresh' : age < 900 ? 'recent' : 'stale';
    }
    if (cls === 'fresh') fresh++;
    c.className = 'cell ' + cls;
    c.title = 'partition ' + p.partition + ' on ' + (p.owners || []).join(', ') +
      (age === null ? ': not proven equal yet' : ': proven equal ' + fmtSecs(Math.max(age, 0)) + ' ago');
  }
  const s = $('convergence-summary');
  s.textContent = '';
  const through = isZeroTime(cv.converged_through) ? 'not proven yet'
    : new Date(cv.converged_through).toLocaleString() + ' (' + fmtSecs(Math.max((now - Date.parse(cv.converged_through)) / 1000, 0)) + ' ago)';
  s.append(el('span', null, 'converged through: '), el('strong', 'through', through),
    el('span', 'muted', '  ·  ' + fresh + ' of 256 partitions proven equal in the last 2 min'));
  if (cv.unreachable && cv.unreachable.length) s.append(el('span', 'error', '  ·  not asked: ' + cv.unreachable.join(', ')));
  const r = $('repairs');
  r.textContent = '';
  for (const rp of cv.repairs || []) {
    const pct = rp.expected_records > 0 ? Math.min(100, 100 * rp.done_records / rp.expected_records).toFixed(0) + '%' : '';
    r.append(el('div', 'muted', 'repair ' + rp.peer + ' ⇄ ' + rp.with + ': ' + fmtNum(rp.done_records) + ' of ' +
      fmtNum(rp.expected_records) + ' records ' + pct + (rp.eta_seconds > 0 ? ', about ' + fmtSecs(rp.eta_seconds) + ' left' : '')));
  }
}

// ---- search and live tail

const shown = new Set();
let liveTimer = null;
let newest = null; // received time (ms) of the newest record shown
let searchGen = 0;

function params(extra) {
  const p = new URLSearchParams();
  for (const id of ['q-contains', 'q-host', 'q-app', 'q-severity', 'q-since', 'q-limit']) {
    const v = $(id).value.trim();
    // the text box asks for a substring, or for whole words when ticked
    if (v !== '') p.set(id === 'q-contains' && $('q-words').checked ? 'word' : $(id).name, v);
  }
  for (const k in extra) p.set(k, extra[k]);
  return p;
}

async function fetchLogs(p) {
  const r = await fetch('/v1/logs?' + p.toString(), { headers: headers('application/x-ndjson') });
  const text = await r.text();
  if (!r.ok) {
    needToken(r, text);
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch (e) { /* plain text */ }
    throw new Error(msg.trim());
  }
  const recs = [];
  let err = null;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const o = JSON.parse(line);
    if (o.error) err = o.error; else recs.push(o);
  }
  return { recs, err, coverage: r.headers.get('X-Logmesh-Coverage'), missing: r.headers.get('X-Logmesh-Missing'),
    unread: r.headers.get('X-Logmesh-Unread') };
}

function row(rec, isNew) {
  const tr = el('tr', isNew ? 'new' : '');
  tr.dataset.id = rec.id;
  const sev = rec.severity || '';
  tr.append(el('td', 'muted', new Date(rec.received).toLocaleString()), el('td', null, rec.host),
    el('td', null, rec.app), el('td', 'sev-' + sev, sev), el('td', 'msg', rec.message || rec.raw || ''));
  if (rec.malformed) tr.title = 'kept raw: ' + rec.malformed;
  return tr;
}

function coverageNote(res) {
  if (res.coverage !== 'partial') return '';
  const why = [];
  if (res.missing) why.push('no complete replica answered for partitions ' + res.missing);
  for (const u of (res.unread || '').split(',').filter(Boolean)) {
    const [name, since] = u.split('@');
    why.push(name + ' could not be read and may hold records received ' + (since && since !== '-' ? 'after ' + since : 'at any time') + ' that no other peer has yet');
  }
  if (!why.length) why.push('a peer failed while answering');
  return ' — PARTIAL: ' + why.join('; ');
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const gen = ++searchGen;
  const status = $('search-status');
  status.className = 'muted';
  status.textContent = 'searching…';
  let res;
  try {
    res = await fetchLogs(params({}));
  } catch (e) {
    if (gen !== searchGen) return;
    status.className = 'error';
    status.textContent = e.message;
    return;
  }
  if (gen !== searchGen) return;
  const body = document.createElement('tbody');
  shown.clear();
  newest = null;
  for (const rec of res.recs) {
    shown.add(rec.id);
    body.append(row(rec, false));
    const t = Date.parse(rec.received);
    if (newest === null || t > newest) newest = t;
  }
  $('results').replaceChild(body, $('results').tBodies[0]);
  status.className = res.err || res.coverage === 'partial' ? 'error' : 'muted';
  status.textContent = res.recs.length + ' records' + coverageNote(res) + (res.err ? ' — ' + res.err : '');
  if ($('q-live').checked) startLive();
}

// Live tail polls every second for records received since a little before
// the newest shown (a record can become visible after later ones), oldest
// first, and skips those already shown.
const overlapMs = 5000;
const maxRows = 1000;

async function pollLive() {
  const gen = searchGen;
  const since = new Date((newest === null ? Date.now() : newest) - overlapMs).toISOString();
  let res;
  try {
    res = await fetchLogs(params({ since: since, order: 'asc', limit: '1000' }));
  } catch (e) {
    $('search-status').className = 'error';
    $('search-status').textContent = 'live tail: ' + e.message;
    return;
  }
  if (gen !== searchGen || !$('q-live').checked) return;
  const tbody = $('results').tBodies[0];
  let added = 0;
  for (const rec of res.recs) {
    if (shown.has(rec.id)) continue;
    shown.add(rec.id);
    tbody.insertBefore(row(rec, true), tbody.firstChild);
    added++;
    const t = Date.parse(rec.received);
    if (newest === null || t > newest) newest = t;
  }
  while (tbody.rows.length > maxRows) {
    shown.delete(tbody.lastChild.dataset.id);
    tbody.removeChild(tbody.lastChild);
  }
  $('search-status').className = res.coverage === 'partial' ? 'error' : 'muted';
  $('search-status').textContent = 'live: ' + tbody.rows.length + ' records shown' +
    (added ? ', ' + added + ' new' : '') + coverageNote(res);
}

function startLive() {
  stopLive();
  const tick = async () => {
    await pollLive();
    if ($('q-live').checked) liveTimer = setTimeout(tick, 1000);
  };
  liveTimer = setTimeout(tick, 1000);
}

function stopLive() {
  if (liveTimer !== null) clearTimeout(liveTimer);
  liveTimer = null;
}

document.addEventListener('DOMContentLoaded', () => {
  buildGrid();
  $('search').addEventListener('submit', search);
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('logmesh-token', $('token').value.trim());
    $('token').value = '';
    $('login').hidden = true;
    refreshPeers();
    search();
  });
  $('q-live').addEventListener('change', () => { if ($('q-live').checked) startLive(); else stopLive(); });
  loop(refreshPeers, 2000);
  loop(refreshConvergence, 10000);
  search();
});
