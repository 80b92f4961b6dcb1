// emdp's data-quality dashboard: a few pages routed in the browser, each drawing what the API
// aggregates on the server (never every record). No build step: plain ES modules.

import {
  ApiFailure, api, apiKey, exists, fmtInt, fmtNum, fmtPct, onUnauthorized, postJson, query, setApiKey,
  streamEvents, authHeaders, failureOf,
} from './api.js';
import { consumptionChart, scatterChart, stackedDaily } from './charts.js';

// ---------------------------------------------------------------------------------------------
// DOM helpers (no innerHTML: text is always text).

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const STATUS = {
  VALID: { icon: '✓', cls: 'valid' },
  INCOMPLETE: { icon: '◐', cls: 'incomplete' },
  INCONSISTENT: { icon: '✕', cls: 'inconsistent' },
};

function badge(status) {
  const s = STATUS[status] || { icon: '?', cls: 'unknown' };
  return h('span', { class: `badge ${s.cls}` }, h('span', { 'aria-hidden': 'true' }, s.icon), ' ', status || 'unknown');
}

function errorBox(err) {
  const message = err instanceof ApiFailure || err instanceof Error ? err.message : String(err);
  return h('p', { class: 'error', role: 'alert' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), message);
}

function table(columns, rows, { caption, testid } = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { 'data-testid': testid },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h(
        'tbody',
        {},
        rows.length
          ? rows.map((row) => h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : null, 'data-col': c.key }, c.cell(row)))))
          : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'Nothing to show.')),
      ),
    ),
  );
}

// An API time (RFC 3339) to the second, as the tables show it: `2025-03-01 08:15:00`.
const fmtTime = (value) => String(value || '').replace('T', ' ').slice(0, 19);

function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...children);
}

const banner = () => document.getElementById('banner');
function showBanner(message) {
  const el = banner();
  el.replaceChildren(
    h('span', {}, message, ' '),
    h('button', { type: 'button', class: 'secondary', onclick: () => openKeyPanel() }, 'Enter API key'),
  );
  el.hidden = false;
}
onUnauthorized((failure) => showBanner(failure.message));

// ---------------------------------------------------------------------------------------------
// The API key panel.

function openKeyPanel() {
  const panel = document.getElementById('key-panel');
  panel.hidden = false;
  document.getElementById('key-toggle').setAttribute('aria-expanded', 'true');
  document.getElementById('key-input').focus();
}

function setupKeyPanel() {
  const panel = document.getElementById('key-panel');
  const toggle = document.getElementById('key-toggle');
  const input = document.getElementById('key-input');
  const status = document.getElementById('key-status');
  const describe = () => {
    status.textContent = apiKey() ? 'A key is saved in this browser.' : 'No key saved: requests are sent without one.';
    toggle.textContent = apiKey() ? 'API key ✓' : 'API key';
  };
  toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) input.focus();
  });
  document.getElementById('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    input.value = '';
    describe();
    banner().hidden = true;
    render();
  });
  document.getElementById('key-clear').addEventListener('click', () => {
    setApiKey('');
    describe();
    render();
  });
  describe();
}

// ---------------------------------------------------------------------------------------------
// Routing: real links, handled in the page (history API); the server answers every /ui path.

let cleanups = [];
let generation = 0;

function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

document.addEventListener('click', (event) => {
  const link = event.target.closest && event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || link.target || link.hasAttribute('download')) return;
  if (!(url.pathname === '/' || url.pathname.startsWith('/ui'))) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener('popstate', () => render());

function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/ui') return ['overview', overviewPage];
  if (path === '/ui/buildings') return ['buildings', buildingsPage];
  const building = path.match(/^\/ui\/buildings\/([^/]+)$/);
  if (building) return ['buildings', (main, live) => buildingPage(main, live, decodeURIComponent(building[1]))];
  if (path === '/ui/duplicates') return ['duplicates', duplicatesPage];
  if (path === '/ui/alerts') return ['alerts', alertsPage];
  if (path === '/ui/upload') return ['upload', uploadPage];
  return [null, (main) => main.append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '/' }, 'Go to the overview.')))];
}

