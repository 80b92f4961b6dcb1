// One building's page (`/ui/buildings/{id}`): its quality figures, daily consumption and
// temperature with anomalies, the baseline against temperature with its metrics, its gaps and
// its records, 25 a page.

import { allPages, api, query, settled } from '../api.js';
import { consumptionChart, scatterChart } from '../charts.js';
import { badge, cursorPager, errorBox, fmtInt, fmtNum, fmtPct, h, kpi, reasonCodes, section, table } from '../ui.js';

/** Draws building `id`'s page into `main`. */
export async function buildingPage(main, { live }, id) {
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
  const [quality, points, anomalies, baseline, gapList] = await settled([
    api(`/quality/buildings?building_id=${enc}`),
    soft(api(`/buildings/${enc}/series?granularity=day`)),
    soft(api(`/buildings/${enc}/anomalies`)),
    soft(api(`/buildings/${enc}/baseline`)),
    soft(allPages(`/quality/gaps?building_id=${enc}`, 'items').then((page) => page.items)),
  ]);
  if (!live()) return;
  const b = quality.buildings.find((x) => x.building_id === id);
  if (!b) {
    main.append(errorBox(`No records for building ${id}.`));
    return;
  }
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
    pager.replaceChildren(...cursorPager(cursors, page.next_cursor, load, { 'data-testid': 'records-page' }));
  };
  statusSelect.addEventListener('change', () => {
    cursors.length = 1;
    load();
  });
  return load();
}
