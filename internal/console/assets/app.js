// lambdad console: a client of the Lambda API and of lambdad's /lambdad/
// endpoints, nothing more. Plain JavaScript, no build step, no outside
// resources. Every view is built with DOM calls (never innerHTML), so
// names and payloads from the server are always text.
'use strict';

const csrf = document.querySelector('meta[name="lambdad-csrf"]').content;
const main = document.getElementById('main');

// h builds an element: h('a', {href: '#/x'}, 'text', child, ...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const svgNS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : String(c));
  return el;
}

// ApiError is a refused call, with AWS's error code and message.
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// call sends one request to the server and decodes its JSON answer.
// Requests that change something carry the session's CSRF token.
async function call(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET') headers['X-Lambdad-Csrf-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const msg = data && (data.message || data.Message) || text || res.statusText;
    throw new ApiError(res.status, res.headers.get('X-Amzn-ErrorType') || '', msg);
  }
  return data;
}

const enc = encodeURIComponent;
const fnPath = (name) => '/2015-03-31/functions/' + enc(name);

// A view may leave timers or streams running; cleanup stops them when the
// user goes elsewhere.
let cleanups = [];
function onLeave(f) { cleanups.push(f); }

// flash is a message for the next view (after a save).
let flash = null;

function render(title, ...nodes) {
  document.title = title + ' · lambdad';
  main.replaceChildren(...nodes);
  if (flash) {
    const f = h('p', {class: 'success', role: 'status'}, flash);
    const h1 = main.querySelector('h1');
    if (h1) h1.after(f); else main.prepend(f);
    flash = null;
  }
}

function errorBox(err, id) {
  return h('p', {class: 'error', role: 'alert', id: id || null}, err.message);
}

function fmtInt(n) { return n == null ? '—' : Number(n).toLocaleString('en-US'); }
function fmtTime(t) { return t ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : ''; }

// ---- routing ---------------------------------------------------------

async function route() {
  for (const f of cleanups) f();
  cleanups = [];
  const hash = location.hash.replace(/^#/, '') || '/functions';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || 'functions';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    if (section === 'functions' && parts.length === 1) await functionsView(params);
    else if (section === 'functions') await functionView(parts[1], parts[2] || 'overview', parts[3], parts[4]);
    else if (section === 'account') await accountView();
    else if (section === 'audit') await auditView(params);
    else if (section === 'dead-letters') await deadLettersView(params);
    else if (section === 'mappings') await mappingsView();
    else render('Not found', h('h1', {}, 'Not found'), h('p', {}, h('a', {href: '#/functions'}, 'Functions')));
  } catch (err) {
    render('Error', h('h1', {}, 'Something went wrong'), errorBox(err));
  }
}

// ---- functions list --------------------------------------------------

const pageSize = 50;

async function functionsView(params) {
  const q = params.get('q') || '';
  const after = params.get('after') || '';
  // Each page's 'after' is kept in the URL of the page before, so the
  // browser's Back and the Previous button both work.
  const prev = params.getAll('prev');
  const page = await call('GET', '/lambdad/functions?limit=' + pageSize + '&q=' + enc(q) + '&after=' + enc(after));
  const names = page.Functions.map((f) => f.name);
  const rows = new Map();
  const tbody = h('tbody', {}, page.Functions.map((f) => {
    const inUse = h('td', {class: 'num in-use'}, '…');
    const thr = h('td', {class: 'num throttles'}, '…');
    const tr = h('tr', {'data-function': f.name},
      h('th', {scope: 'row'}, h('a', {href: '#/functions/' + enc(f.name)}, f.name)),
      h('td', {class: 'num reserved'}, f.reserved == null ? 'Unreserved' : fmtInt(f.reserved)),
      inUse, thr);
    rows.set(f.name, {tr, inUse, thr});
    return tr;
  }));
  async function refresh() {
    if (!names.length) return;
    const pic = await call('GET', '/lambdad/concurrency?' + names.map((n) => 'function=' + enc(n)).join('&'));
    for (const f of pic.functions || []) {
      const r = rows.get(f.name);
      if (!r) continue;
      r.inUse.textContent = fmtInt(f.inFlight);
      r.thr.textContent = fmtInt(f.throttles);
    }
  }
  const search = h('input', {type: 'search', id: 'function-search', name: 'q', value: q, autocomplete: 'off'});
  const pageNo = prev.length + 1;
  const link = (p) => '#/functions?' + p.toString();
  const prevParams = new URLSearchParams();
  if (q) prevParams.set('q', q);
  if (prev.length > 1 || (prev.length === 1 && prev[0])) prevParams.set('after', prev[prev.length - 1]);
  prev.slice(0, -1).forEach((p) => prevParams.append('prev', p));
  const nextParams = new URLSearchParams();
  if (q) nextParams.set('q', q);
  nextParams.set('after', page.NextAfter || '');
  [...prev, after].forEach((p) => nextParams.append('prev', p));
  render('Functions',
    h('h1', {}, 'Functions'),
    h('form', {role: 'search', class: 'pager', onsubmit: (e) => {
      e.preventDefault();
      location.hash = '#/functions' + (search.value ? '?q=' + enc(search.value) : '');
    }},
      h('label', {for: 'function-search'}, 'Search functions by name'), search,
      h('button', {type: 'submit'}, 'Search')),
    h('div', {class: 'table-wrap'}, h('table', {id: 'functions'},
      h('caption', {}, names.length ? `Functions ${(pageNo - 1) * pageSize + 1}–${(pageNo - 1) * pageSize + names.length}` + (q ? ` matching “${q}”` : '') : 'No functions' + (q ? ` matching “${q}”` : '')),
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Function name'),
        h('th', {scope: 'col', class: 'num'}, 'Reserved concurrency'),
        h('th', {scope: 'col', class: 'num'}, 'Concurrency in use'),
        h('th', {scope: 'col', class: 'num'}, 'Throttles'))),
      tbody)),
    h('nav', {class: 'pager', 'aria-label': 'Pages of functions'},
      pageNo > 1 ? h('a', {class: 'button', href: link(prevParams), id: 'previous-page'}, 'Previous page') : null,
      h('span', {}, 'Page ' + pageNo),
      page.NextAfter ? h('a', {class: 'button', href: link(nextParams), id: 'next-page'}, 'Next page') : null));
  // Without the figures (another account's caller is refused them) the
  // columns say they are not known rather than wait for them.
  const unknown = () => { for (const r of rows.values()) { r.inUse.textContent = '—'; r.thr.textContent = '—'; } };
  await refresh().catch(unknown);
  const timer = setInterval(() => refresh().catch(unknown), 2000);
  onLeave(() => clearInterval(timer));
}