function render() {
  cleanups.forEach((cleanup) => cleanup());
  cleanups = [];
  generation += 1;
  const mine = generation;
  const live = () => mine === generation;
  const [nav, page] = route();
  document.querySelectorAll('[data-nav]').forEach((link) => {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
  const main = document.getElementById('main');
  main.replaceChildren();
  main.removeAttribute('data-ready');
  Promise.resolve(page(main, live))
    .catch((err) => live() && main.append(errorBox(err)))
    .finally(() => live() && main.setAttribute('data-ready', 'true'));
}

// ---------------------------------------------------------------------------------------------
// Overview.

const FILTERS = ['from', 'to', 'provider', 'building_id'];
let alertsAvailable = null;
async function hasAlerts() {
  if (alertsAvailable === null) alertsAvailable = await exists('/alerts');
  return alertsAvailable;
}
let knownProviders = new Set();

function alertList(body) {
  if (Array.isArray(body)) return body;
  return (body && (body.items || body.alerts)) || [];
}
const alertState = (alert) => String(alert.state || alert.status || '').toLowerCase();

async function overviewPage(main, live) {
  const params = new URLSearchParams(location.search);
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || '']));
  const input = (name, label, attrs) =>
    h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), h('input', { id: `f-${name}`, name, value: filters[name], ...attrs }));
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters' },
    input('from', 'From', { type: 'date' }),
    input('to', 'To', { type: 'date' }),
    input('provider', 'Provider', { type: 'text', list: 'providers', placeholder: 'all' }),
    input('building_id', 'Building', { type: 'text', list: 'buildings', placeholder: 'all', autocomplete: 'off' }),
    h('datalist', { id: 'providers' }),
    h('datalist', { id: 'buildings' }),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { class: 'button secondary', href: '/' }, 'Reset')),
  );
  const apply = (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = query(Object.fromEntries(FILTERS.map((name) => [name, String(data.get(name) || '').trim()])));
    if (next !== location.search) navigate(`/${next}`);
  };
  form.addEventListener('submit', apply);
  // Building suggestions are fetched when first wanted, not on the overview's critical path.
  form.querySelector('#f-building_id').addEventListener(
    'focus',
    () => {
      api('/buildings')
        .then((list) => form.querySelector('#buildings').append(...list.map((b) => h('option', { value: b.building_id }))))
        .catch(() => {});
    },
    { once: true },
  );
  form.addEventListener('change', (event) => {
    if (event.target.type === 'date' || event.target.list) apply(event);
  });

  const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'load-status' }, 'Loading…');
  const kpis = h('div', { class: 'kpis', 'data-testid': 'kpis' });
  const chart = h('div', { class: 'chart', role: 'img', 'aria-label': 'Records per status per day, stacked' });
  const reasons = h('div');
  const providers = h('div');
  main.append(
    h('h1', {}, 'Data quality overview'),
    form,
    status,
    kpis,
    section('Records per status per day', chart),
    h('div', { class: 'two wide-right' }, section('Top reason codes', reasons), section('Per provider', providers)),
  );

  const started = performance.now();
  // All at once: the figures, and the firing alerts when the server has an alerts API.
  const [report, alerts] = await Promise.all([
    api(`/quality/overview${query(filters)}`),
    hasAlerts().then((yes) => (yes ? api('/alerts?state=firing&limit=1000').catch(() => null) : null)),
  ]);
  if (!live()) return;
  const elapsed = Math.round(performance.now() - started);
  main.dataset.loadMs = String(elapsed);
  const active = FILTERS.filter((name) => filters[name]).map((name) => `${name} = ${filters[name]}`);
  status.textContent = `${active.length ? `Filtered by ${active.join(', ')}` : 'All data'} · as of ${report.today} · loaded in ${elapsed} ms`;

  const r = report.records;
  const totals = report.completeness.totals;
  const dup = report.rows.duplicates;
  const kpi = (key, label, value, note) =>
    h('div', { class: `kpi ${key}`, 'data-kpi': key }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value), note ? h('span', { class: 'note' }, note) : null);
  kpis.append(
    kpi('records', 'Records', fmtInt(r.total), `${fmtInt(report.rows.total)} rows received`),
    kpi('valid', '✓ VALID', fmtPct(report.shares.valid), `${fmtInt(r.valid)} records`),
    kpi('incomplete', '◐ INCOMPLETE', fmtInt(r.incomplete), fmtPct(report.shares.incomplete)),
    kpi('inconsistent', '✕ INCONSISTENT', fmtInt(r.inconsistent), fmtPct(report.shares.inconsistent)),
    kpi('duplicates', 'Duplicates', fmtInt(dup.exact + dup.conflicting), `${fmtInt(dup.exact)} exact, ${fmtInt(dup.conflicting)} conflicting`),
    kpi('open_conflicts', 'Open conflicts', fmtInt(r.pending), `of ${fmtInt(r.conflict_groups)} conflict groups`),
    kpi('buildings', 'Buildings', fmtInt(totals.buildings)),
    kpi('stale', 'Stale buildings', fmtInt(totals.stale), `no VALID day in ${report.thresholds.stale_days} days`),
  );
  if (alerts) {
    const firing = alertList(alerts).filter((alert) => alertState(alert) === 'firing').length;
    const more = alerts.next_cursor ? '+' : '';
    kpis.append(kpi('alerts', '⚠ Firing alerts', `${fmtInt(firing)}${more}`, h('a', { href: '/ui/alerts' }, 'see alerts')));
  }

  const { days, later } = dailySeries(report.breakdowns.days, report.today);
  if (days.length) stackedDaily(chart, days);
  else chart.append(h('p', { class: 'muted' }, 'No dated records.'));
  if (later) chart.after(h('p', { class: 'muted' }, `${fmtInt(later)} records dated after ${report.today} (date_in_future) are not charted.`));

  const reasonRows = Object.entries(r.reasons)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 10);
  const maxReason = reasonRows.length ? reasonRows[0][1] : 1;
  reasons.append(
    table(
      [
        { label: 'Reason', key: 'reason', cell: ([code]) => h('code', {}, code) },
        { label: 'Records', key: 'count', num: true, cell: ([, n]) => fmtInt(n) },
        {
          label: 'Share',
          key: 'bar',
          cell: ([, n]) => {
            const bar = h('span', { class: 'bar' });
            bar.style.width = `${Math.max(2, (n / maxReason) * 100)}%`;
            return h('span', { class: 'bar-track', 'aria-hidden': 'true' }, bar);
          },
        },
      ],
      reasonRows,
      { testid: 'reasons' },
    ),
  );

  const providerRows = report.breakdowns.providers;
  providerRows.forEach((p) => p.key && knownProviders.add(p.key));
  form.querySelector('#providers').append(...[...knownProviders].sort().map((p) => h('option', { value: p })));
  providers.append(
    table(
      [
        { label: 'Provider', key: 'provider', cell: (p) => p.key || '(none)' },
        { label: 'Records', key: 'total', num: true, cell: (p) => fmtInt(p.total) },
        { label: '✓ VALID', key: 'valid', num: true, cell: (p) => fmtInt(p.valid) },
        { label: '◐ INCOMPLETE', key: 'incomplete', num: true, cell: (p) => fmtInt(p.incomplete) },
        { label: '✕ INCONSISTENT', key: 'inconsistent', num: true, cell: (p) => fmtInt(p.inconsistent) },
        { label: '% VALID', key: 'share', num: true, cell: (p) => fmtPct(p.total ? p.valid / p.total : null) },
      ],
      providerRows,
      { testid: 'providers' },
    ),
  );
}

