// The overview (`/`): KPIs, records per status per day, the top reason codes and a per-provider
// table, for the filters kept in the URL; one request for the figures (`/quality/overview`),
// every one of them filtered (the stale buildings and firing alerts are those of the buildings
// the filter covers).

import { api, query } from '../api.js';
import { stackedDaily } from '../charts.js';
import { fmtInt, fmtPct, h, kpi, section, table } from '../ui.js';

const FILTERS = ['from', 'to', 'provider', 'building_id'];
// The providers seen so far, offered as suggestions (kept while the dashboard is open).
const knownProviders = new Set();

/** Draws the overview into `main`. */
export async function overviewPage(main, { live, navigate }) {
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
  const report = await api(`/quality/overview${query(filters)}`);
  if (!live()) return;
  const elapsed = Math.round(performance.now() - started);
  main.dataset.loadMs = String(elapsed);
  const active = FILTERS.filter((name) => filters[name]).map((name) => `${name} = ${filters[name]}`);
  status.textContent = `${active.length ? `Filtered by ${active.join(', ')}` : 'All data'} · as of ${report.today} · loaded in ${elapsed} ms`;

  const r = report.records;
  const totals = report.completeness.totals;
  const dup = report.rows.duplicates;
  const redelivered = report.rows.redelivered;
  // Under a filter, the buildings, stale buildings and alerts are the filtered buildings'.
  const of = active.length ? ' of the filtered buildings' : '';
  // The overview's tiles carry their key as a class: the status tiles are coloured.
  const tile = (key, label, value, note) => kpi(key, label, value, { note, accent: true });
  kpis.append(
    tile('records', 'Records', fmtInt(r.total), `${fmtInt(report.rows.total + redelivered)} rows received`),
    tile('valid', '✓ VALID', fmtPct(report.shares.valid), `${fmtInt(r.valid)} records`),
    tile('incomplete', '◐ INCOMPLETE', fmtInt(r.incomplete), fmtPct(report.shares.incomplete)),
    tile('inconsistent', '✕ INCONSISTENT', fmtInt(r.inconsistent), fmtPct(report.shares.inconsistent)),
    tile('duplicates', 'Duplicates', fmtInt(dup.exact + dup.conflicting), `${fmtInt(dup.exact)} exact, ${fmtInt(dup.conflicting)} conflicting`),
    tile('redelivered', 'Re-delivered', fmtInt(redelivered), 'rows already stored by an earlier batch'),
    tile('open_conflicts', 'Open conflicts', fmtInt(r.pending), `of ${fmtInt(r.conflict_groups)} conflict groups`),
    tile('buildings', 'Buildings', fmtInt(totals.buildings)),
    tile('stale', 'Stale buildings', fmtInt(totals.stale), `no VALID day in ${report.thresholds.stale_days} days${of}`),
    tile('alerts', '⚠ Firing alerts', fmtInt(report.alerts.firing), h('span', {}, active.length ? 'about the filtered buildings · ' : '', h('a', { href: '/ui/alerts' }, 'see alerts'))),
  );

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