// ---- one function ----------------------------------------------------

async function functionView(name, tab, sub, action) {
  const fn = await call('GET', fnPath(name));
  const base = '#/functions/' + enc(name);
  const tabs = [['overview', 'Overview', base], ['configuration', 'Configuration', base + '/configuration'], ['logs', 'Logs', base + '/logs']];
  const head = [
    h('p', {class: 'crumbs'}, h('a', {href: '#/functions'}, 'Functions'), ' › ', name),
    h('h1', {}, name),
    h('nav', {'aria-label': 'Function'}, h('ul', {class: 'tabs'}, tabs.map(([id, label, href]) =>
      h('li', {}, h('a', {href, 'aria-current': id === tab ? 'page' : null}, label))))),
  ];
  if (tab === 'configuration') return configurationView(name, fn, head, base, sub || 'general', action);
  if (tab === 'logs') return logsView(name, head);
  const c = fn.Configuration;
  render(name, ...head, h('section', {class: 'panel', 'aria-labelledby': 'overview-h'},
    h('h2', {id: 'overview-h'}, 'Function overview'),
    h('dl', {class: 'kv'},
      h('dt', {}, 'ARN'), h('dd', {}, c.FunctionArn),
      h('dt', {}, 'Runtime'), h('dd', {}, c.Runtime),
      h('dt', {}, 'Handler'), h('dd', {}, c.Handler),
      h('dt', {}, 'Last modified'), h('dd', {}, c.LastModified),
      h('dt', {}, 'Reserved concurrency'), h('dd', {}, fn.Concurrency ? fmtInt(fn.Concurrency.ReservedConcurrentExecutions) : 'None (unreserved account concurrency)'))));
}

async function configurationView(name, fn, head, base, sub, action) {
  const subs = [['general', 'General configuration'], ['concurrency', 'Concurrency']];
  const side = h('nav', {class: 'side', 'aria-label': 'Configuration'}, h('ul', {}, subs.map(([id, label]) =>
    h('li', {}, h('a', {href: base + '/configuration/' + id, 'aria-current': id === sub ? 'page' : null}, label)))));
  let content;
  if (sub === 'concurrency' && action === 'edit') content = await editConcurrency(name, fn, base);
  else if (sub === 'concurrency') content = await concurrencyPanel(name, fn, base);
  else {
    const c = fn.Configuration;
    content = h('section', {class: 'panel', 'aria-labelledby': 'general-h'},
      h('h2', {id: 'general-h'}, 'General configuration'),
      h('dl', {class: 'kv'},
        h('dt', {}, 'Memory'), h('dd', {}, c.MemorySize + ' MB'),
        h('dt', {}, 'Timeout'), h('dd', {}, c.Timeout + ' s'),
        h('dt', {}, 'Description'), h('dd', {}, c.Description || '—')));
  }
  render(name + ' configuration', ...head, h('div', {class: 'split'}, side, h('div', {class: 'content'}, content)));
  const focus = main.querySelector('[data-autofocus]');
  if (focus) focus.focus();
}