/** Days up to `today`, every day between the first and the last present (zero when none). */
function dailySeries(breakdown, today) {
  const dated = breakdown.filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d.key));
  const later = dated.filter((d) => d.key > today).reduce((n, d) => n + d.total, 0);
  const kept = dated.filter((d) => d.key <= today).sort((a, b) => (a.key < b.key ? -1 : 1));
  const days = [];
  const byDay = new Map(kept.map((d) => [d.key, d]));
  if (kept.length) {
    const day = new Date(`${kept[0].key}T00:00:00Z`);
    const last = kept[kept.length - 1].key;
    for (let key = kept[0].key; key <= last; day.setUTCDate(day.getUTCDate() + 1), key = day.toISOString().slice(0, 10)) {
      days.push(byDay.get(key) || { key, total: 0, valid: 0, incomplete: 0, inconsistent: 0 });
    }
  }
  return { days, later };
}

const reasonCode = (reason) => (typeof reason === 'string' ? reason : reason.code);
const reasonCodes = (reasons) => (reasons || []).map((reason) => h('code', { title: typeof reason === 'string' ? null : reason.message }, reasonCode(reason)));

// ---------------------------------------------------------------------------------------------
// Buildings.

const PAGE_SIZE = 50;

async function buildingsPage(main, live) {
  main.append(h('h1', {}, 'Buildings'));
  const params = new URLSearchParams(location.search);
  const state = { q: params.get('q') || '', sort: params.get('sort') || 'building_id', dir: params.get('dir') || 'asc', page: 0 };
  const data = await api('/quality/buildings');
  if (!live()) return;
  const rows = data.buildings.map((b) => ({
    ...b,
    completeness: b.expected_days ? b.valid_days / b.expected_days : null,
    share_valid: b.total ? b.valid / b.total : null,
  }));
  const columns = [
    { key: 'building_id', label: 'Building', cell: (b) => h('a', { href: `/ui/buildings/${encodeURIComponent(b.building_id)}` }, b.building_id) },
    { key: 'total', label: 'Records', num: true, cell: (b) => fmtInt(b.total) },
    { key: 'completeness', label: 'Completeness', num: true, cell: (b) => fmtPct(b.completeness) },
    { key: 'gaps', label: 'Gaps', num: true, cell: (b) => `${fmtInt(b.gaps)} (${fmtInt(b.gap_days)} d)` },
    { key: 'last_valid_day', label: 'Last VALID day', cell: (b) => [b.last_valid_day || '—', b.stale ? h('span', { class: 'tag warn' }, '⚠ stale') : null] },
    { key: 'share_valid', label: 'Share VALID', num: true, cell: (b) => fmtPct(b.share_valid) },
    {
      key: 'anomalies',
      label: 'Anomalies',
      num: true,
      sortable: false,
      cell: (b) => {
        const button = h('button', { type: 'button', class: 'small secondary', 'aria-label': `Count anomalies of ${b.building_id}` }, 'Count');
        button.addEventListener('click', async () => {
          button.disabled = true;
          button.textContent = '…';
          try {
            const body = await api(`/buildings/${encodeURIComponent(b.building_id)}/anomalies`);
            button.replaceWith(h('span', { 'data-anomalies': b.building_id }, fmtInt(body.anomalies.length)));
          } catch (err) {
            button.replaceWith(h('span', { class: 'muted', title: err.message }, err.status === 422 ? 'too little data' : 'error'));
          }
        });
        return button;
      },
    },
  ];
  const search = h('input', { id: 'b-search', type: 'search', value: state.q, placeholder: 'B00001', autocomplete: 'off' });
  const count = h('p', { class: 'muted', role: 'status' });
  const holder = h('div');
  const pager = h('div', { class: 'pager' });
  main.append(
    h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'b-search' }, 'Search buildings'), search)),
    count,
    holder,
    pager,
  );
  const keep = () => {
    const url = `/ui/buildings${query({ q: state.q, sort: state.sort === 'building_id' ? '' : state.sort, dir: state.dir === 'asc' ? '' : state.dir })}`;
    history.replaceState(null, '', url);
  };
  const draw = () => {
    const needle = state.q.toLowerCase();
    const shown = rows.filter((b) => b.building_id.toLowerCase().includes(needle));
    const sign = state.dir === 'asc' ? 1 : -1;
    shown.sort((a, b) => {
      const x = a[state.sort];
      const y = b[state.sort];
      if (x === y) return a.building_id < b.building_id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const slice = shown.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    count.textContent = `${fmtInt(shown.length)} of ${fmtInt(rows.length)} buildings`;
    const t = table(columns, slice, { testid: 'buildings' });
    t.querySelectorAll('th').forEach((th, i) => {
      const column = columns[i];
      if (column.sortable === false) return;
      const current = state.sort === column.key;
      th.setAttribute('aria-sort', current ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none');
      const arrow = current ? (state.dir === 'asc' ? ' ▲' : ' ▼') : '';
      th.replaceChildren(
        h(
          'button',
          {
            type: 'button',
            class: 'sort',
            onclick: () => {
              state.dir = current && state.dir === 'asc' ? 'desc' : 'asc';
              state.sort = column.key;
              keep();
              draw();
              holder.querySelector(`th:nth-child(${i + 1}) button`).focus();
            },
          },
          column.label,
          h('span', { 'aria-hidden': 'true' }, arrow),
        ),
      );
    });
    holder.replaceChildren(t);
    pager.replaceChildren(
      h('button', { type: 'button', class: 'secondary', disabled: state.page === 0, onclick: () => { state.page -= 1; draw(); } }, '← Previous'),
      h('span', {}, `Page ${state.page + 1} of ${pages}`),
      h('button', { type: 'button', class: 'secondary', disabled: state.page >= pages - 1, onclick: () => { state.page += 1; draw(); } }, 'Next →'),
    );
  };
  search.addEventListener('input', () => {
    state.q = search.value.trim();
    state.page = 0;
    keep();
    draw();
  });
  draw();
}

// ---------------------------------------------------------------------------------------------
// One building.

async function buildingPage(main, live, id) {
  const enc = encodeURIComponent(id);
  main.append(h('p', {}, h('a', { href: '/ui/buildings' }, '← All buildings')), h('h1', {}, `Building ${id}`));
  const kpis = h('div', { class: 'kpis', 'data-testid': 'kpis' });
  const series = h('div', { class: 'chart', role: 'img', 'aria-label': `Daily consumption and temperature of ${id}, anomalies marked` });
  const anomalyNote = h('p', { class: 'muted' });
  const scatter = h('div', { class: 'chart', role: 'img', 'aria-label': 'Consumption against temperature with the baseline' });
  const metrics = h('div');
  const gaps = h('div');
  const records = h('div');
  main.append(
    kpis,
    section('Consumption and temperature', series, anomalyNote),
    h('div', { class: 'two' }, section('Consumption vs temperature', scatter), section('Baseline', metrics)),
    section('Gaps (days without a VALID record)', gaps),
    section('Records', records),
  );
  const soft = (promise) => promise.catch((err) => err);
  const [quality, points, anomalies, baseline, gapList] = await Promise.all([
    api(`/quality/buildings?building_id=${enc}`),
    soft(api(`/buildings/${enc}/series?granularity=day`)),
    soft(api(`/buildings/${enc}/anomalies`)),
    soft(api(`/buildings/${enc}/baseline`)),
    soft(api(`/quality/gaps?building_id=${enc}`)),
  ]);
  if (!live()) return;
  const b = quality.buildings.find((x) => x.building_id === id);
  if (!b) {
    main.append(errorBox(`No records for building ${id}.`));
    return;
  }
  const kpi = (key, label, value) => h('div', { class: 'kpi', 'data-kpi': key }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
  kpis.append(
    kpi('records', 'Records', fmtInt(b.total)),
    kpi('valid', '✓ VALID', fmtInt(b.valid)),
    kpi('incomplete', '◐ INCOMPLETE', fmtInt(b.incomplete)),
    kpi('inconsistent', '✕ INCONSISTENT', fmtInt(b.inconsistent)),
    kpi('completeness', 'Completeness', fmtPct(b.expected_days ? b.valid_days / b.expected_days : null)),
    kpi('gaps', 'Gaps', fmtInt(b.gaps)),
    kpi('last_valid_day', 'Last VALID day', [b.last_valid_day || '—', b.stale ? h('span', { class: 'tag warn' }, '⚠ stale') : null]),
    kpi('anomalies', 'Anomalies', anomalies instanceof Error ? '—' : fmtInt(anomalies.anomalies.length)),
  );
  if (points instanceof Error) series.append(errorBox(points));
  else {
    const list = anomalies instanceof Error ? [] : anomalies.anomalies;
    consumptionChart(series, points.points, list);
    anomalyNote.textContent = anomalies instanceof Error
      ? anomalies.message
      : `${list.length} anomalous days (${anomalies.method}, threshold ${anomalies.threshold}, window ${anomalies.window_days} days), marked ◆.`;
  }
  if (baseline instanceof Error) {
    metrics.append(errorBox(baseline));
    if (!(points instanceof Error)) scatterChart(scatter, points.points, null);
  } else {
    const m = baseline.model;
    if (!(points instanceof Error)) scatterChart(scatter, points.points, m);
    const g = m.guideline14;
    const rows = [
      ['Model', m.model_type],
      ['Days used', fmtInt(m.n)],
      ['Intercept', fmtNum(m.intercept)],
      ['Heating balance point', m.heating_balance_point === null ? '—' : `${fmtNum(m.heating_balance_point, 1)} °C`],
      ['Heating slope', fmtNum(m.heating_slope)],
      ['Cooling balance point', m.cooling_balance_point === null ? '—' : `${fmtNum(m.cooling_balance_point, 1)} °C`],
      ['Cooling slope', fmtNum(m.cooling_slope)],
      ['R²', fmtNum(m.r2, 3)],
      ['CV(RMSE)', fmtPct(m.cv_rmse)],
      ['NMBE', fmtPct(m.nmbe, 2)],
      ['Data sufficiency', fmtPct(m.data_sufficiency)],
      ['ASHRAE Guideline 14', g.passes ? '✓ passes' : '✕ does not pass'],
      ['Period', `${m.period.start} – ${m.period.end}`],
    ];
    metrics.append(
      h('dl', { class: 'metrics', 'data-testid': 'baseline' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    );
    if (m.warnings && m.warnings.length) metrics.append(h('p', { class: 'muted' }, `Warnings: ${m.warnings.join(', ')}`));
  }
  if (gapList instanceof Error) gaps.append(errorBox(gapList));
  else {
    const first = gapList.slice(0, 100);
    gaps.append(
      h('p', { class: 'muted' }, `${fmtInt(gapList.length)} gaps${gapList.length > first.length ? ', the first 100 shown' : ''}.`),
      table(
        [
          { label: 'From', key: 'start', cell: (g) => g.start },
          { label: 'To', key: 'end', cell: (g) => g.end },
          { label: 'Days', key: 'days', num: true, cell: (g) => fmtInt(g.days) },
        ],
        first,
        { testid: 'gaps' },
      ),
    );
  }
  recordsTable(records, live, { building_id: id });
}

/** A paginated table of records (keyset cursor; previous pages kept in a stack). */
function recordsTable(holder, live, filters) {
  const cursors = [''];
  const statusSelect = h(
    'select',
    { id: 'r-status' },
    h('option', { value: '' }, 'all'),
    ['VALID', 'INCOMPLETE', 'INCONSISTENT'].map((s) => h('option', { value: s }, s)),
  );
  const body = h('div');
  const pager = h('div', { class: 'pager' });
  holder.append(h('div', { class: 'filters' }, h('div', { class: 'field' }, h('label', { for: 'r-status' }, 'Status'), statusSelect)), body, pager);
  const load = async () => {
    const cursor = cursors[cursors.length - 1];
    body.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await api(`/records${query({ ...filters, status: statusSelect.value, limit: 25, cursor })}`);
    } catch (err) {
      body.replaceChildren(errorBox(err));
      return;
    } finally {
      body.removeAttribute('aria-busy');
    }
    if (!live()) return;
    body.replaceChildren(
      table(
        [
          { label: 'Id', key: 'id', num: true, cell: (r) => r.id },
          { label: 'Date', key: 'date', cell: (r) => r.date || '—' },
          { label: 'Provider', key: 'provider', cell: (r) => r.provider || '—' },
          { label: 'Consumption', key: 'consumption', num: true, cell: (r) => fmtNum(r.consumption, 3) },
          { label: 'Temp. °C', key: 'temperature', num: true, cell: (r) => fmtNum(r.temperature, 1) },
          { label: 'Status', key: 'status', cell: (r) => badge(r.quality_status) },
          { label: 'Reasons', key: 'reasons', cell: (r) => (r.reasons.length ? reasonCodes(r.reasons) : '—') },
        ],
        page.items,
        { testid: 'records' },
      ),
    );
    pager.replaceChildren(
      h('button', { type: 'button', class: 'secondary', disabled: cursors.length <= 1, onclick: () => { cursors.pop(); load(); } }, '← Previous'),
      h('span', { 'data-testid': 'records-page' }, `Page ${cursors.length}`),
      h('button', { type: 'button', class: 'secondary', disabled: !page.next_cursor, onclick: () => { cursors.push(page.next_cursor); load(); } }, 'Next →'),
    );
  };
  statusSelect.addEventListener('change', () => {
    cursors.length = 1;
    load();
  });
  return load();
}

// ---------------------------------------------------------------------------------------------
// Duplicates.

const POLICIES = ['prefer_valid', 'keep_first', 'keep_latest', 'manual'];

async function duplicatesPage(main, live) {
  main.append(h('h1', {}, 'Duplicates'), h('p', { class: 'muted' }, 'Conflict groups: one key (building, date, provider) received with differing values. Resolving needs an admin key.'));
  const params = new URLSearchParams(location.search);
  const building = h('input', { id: 'd-building', type: 'text', value: params.get('building_id') || '', placeholder: 'all' });
  const pending = h('input', { id: 'd-pending', type: 'checkbox', checked: params.get('pending') === 'true' });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'field' }, h('label', { for: 'd-building' }, 'Building'), building),
    h('div', { class: 'field check' }, pending, h('label', { for: 'd-pending' }, 'Only awaiting a decision')),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Apply')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    navigate(`/ui/duplicates${query({ building_id: building.value.trim(), pending: pending.checked ? 'true' : '' })}`);
  });
  const list = h('div', { class: 'groups' });
  const pager = h('div', { class: 'pager' });
  main.append(form, list, pager);
  const cursors = [''];
  const filters = { building_id: params.get('building_id') || '', pending: params.get('pending') || '' };
  const load = async () => {
    const page = await api(`/duplicates${query({ ...filters, limit: 20, cursor: cursors[cursors.length - 1] })}`);
    if (!live()) return;
    list.replaceChildren(...(page.items.length ? page.items.map((group) => groupCard(group, load)) : [h('p', { class: 'muted' }, 'No conflict groups.')]));
    pager.replaceChildren(
      h('button', { type: 'button', class: 'secondary', disabled: cursors.length <= 1, onclick: () => { cursors.pop(); load(); } }, '← Previous'),
      h('span', {}, `Page ${cursors.length}`),
      h('button', { type: 'button', class: 'secondary', disabled: page.next_after === null || page.next_after === undefined, onclick: () => { cursors.push(page.next_after); load(); } }, 'Next →'),
    );
  };
  await load();
}

