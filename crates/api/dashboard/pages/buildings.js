// The buildings page (`/ui/buildings`): every building's quality figures, sortable by any column,
// searchable (both kept in the URL), 50 a page; anomalies are counted on demand.

import { allPages, api, query } from '../api.js';
import { buildingLink, fmtInt, fmtPct, h, pagerControls, table } from '../ui.js';

const PAGE_SIZE = 50;

/** Draws the buildings page into `main`. */
export async function buildingsPage(main, { live }) {
  main.append(h('h1', {}, 'Buildings'));
  const params = new URLSearchParams(location.search);
  const state = { q: params.get('q') || '', sort: params.get('sort') || 'building_id', dir: params.get('dir') || 'asc', page: 0 };
  const data = await allPages('/quality/buildings', 'buildings');
  if (!live()) return;
  const rows = data.buildings.map((b) => ({
    ...b,
    completeness: b.expected_days ? b.valid_days / b.expected_days : null,
    share_valid: b.total ? b.valid / b.total : null,
  }));
  const columns = [
    { key: 'building_id', label: 'Building', cell: (b) => buildingLink(b.building_id) },
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
    const turn = (by) => () => {
      state.page += by;
      draw();
    };
    pager.replaceChildren(
      ...pagerControls(state.page > 0 ? turn(-1) : null, h('span', {}, `Page ${state.page + 1} of ${pages}`), state.page < pages - 1 ? turn(1) : null),
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