async function concurrencyPanel(name, fn, base) {
  const [settings, pic, prov] = await Promise.all([
    call('GET', '/2016-08-19/account-settings'),
    call('GET', '/lambdad/concurrency?function=' + enc(name)).catch(() => null),
    call('GET', '/2019-09-30/functions/' + enc(name) + '/provisioned-concurrency?List=ALL').catch((e) => e),
  ]);
  const figures = (pic && pic.functions || [])[0] || {};
  const reserved = fn.Concurrency ? fn.Concurrency.ReservedConcurrentExecutions : null;
  const provRows = prov instanceof Error ? null : prov.ProvisionedConcurrencyConfigs || [];
  return h('div', {},
    h('section', {class: 'panel', 'aria-labelledby': 'concurrency-h'},
      h('div', {class: 'panel-head'}, h('h2', {id: 'concurrency-h'}, 'Concurrency'),
        h('a', {class: 'button', href: base + '/configuration/concurrency/edit', id: 'edit-concurrency'}, 'Edit')),
      h('dl', {class: 'kv'},
        h('dt', {}, 'Function concurrency'),
        h('dd', {id: 'function-concurrency'}, reserved == null ? 'Use unreserved account concurrency' : 'Reserved concurrency: ' + fmtInt(reserved)),
        h('dt', {}, 'Unreserved account concurrency'), h('dd', {id: 'unreserved-account'}, fmtInt(settings.AccountLimit.UnreservedConcurrentExecutions)),
        h('dt', {}, 'Concurrency in use'), h('dd', {}, fmtInt(figures.inFlight)),
        h('dt', {}, 'Throttles'), h('dd', {}, fmtInt(figures.throttles)))),
    h('section', {class: 'panel', 'aria-labelledby': 'prov-h'},
      h('h2', {id: 'prov-h'}, 'Provisioned concurrency configurations'),
      provRows == null ? errorBox(prov) : provRows.length === 0 ? h('p', {}, 'No provisioned concurrency configurations.') :
        h('div', {class: 'table-wrap'}, h('table', {id: 'provisioned'},
          h('thead', {}, h('tr', {}, ['Qualifier', 'Type', 'Requested', 'Allocated', 'Available', 'Status'].map((t, i) =>
            h('th', {scope: 'col', class: i >= 2 && i <= 4 ? 'num' : null}, t)))),
          h('tbody', {}, provRows.map((p) => {
            const q = p.FunctionArn.split(':').pop();
            return h('tr', {},
              h('th', {scope: 'row'}, q), h('td', {}, /^\d+$/.test(q) ? 'Version' : 'Alias'),
              h('td', {class: 'num'}, fmtInt(p.RequestedProvisionedConcurrentExecutions)),
              h('td', {class: 'num'}, fmtInt(p.AllocatedProvisionedConcurrentExecutions)),
              h('td', {class: 'num'}, fmtInt(p.AvailableProvisionedConcurrentExecutions)),
              h('td', {}, p.Status + (p.StatusReason ? ' (' + p.StatusReason + ')' : '')));
          }))))));
}

async function editConcurrency(name, fn, base) {
  const settings = await call('GET', '/2016-08-19/account-settings');
  const reserved = fn.Concurrency ? fn.Concurrency.ReservedConcurrentExecutions : null;
  const useUnreserved = h('input', {type: 'radio', name: 'mode', id: 'mode-unreserved', value: 'unreserved', checked: reserved == null});
  const reserve = h('input', {type: 'radio', name: 'mode', id: 'mode-reserve', value: 'reserve', checked: reserved != null});
  const input = h('input', {type: 'number', id: 'reserved-concurrency', min: 0, step: 1, inputmode: 'numeric',
    value: reserved == null ? '' : reserved, 'aria-describedby': 'unreserved-figure', disabled: reserved == null});
  const errSlot = h('div', {});
  const save = h('button', {type: 'submit', class: 'primary', id: 'save-concurrency'}, 'Save');
  const sync = () => { input.disabled = !reserve.checked; if (reserve.checked) input.focus(); };
  useUnreserved.addEventListener('change', sync);
  reserve.addEventListener('change', sync);
  const showError = (msg) => {
    errSlot.replaceChildren(h('p', {class: 'error', role: 'alert', id: 'concurrency-error'}, msg));
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'unreserved-figure concurrency-error');
  };
  const form = h('form', {id: 'concurrency-form', onsubmit: async (e) => {
    e.preventDefault();
    errSlot.replaceChildren();
    input.removeAttribute('aria-invalid');
    save.disabled = true;
    try {
      if (reserve.checked) {
        if (!/^\d+$/.test(input.value.trim())) { showError('Enter a whole number of 0 or more.'); return; }
        await call('PUT', '/2017-10-31/functions/' + enc(name) + '/concurrency', {ReservedConcurrentExecutions: Number(input.value)});
        flash = `Successfully updated reserved concurrency for function ${name} to ${input.value}.`;
      } else {
        await call('DELETE', '/2017-10-31/functions/' + enc(name) + '/concurrency');
        flash = `Function ${name} now uses unreserved account concurrency.`;
      }
      location.hash = base + '/configuration/concurrency';
    } catch (err) {
      showError(err.message);
    } finally {
      save.disabled = false;
    }
  }},
    h('h2', {id: 'edit-h'}, 'Edit concurrency'),
    h('fieldset', {},
      h('legend', {}, 'Concurrency'),
      h('label', {class: 'choice'}, useUnreserved, ' Use unreserved account concurrency'),
      h('label', {class: 'choice'}, reserve, ' Reserve concurrency'),
      h('div', {class: 'field-row'},
        h('div', {}, h('label', {for: 'reserved-concurrency'}, 'Reserved concurrency'), input,
          h('p', {class: 'hint'}, 'Concurrency to reserve for this function. 0 throttles every invocation.')),
        h('div', {class: 'aside-figure', id: 'unreserved-figure'}, 'Unreserved account concurrency',
          h('strong', {}, fmtInt(settings.AccountLimit.UnreservedConcurrentExecutions)))),
      errSlot),
    h('div', {class: 'actions'},
      h('a', {class: 'button', href: base + '/configuration/concurrency'}, 'Cancel'), save));
  (reserved == null ? useUnreserved : input).setAttribute('data-autofocus', '');
  return h('section', {class: 'panel', 'aria-labelledby': 'edit-h'}, form);
}