function groupCard(group, reload) {
  const message = h('p', { class: 'outcome', role: 'status' });
  const resolve = async (body, button) => {
    button.disabled = true;
    message.className = 'outcome';
    message.textContent = 'Resolving…';
    try {
      const outcome = await postJson(`/duplicates/${group.record_id}:resolve`, body);
      message.textContent = `✓ Resolved${outcome && outcome.changed !== undefined ? (outcome.changed ? ': the winner changed' : ': the winner stays') : ''}.`;
      setTimeout(() => reload().catch(() => {}), 600);
    } catch (err) {
      message.className = 'outcome error';
      message.textContent = `⚠ ${err.message}`;
    } finally {
      button.disabled = false;
    }
  };
  const policy = h('select', { id: `p-${group.record_id}` }, POLICIES.map((p) => h('option', { value: p }, p)));
  const apply = h('button', { type: 'button', class: 'secondary' }, 'Apply policy');
  apply.addEventListener('click', () => resolve({ policy: policy.value }, apply));
  return h(
    'article',
    { class: 'group', 'data-group': group.record_id },
    h(
      'h2',
      {},
      h('a', { href: `/ui/buildings/${encodeURIComponent(group.building_id)}` }, group.building_id),
      ` · ${group.date} · ${group.provider} `,
      badge(group.status),
      group.pending ? h('span', { class: 'tag warn' }, '⚠ awaiting a decision') : null,
    ),
    table(
      [
        { label: 'Batch · line', key: 'version', cell: (v) => `${v.batch_id} · ${v.line}` },
        { label: 'Received', key: 'received', cell: (v) => fmtTime(v.received_at) },
        { label: 'Consumption', key: 'consumption', num: true, cell: (v) => fmtNum(v.consumption, 3) },
        { label: 'Temp. °C', key: 'temperature', num: true, cell: (v) => fmtNum(v.temperature, 1) },
        { label: 'Status', key: 'status', cell: (v) => [badge(v.status), v.reasons && v.reasons.length ? [' ', reasonCodes(v.reasons)] : null] },
        {
          label: 'Winner',
          key: 'winner',
          cell: (v) => {
            if (v.winner) return h('strong', {}, '★ winner');
            const button = h('button', { type: 'button', class: 'small', 'aria-label': `Keep batch ${v.batch_id} line ${v.line}` }, 'Keep this');
            button.addEventListener('click', () => resolve({ version: { batch_id: v.batch_id, line: v.line } }, button));
            return button;
          },
        },
      ],
      group.versions,
    ),
    h('div', { class: 'row' }, h('label', { for: `p-${group.record_id}` }, 'Or resolve with a policy'), policy, apply),
    message,
  );
}

