// The duplicates page (`/ui/duplicates`): conflict groups with every version, resolved by picking
// a version or applying a policy (an admin key's right: a 403 is shown as a message).

import { api, postJson, query } from '../api.js';
import { badge, buildingLink, cursorPager, fmtNum, fmtTime, h, reasonCodes, table } from '../ui.js';

const POLICIES = ['prefer_valid', 'keep_first', 'keep_latest', 'manual'];

/** Draws the duplicates page into `main`. */
export async function duplicatesPage(main, { live, navigate }) {
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
    pager.replaceChildren(...cursorPager(cursors, page.next_cursor, load));
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
      buildingLink(group.building_id),
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