async function logsView(name, head) {
  const pre = h('pre', {class: 'log', id: 'log', tabindex: 0, 'aria-label': 'Recent log of ' + name}, '…');
  const load = async () => {
    const res = await fetch('/lambdad/functions/' + enc(name) + '/logs?bytes=16384', {credentials: 'same-origin'});
    pre.textContent = res.ok ? (await res.text()) || 'Nothing logged yet.' : 'The log could not be read (' + res.status + ').';
    pre.scrollTop = pre.scrollHeight;
  };
  render(name + ' logs', ...head, h('section', {class: 'panel', 'aria-labelledby': 'logs-h'},
    h('div', {class: 'panel-head'}, h('h2', {id: 'logs-h'}, 'Recent log'), h('button', {type: 'button', onclick: load}, 'Refresh')),
    h('p', {class: 'hint'}, 'The last 16 KiB of the function\'s log: every version\'s output with its START, END and REPORT lines.'),
    pre));
  await load();
}

// ---- the account picture ---------------------------------------------

const historySpan = 5 * 60 * 1000; // the charts' reach, as the server's history
const palette = ['#0a58ca', '#7a4cc2', '#0f7b6c', '#9a5b00', '#b3261e', '#3d5a80', '#6b4226'];

async function accountView() {
  const status = h('p', {class: 'live', id: 'live', role: 'status'}, 'Connecting…');
  const summary = h('dl', {class: 'kv', id: 'account-summary'});
  const picture = h('div', {class: 'picture', id: 'picture', role: 'img', 'aria-label': 'Account concurrency pools'});
  const gauges = h('ul', {class: 'gauges', 'aria-hidden': 'true'});
  const tbody = h('tbody', {});
  const chartC = s('svg', {class: 'chart', viewBox: '0 0 600 180', role: 'img', 'aria-labelledby': 'chart-c-h'});
  const chartT = s('svg', {class: 'chart', viewBox: '0 0 600 140', role: 'img', 'aria-labelledby': 'chart-t-h'});
  const chartLegend = h('ul', {class: 'legend', id: 'chart-legend'});
  render('Account concurrency',
    h('h1', {}, 'Account concurrency'), status, summary,
    h('section', {class: 'panel', 'aria-labelledby': 'pools-h'},
      h('h2', {id: 'pools-h'}, 'Concurrency pools'),
      h('p', {class: 'hint'}, 'Functions with reserved concurrency have pools of their own; the other functions share the unreserved pool. Throttling occurs when all of the concurrency in a pool is in use.'),
      picture, gauges,
      h('ul', {class: 'legend'},
        h('li', {}, h('span', {class: 'swatch sw-use'}), 'Function concurrency (in use)'),
        h('li', {}, h('span', {class: 'swatch sw-res'}), 'Reserved concurrency'),
        h('li', {}, h('span', {class: 'swatch sw-unres'}), 'Unreserved concurrency'),
        h('li', {}, h('span', {class: 'swatch sw-prov'}), 'Provisioned concurrency of unreserved functions'),
        h('li', {}, h('span', {class: 'swatch sw-thr'}), 'Throttling')),
      h('div', {class: 'table-wrap'}, h('table', {id: 'pools'},
        h('caption', {}, 'Pools now'),
        h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Pool'), h('th', {scope: 'col', class: 'num'}, 'Concurrency'),
          h('th', {scope: 'col', class: 'num'}, 'In use'), h('th', {scope: 'col', class: 'num'}, 'Throttles'))),
        tbody))),
    h('section', {class: 'panel', 'aria-labelledby': 'chart-h'},
      h('h2', {id: 'chart-h'}, 'The last minutes'),
      h('h3', {id: 'chart-c-h'}, 'Concurrency in use, by pool'), chartC,
      h('h3', {id: 'chart-t-h'}, 'Throttles per second, by pool'), chartT, chartLegend,
      h('p', {class: 'hint'}, 'The last 5 minutes (the server keeps them from its start). The table above holds the current figures.')));

  const history = [];
  const throttledAt = {};
  let last = null;
  // sample reads one picture into the history and returns its pools.
  const sample = (p) => {
    const pools = [];
    for (const r of p.reserved) pools.push({key: 'r:' + r.function, label: r.function + ' (reserved)', kind: 'reserved', ...r});
    if (p.otherReserved) pools.push({key: 'other', label: p.otherReserved.functions + ' more reserved pools', kind: 'reserved', ...p.otherReserved});
    pools.push({key: 'unreserved', label: 'Unreserved', kind: 'unreserved', ...p.unreserved});
    const prevThr = last ? last.thr : {};
    const thr = {};
    const now = Date.parse(p.time);
    if (last && now <= last.t) return null; // already in the history
    for (const pool of pools) {
      thr[pool.key] = pool.throttles;
      if (last && pool.throttles > (prevThr[pool.key] || 0)) throttledAt[pool.key] = now;
    }
    history.push({t: now, pools, thr});
    while (history.length > 1 && history[0].t < now - historySpan) history.shift();
    last = {t: now, thr};
    return pools;
  };
  const apply = (p) => {
    const pools = sample(p);
    if (!pools) return;
    const now = Date.parse(p.time);
    // A pool is drawn as throttling for 2 s after its last throttle, so
    // that a burst stays visible.
    const throttling = (k) => throttledAt[k] !== undefined && now - throttledAt[k] < 2000;
    const totalThr = Object.values(p.throttles || {}).reduce((a, b) => a + b, 0);
    summary.replaceChildren(
      h('dt', {}, 'Account concurrency limit'), h('dd', {id: 'account-limit'}, fmtInt(p.accountLimit)),
      h('dt', {}, 'Unreserved account concurrency'), h('dd', {id: 'unreserved-capacity'}, fmtInt(p.unreserved.capacity)),
      h('dt', {}, 'In use in the account'), h('dd', {id: 'account-in-use'}, fmtInt(p.inFlight)),
      h('dt', {}, 'Throttles since start'), h('dd', {id: 'account-throttles'}, fmtInt(totalThr)));
    // The account bar: each pool's share of L, every pool wide enough
    // to see; below it one gauge per pool, full width, for what is in use.
    const minShare = p.accountLimit * 0.06;
    const segments = [];
    const rows = [];
    for (const pool of pools) {
      const share = pool.capacity ? Math.min(1, pool.inUse / pool.capacity) : (pool.inUse ? 1 : 0);
      const fill = h('div', {class: 'fill'});
      fill.style.height = (100 * share) + '%';
      const seg = h('div', {class: 'pool ' + pool.kind + (throttling(pool.key) ? ' throttling' : ''), title: `${pool.label}: ${pool.inUse} of ${pool.capacity} in use, ${pool.throttles} throttles`},
        h('span', {class: 'tag'}, pool.label), fill);
      seg.style.flexGrow = String(Math.max(pool.capacity, minShare));
      segments.push(seg);
      const bar = h('div', {class: 'gauge-fill'});
      bar.style.width = pool.inUse > 0 ? `max(4px, ${100 * share}%)` : '0';
      rows.push(h('li', {class: 'gauge ' + pool.kind + (throttling(pool.key) ? ' throttling' : '')},
        h('span', {class: 'gauge-label'}, pool.label),
        h('span', {class: 'gauge-bar'}, bar),
        h('span', {class: 'gauge-text'}, `${fmtInt(pool.inUse)} of ${fmtInt(pool.capacity)} in use · ${fmtInt(pool.throttles)} throttles` + (throttling(pool.key) ? ' · throttling now' : ''))));
    }
    if (p.unreservedProvisioned > 0) {
      const seg = h('div', {class: 'pool prov', title: `Provisioned concurrency of unreserved functions: ${p.unreservedProvisioned}`}, h('span', {class: 'tag'}, 'Provisioned'));
      seg.style.flexGrow = String(Math.max(p.unreservedProvisioned, minShare));
      segments.push(seg);
    }
    gauges.replaceChildren(...rows);
    picture.replaceChildren(...segments);
    picture.setAttribute('aria-label', 'Account concurrency pools: ' + pools.map((x) => `${x.label} ${x.inUse} of ${x.capacity} in use`).join('; '));
    tbody.replaceChildren(...pools.map((pool) => h('tr', {id: 'pool-' + pool.key.replace(':', '-'), class: throttling(pool.key) ? 'throttling' : null},
      h('th', {scope: 'row'}, pool.key.startsWith('r:') ? h('a', {href: '#/functions/' + enc(pool.function) + '/configuration/concurrency'}, pool.label) : pool.label),
      h('td', {class: 'num capacity'}, fmtInt(pool.capacity)),
      h('td', {class: 'num in-use'}, fmtInt(pool.inUse)),
      h('td', {class: 'num throttles'}, fmtInt(pool.throttles)))));
    drawCharts(history, chartC, chartT, chartLegend);
  };
  // The server keeps the last minutes; the stream goes on from there.
  try {
    const past = await call('GET', '/lambdad/concurrency/history');
    for (const p of past.pictures || []) sample(p);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      // Refused (another account's caller, or no lambdad:GetConcurrency):
      // the stream would be refused too.
      render('Account concurrency', h('h1', {}, 'Account concurrency'), errorBox(err, 'account-error'));
      return;
    }
    status.textContent = 'No history: ' + err.message;
  }
  const es = new EventSource('/lambdad/concurrency/stream');
  es.addEventListener('picture', (e) => {
    status.textContent = 'Live';
    status.classList.add('on');
    apply(JSON.parse(e.data));
  });
  es.onerror = () => { status.textContent = 'Reconnecting…'; status.classList.remove('on'); };
  onLeave(() => es.close());
}