// ---------------------------------------------------------------------------------------------
// Alerts (live: server-sent events read with fetch streaming, so the key can be sent).

async function alertsPage(main, live) {
  main.append(h('h1', {}, 'Alerts'));
  if (!(await hasAlerts())) {
    main.append(h('p', { class: 'muted', 'data-testid': 'alerts-missing' }, 'This server has no alerts API (/api/v1/alerts).'));
    return;
  }
  const status = h('p', { class: 'live', role: 'status', 'data-testid': 'stream-status' }, '○ connecting…');
  const holder = h('div');
  const note = h('p', { class: 'outcome', role: 'status' });
  main.append(status, note, holder);
  const alerts = new Map();
  const draw = () => {
    const rows = [...alerts.values()].sort((a, b) => String(b.fired_at || b.started_at || b.created_at || '').localeCompare(String(a.fired_at || a.started_at || a.created_at || '')));
    holder.replaceChildren(
      table(
        [
          { label: 'State', key: 'state', cell: (a) => stateTag(alertState(a)) },
          { label: 'Severity', key: 'severity', cell: (a) => a.severity || '—' },
          { label: 'Rule', key: 'rule', cell: (a) => a.rule_name || a.rule || a.rule_id || '—' },
          { label: 'Building', key: 'building', cell: (a) => buildingLink(a.building || a.building_id) },
          { label: 'Message', key: 'message', cell: (a) => a.message || a.subject || '—' },
          { label: 'Since', key: 'since', cell: (a) => fmtTime(a.fired_at || a.started_at || a.created_at || '—') },
          {
            label: 'Acknowledge',
            key: 'ack',
            cell: (a) => {
              if (a.acknowledged || a.acknowledged_at || alertState(a) === 'acknowledged') return '✓ acknowledged';
              const button = h('button', { type: 'button', class: 'small', 'aria-label': `Acknowledge alert ${a.id}` }, 'Acknowledge');
              button.addEventListener('click', async () => {
                button.disabled = true;
                try {
                  const updated = await api(`/alerts/${encodeURIComponent(a.id)}:ack`, { method: 'POST' });
                  alerts.set(String(a.id), updated && updated.id !== undefined ? updated : { ...a, acknowledged: true });
                  note.className = 'outcome';
                  note.textContent = `✓ Alert ${a.id} acknowledged.`;
                  draw();
                } catch (err) {
                  note.className = 'outcome error';
                  note.textContent = `⚠ ${err.message}`;
                  button.disabled = false;
                }
              });
              return button;
            },
          },
        ],
        rows,
        { testid: 'alerts' },
      ),
    );
  };
  const initial = await api('/alerts');
  if (!live()) return;
  alertList(initial).forEach((a) => alerts.set(String(a.id), a));
  draw();
  const stop = streamEvents(
    '/alerts/stream',
    (message) => {
      let body;
      try {
        body = JSON.parse(message.data);
      } catch {
        return;
      }
      const alert = body && body.alert ? body.alert : body;
      if (!alert || alert.id === undefined) return;
      alerts.set(String(alert.id), { ...(alerts.get(String(alert.id)) || {}), ...alert });
      draw();
    },
    (state) => {
      if (state === 'open') status.textContent = '● live: new alerts appear here as they fire';
      else if (state === 'closed') status.textContent = '○ stream closed: reconnecting…';
      else status.textContent = `⚠ ${state.message}`;
    },
  );
  cleanups.push(stop);
}

const buildingLink = (id) => (id ? h('a', { href: `/ui/buildings/${encodeURIComponent(id)}` }, id) : '—');

function stateTag(state) {
  if (state === 'firing') return h('span', { class: 'badge inconsistent' }, h('span', { 'aria-hidden': 'true' }, '⚠'), ' firing');
  if (state === 'resolved') return h('span', { class: 'badge valid' }, h('span', { 'aria-hidden': 'true' }, '✓'), ' resolved');
  return h('span', { class: 'badge incomplete' }, h('span', { 'aria-hidden': 'true' }, '•'), ` ${state || 'unknown'}`);
}

// ---------------------------------------------------------------------------------------------
// Upload.

const TYPES = { csv: 'text/csv', ndjson: 'application/x-ndjson', jsonl: 'application/x-ndjson', json: 'application/json' };

function uploadPage(main) {
  main.append(h('h1', {}, 'Upload records'), h('p', { class: 'muted' }, 'A CSV (building_id, date, consumption, temperature, provider), NDJSON or JSON file is ingested like `emdp ingest`: every row is classified and stored. Needs an ingester or admin key when keys are on.'));
  const input = h('input', { id: 'u-file', type: 'file', accept: '.csv,.ndjson,.jsonl,.json,text/csv,application/json' });
  const chosen = h('p', { class: 'muted', 'data-testid': 'chosen' }, 'No file chosen.');
  const zone = h('div', { class: 'drop' }, h('label', { for: 'u-file' }, h('strong', {}, 'Choose a file'), ' or drop it here'), input, chosen);
  // The API's column=FIELD=NAME, for exports whose columns (or keys) are named otherwise; an
  // empty box keeps the field's own name.
  const FIELDS = ['building_id', 'date', 'consumption', 'temperature', 'provider'];
  const columns = FIELDS.map((field) => h('input', { id: `u-col-${field}`, type: 'text', placeholder: field, autocomplete: 'off', spellcheck: 'false' }));
  const mapping = h(
    'details',
    { class: 'mapping' },
    h('summary', {}, 'Columns named otherwise'),
    h('p', { class: 'muted' }, 'The column (CSV) or key (JSON) each field is read from, when the file does not use these names, as `emdp ingest --column` does.'),
    h('div', { class: 'filters' }, FIELDS.map((field, i) => h('div', { class: 'field' }, h('label', { for: `u-col-${field}` }, field), columns[i]))),
  );
  const send = h('button', { type: 'button', disabled: true }, 'Upload');
  const progress = h('progress', { max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const progressText = h('p', { class: 'muted', role: 'status', 'data-testid': 'progress' });
  const result = h('div', { 'data-testid': 'upload-result' });
  const recent = h('div', { 'data-testid': 'batches' });
  main.append(zone, mapping, h('div', { class: 'row' }, send), progress, progressText, result, recent);
  const showBatches = () => batchesPanel().then((panel) => recent.replaceChildren(panel));
  showBatches();
  let file = null;
  const pick = (f) => {
    file = f;
    chosen.textContent = f ? `${f.name} (${fmtInt(f.size)} bytes)` : 'No file chosen.';
    send.disabled = !f;
  };
  input.addEventListener('change', () => pick(input.files[0] || null));
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (event.dataTransfer.files.length) pick(event.dataTransfer.files[0]);
  });
  send.addEventListener('click', () => {
    if (!file) return;
    const ext = (file.name.split('.').pop() || '').toLowerCase();
    const type = TYPES[ext] || (file.type === 'application/json' ? 'application/json' : 'text/csv');
    const query = new URLSearchParams();
    FIELDS.forEach((field, i) => {
      const name = columns[i].value.trim();
      if (name && name !== field) query.append('column', `${field}=${name}`);
    });
    const xhr = new XMLHttpRequest();
    const search = query.toString();
    xhr.open('POST', search ? `/api/v1/records?${search}` : '/api/v1/records');
    for (const [name, value] of Object.entries(authHeaders({ 'Content-Type': type }))) xhr.setRequestHeader(name, value);
    progress.hidden = false;
    progress.value = 0;
    result.replaceChildren();
    send.disabled = true;
    xhr.upload.addEventListener('progress', (event) => {
      const total = event.lengthComputable ? event.total : file.size;
      progress.value = total ? Math.round((event.loaded / total) * 100) : 0;
      progressText.textContent = `Sending: ${fmtInt(event.loaded)} of ${fmtInt(total)} bytes`;
    });
    xhr.upload.addEventListener('load', () => {
      progress.removeAttribute('value');
      progressText.textContent = `Sent ${fmtInt(file.size)} bytes; the server is classifying and storing…`;
    });
    xhr.addEventListener('load', async () => {
      send.disabled = false;
      progress.hidden = true;
      const response = new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText, headers: { 'Retry-After': xhr.getResponseHeader('Retry-After') || '' } });
      if (xhr.status < 200 || xhr.status >= 300) {
        progressText.textContent = 'Upload failed.';
        result.replaceChildren(errorBox(await failureOf(response)));
        return;
      }
      progressText.textContent = `Done: ${fmtInt(file.size)} bytes ingested.`;
      const body = JSON.parse(xhr.responseText);
      result.replaceChildren(uploadSummary(body.summary || summaryOfOne(body)));
      showBatches();
    });
    xhr.addEventListener('error', () => {
      send.disabled = false;
      progress.hidden = true;
      progressText.textContent = 'Upload failed: the server cannot be reached.';
    });
    xhr.send(file);
  });
}