// drawCharts draws the pools' concurrency and throttle rate over the
// history: the unreserved pool and the largest reserved pools.
function drawCharts(history, chartC, chartT, legend) {
  if (history.length < 2) return;
  const lastPools = history[history.length - 1].pools;
  const keys = ['unreserved', ...lastPools.filter((p) => p.key !== 'unreserved').slice(0, palette.length - 1).map((p) => p.key)];
  const labels = Object.fromEntries(lastPools.map((p) => [p.key, p.label]));
  // The window is the history's, at least a minute, at most five.
  const t1 = history[history.length - 1].t, t0 = Math.min(history[0].t, t1 - 60000);
  // The charts are drawn at the width they are shown at, one unit a
  // pixel, so that their text keeps its size in a narrow window.
  const width = (svg) => Math.max(240, Math.round(svg.getBoundingClientRect().width) || 600);
  const series = (f) => keys.map((k) => history.map((sample, i) => [sample.t, f(sample, i, k)]));
  const inUse = series((sample, i, k) => (sample.pools.find((p) => p.key === k) || {inUse: 0}).inUse);
  const rate = series((sample, i, k) => {
    if (i === 0) return 0;
    const prev = history[i - 1];
    const dt = (sample.t - prev.t) / 1000;
    return dt > 0 ? Math.max(0, ((sample.thr[k] || 0) - (prev.thr[k] || 0)) / dt) : 0;
  });
  plot(chartC, inUse, 180);
  plot(chartT, rate, 140);
  legend.replaceChildren(...keys.map((k, i) => h('li', {}, h('span', {class: 'swatch'}), labels[k] || k)));
  legend.querySelectorAll('.swatch').forEach((sw, i) => { sw.style.background = palette[i]; });

  function plot(svg, lines, height) {
    const w = width(svg);
    svg.setAttribute('viewBox', `0 0 ${w} ${height}`);
    const x = (t) => 40 + (w - 45) * (t - t0) / (t1 - t0);
    const top = Math.max(1, ...lines.flat().map((p) => p[1]));
    const y = (v) => height - 20 - (height - 30) * v / top;
    svg.replaceChildren(
      s('line', {x1: 40, y1: y(0), x2: w - 5, y2: y(0), stroke: '#6b7480'}),
      s('line', {x1: 40, y1: y(top), x2: w - 5, y2: y(top), stroke: '#c9ced6', 'stroke-dasharray': '3 3'}),
      s('text', {x: 2, y: y(top) + 4}, fmtInt(Math.round(top * 10) / 10)),
      s('text', {x: 2, y: y(0) + 4}, '0'),
      s('text', {x: 40, y: height - 4}, '−' + Math.round((t1 - t0) / 1000) + ' s'),
      s('text', {x: w - 5, y: height - 4, 'text-anchor': 'end'}, 'now'),
      ...lines.map((pts, i) => s('polyline', {fill: 'none', stroke: palette[i], 'stroke-width': 2,
        points: pts.map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1)).join(' ')})));
  }
}