// The latest ingestions (`GET /api/v1/batches`), whoever sent them: uploads, `emdp ingest`,
// MQTT. A batch without an end was cut short or is being written.
async function batchesPanel() {
  try {
    const page = await api(`/batches${query({ limit: 10 })}`);
    return section(
      'Recent batches',
      table(
        [
          { label: 'Batch', key: 'id', num: true, cell: (b) => String(b.id) },
          { label: 'Source', key: 'source', cell: (b) => b.source },
          { label: 'Started', key: 'started', cell: (b) => fmtTime(b.started_at) },
          { label: 'Finished', key: 'finished', cell: (b) => (b.finished_at ? fmtTime(b.finished_at) : 'unfinished') },
          { label: 'Rows stored', key: 'rows', num: true, cell: (b) => fmtInt(b.rows_stored) },
        ],
        page.items,
        { caption: 'Uploads, `emdp ingest` runs and MQTT; one without an end was cut short or is being written.', testid: 'batch-table' },
      ),
    );
  } catch (err) {
    return errorBox(err);
  }
}

function summaryOfOne(record) {
  const status = record.quality_status;
  return { total: 1, valid: +(status === 'VALID'), incomplete: +(status === 'INCOMPLETE'), inconsistent: +(status === 'INCONSISTENT'), reasons: {} };
}

function uploadSummary(s) {
  const rows = [
    ['total', 'Rows', s.total],
    ['valid', '✓ VALID', s.valid],
    ['incomplete', '◐ INCOMPLETE', s.incomplete],
    ['inconsistent', '✕ INCONSISTENT', s.inconsistent],
  ];
  if (s.duplicates) rows.push(['exact', 'Exact duplicates', s.duplicates.exact], ['conflicting', 'Conflicting duplicates', s.duplicates.conflicting]);
  if (s.stored) rows.push(['inserted', 'Inserted', s.stored.inserted], ['skipped', 'Duplicates skipped', s.stored.duplicates_skipped], ['conflicts', 'Conflicts', s.stored.conflicts]);
  const reasons = Object.entries(s.reasons || {}).filter(([, n]) => n > 0);
  return section(
    `Summary${s.batch_id ? ` of batch ${s.batch_id}` : ''}`,
    h('dl', { class: 'metrics', 'data-testid': 'summary' }, rows.map(([key, label, value]) => [h('dt', {}, label), h('dd', { 'data-key': key }, fmtInt(value))])),
    reasons.length ? h('p', {}, 'Reasons: ', reasons.map(([code, n]) => [h('code', {}, code), ` ${fmtInt(n)}  `])) : null,
  );
}

// ---------------------------------------------------------------------------------------------

setupKeyPanel();
render();