// ---- audit trail and dead letters ------------------------------------

async function auditView(params) {
  const before = params.get('before') || '';
  const page = await call('GET', '/lambdad/audit?limit=50' + (before ? '&before=' + enc(before) : ''));
  const val = (v) => v == null ? 'none' : fmtInt(v);
  render('Audit trail', h('h1', {}, 'Audit trail'),
    h('p', {class: 'hint'}, 'Every change to a reserved or provisioned concurrency setting, newest first.'),
    h('div', {class: 'table-wrap'}, h('table', {id: 'audit'},
      h('caption', {}, page.Records.length ? 'Changes' : 'No changes recorded'),
      h('thead', {}, h('tr', {}, ['Time', 'Function', 'Operation', 'From', 'To', 'Access key', 'Request id'].map((t, i) => h('th', {scope: 'col', class: i === 3 || i === 4 ? 'num' : null}, t)))),
      h('tbody', {}, page.Records.map((r) => h('tr', {},
        h('td', {}, fmtTime(r.time)),
        h('th', {scope: 'row'}, h('a', {href: '#/functions/' + enc(r.function) + '/configuration/concurrency'}, r.function + (r.qualifier ? ':' + r.qualifier : ''))),
        h('td', {}, r.operation), h('td', {class: 'num'}, val(r.old)), h('td', {class: 'num'}, val(r.new)),
        h('td', {}, r.accessKeyId || '—'), h('td', {}, h('code', {}, r.requestId))))))),
    h('nav', {class: 'pager', 'aria-label': 'Pages of the audit trail'},
      before ? h('a', {class: 'button', href: '#/audit'}, 'Newest') : null,
      page.NextBefore ? h('a', {class: 'button', href: '#/audit?before=' + page.NextBefore}, 'Older changes') : null));
}

async function deadLettersView(params) {
  const after = params.get('after') || '';
  const page = await call('GET', '/lambdad/events/dead-letters?limit=50' + (after ? '&after=' + enc(after) : ''));
  const note = h('div', {});
  const list = page.DeadLetters;
  const condition = (d) => (d.record && d.record.requestContext && d.record.requestContext.condition) || '';
  const payload = (d) => { try { return atob(d.event.payload); } catch (e) { return ''; } };
  render('Dead letters', h('h1', {}, 'Dead letters'),
    h('p', {class: 'hint'}, 'Asynchronous events that failed with no destination to go to, oldest first. Replay sends one through the queue again.'),
    note,
    h('div', {class: 'table-wrap'}, h('table', {id: 'dead-letters'},
      h('caption', {}, list.length ? 'Failed events' : 'No dead letters'),
      h('thead', {}, h('tr', {}, ['Number', 'Function', 'Received', 'Failed', 'Condition', 'Attempts', 'Payload', 'Action'].map((t, i) => h('th', {scope: 'col', class: i === 5 ? 'num' : null}, t)))),
      h('tbody', {}, list.map((d) => h('tr', {},
        h('th', {scope: 'row'}, String(d.seq)),
        h('td', {}, d.event.function + (d.event.qualifier ? ':' + d.event.qualifier : '')),
        h('td', {}, fmtTime(d.event.receivedAt)), h('td', {}, fmtTime(d.at)),
        h('td', {}, condition(d)), h('td', {class: 'num'}, String(d.event.attempts)),
        h('td', {}, h('code', {}, payload(d).slice(0, 120))),
        h('td', {}, h('button', {type: 'button', 'aria-label': 'Replay event ' + d.seq, onclick: async (e) => {
          e.target.disabled = true;
          try {
            const r = await call('POST', '/lambdad/events/dead-letters/' + d.seq + '/replay');
            const done = h('p', {class: 'success', role: 'status', tabindex: -1}, `Dead letter ${d.seq} replayed as event ${r.Event} (request id ${r.RequestId}).`);
            note.replaceChildren(done);
            // The dead letter is gone from the list: its row says where it went.
            e.target.replaceWith(h('span', {class: 'replayed'}, 'Replayed as event ' + r.Event));
            done.focus();
          } catch (err) {
            e.target.disabled = false;
            note.replaceChildren(errorBox(err));
          }
        }}, 'Replay'))))))),
    h('nav', {class: 'pager', 'aria-label': 'Pages of dead letters'},
      after ? h('a', {class: 'button', href: '#/dead-letters'}, 'First page') : null,
      list.length === 50 ? h('a', {class: 'button', href: '#/dead-letters?after=' + list[list.length - 1].seq}, 'Next page') : null));
}

// ---- event source mappings -------------------------------------------

async function mappingsView() {
  const fnName = (arn) => (arn || '').split(':function:')[1] || arn;
  const queueName = (arn) => (arn || '').split(':').pop();
  const body = h('tbody', {});
  const caption = h('caption', {});
  const note = h('div', {});
  async function refresh() {
    // The mappings and their settings from the Lambda API; what each has
    // done from lambdad's counters (none for a mapping not running here).
    const [list, counters] = await Promise.all([
      call('GET', '/2015-03-31/event-source-mappings?MaxItems=100'),
      call('GET', '/lambdad/mappings').catch(() => ({mappings: []}))]);
    const by = new Map(counters.mappings.map((c) => [c.uuid, c]));
    const ms = list.EventSourceMappings || [];
    caption.textContent = ms.length ? 'Mappings' + (list.NextMarker ? ' (the first 100)' : '') : 'No event source mappings';
    body.replaceChildren(...ms.map((m) => {
      const c = by.get(m.UUID) || {};
      const max = m.ScalingConfig && m.ScalingConfig.MaximumConcurrency;
      return h('tr', {'data-uuid': m.UUID},
        h('th', {scope: 'row'}, queueName(m.EventSourceArn)),
        h('td', {}, h('a', {href: '#/functions/' + enc(fnName(m.FunctionArn))}, fnName(m.FunctionArn))),
        h('td', {'data-field': 'state', title: m.StateTransitionReason || null}, m.State),
        h('td', {class: 'num'}, fmtInt(m.BatchSize)),
        h('td', {class: 'num'}, max ? fmtInt(max) : '—'),
        ...['batches', 'messages', 'throttledBatches', 'failedBatches', 'filtered', 'inFlight'].map((k) =>
          h('td', {class: 'num', 'data-field': k}, fmtInt(c[k]))));
    }));
  }
  await refresh();
  render('Event source mappings', h('h1', {}, 'Event source mappings'),
    h('p', {class: 'hint'}, 'SQS queues that feed functions, and what each mapping has done since this server started. Counts refresh every 2 seconds.'),
    note,
    h('div', {class: 'table-wrap'}, h('table', {id: 'mappings'}, caption,
      h('thead', {}, h('tr', {}, ['Queue', 'Function', 'State', 'Batch size', 'Maximum concurrency', 'Batches', 'Messages',
        'Throttled batches', 'Failed batches', 'Filtered', 'In flight'].map((t, i) => h('th', {scope: 'col', class: i >= 3 ? 'num' : null}, t)))),
      body)));
  const timer = setInterval(() => refresh().then(() => note.replaceChildren(), (err) => note.replaceChildren(errorBox(err))), 2000);
  onLeave(() => clearInterval(timer));
}

// ---- start -----------------------------------------------------------

// With access control on, nobody signed in sees the sign-in form only.
const authOn = document.querySelector('meta[name="lambdad-auth"]').content === 'on';
const principal = document.querySelector('meta[name="lambdad-principal"]');

function signInView() {
  const note = h('div', {role: 'alert'});
  const key = h('input', {id: 'signin-key', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false'});
  const secret = h('input', {id: 'signin-secret', name: 'secretAccessKey', type: 'password', autocomplete: 'current-password', required: true});
  const form = h('form', {class: 'panel signin', onsubmit: async (ev) => {
    ev.preventDefault();
    note.replaceChildren();
    const res = await fetch('/lambdad/console/signin', {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({accessKeyId: key.value, secretAccessKey: secret.value})});
    if (res.ok) { location.reload(); return; }
    let msg = res.statusText;
    try { msg = (await res.json()).message || msg; } catch (e) {}
    note.replaceChildren(errorBox(new ApiError(res.status, res.headers.get('X-Amzn-ErrorType') || '', msg)));
    secret.value = '';
    secret.focus();
  }},
    h('h1', {}, 'Sign in'),
    h('p', {}, 'This server has access control on. Sign in with an access key of its credentials file; the console then acts with that principal\'s permissions, in its account.'),
    h('label', {for: 'signin-key'}, 'Access key ID'), key,
    h('label', {for: 'signin-secret'}, 'Secret access key'), secret,
    note,
    h('button', {type: 'submit', class: 'primary'}, 'Sign in'));
  main.replaceChildren(form);
  key.focus();
}

(function who() {
  const el = document.getElementById('who');
  if (principal.content) {
    el.textContent = `Signed in as ${principal.content} (account ${principal.dataset.account})`;
    const out = document.getElementById('signout');
    out.hidden = false;
    out.addEventListener('click', async () => {
      await fetch('/lambdad/console/signout', {method: 'POST', credentials: 'same-origin', headers: {'X-Lambdad-Csrf-Token': csrf}});
      location.reload();
    });
  } else {
    el.textContent = authOn ? 'Not signed in' : 'No access control: every request is allowed';
  }
})();
if (authOn && !principal.content) {
  signInView();
} else {
  // After a change of view, focus goes to the new content (for screen
  // readers and keyboards), unless the view focused a field of its own.
  window.addEventListener('hashchange', () => {
    route().then(() => { if (!main.contains(document.activeElement) || document.activeElement === main) main.focus({preventScroll: true}); });
  });
  route();
}
