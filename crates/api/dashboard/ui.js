// What every page builds with: DOM nodes (no innerHTML: text is always text), the formatting of
// numbers and API times, and the pieces the pages are made of (panels, tables, KPI tiles, status
// badges, pagers). Pages import these from here; none keeps a copy.

/** An element: `attrs` (`on…` adds a listener, `class`, `dataset`, `true` for a bare attribute; null, undefined and false are left out) and children (nodes or text, nested arrays flattened). */
export function h(tag, attrs = {}, ...children) {
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

// Formatting.

/** A whole number with thousands separators (`1,234`), or '—' when there is none. */
export const fmtInt = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'));
/** A share (0.5) as a percentage (`50.0 %`, non-breaking space), or '—' when there is none. */
export const fmtPct = (x, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(digits)}\u00a0%`;
/** A number with at most `digits` decimals and thousands separators, or '—' when there is none. */
export const fmtNum = (x, digits = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits });
/** An API time (RFC 3339) to the second, as the tables show it: `2025-03-01 08:15:00`. */
export const fmtTime = (value) => String(value || '').replace('T', ' ').slice(0, 19);

// Pieces of pages.

const STATUS = {
  VALID: { icon: '✓', cls: 'valid' },
  INCOMPLETE: { icon: '◐', cls: 'incomplete' },
  INCONSISTENT: { icon: '✕', cls: 'inconsistent' },
};

/** A record's quality status as text with its icon and colour (`✓ VALID`). */
export function badge(status) {
  const s = STATUS[status] || { icon: '?', cls: 'unknown' };
  return h('span', { class: `badge ${s.cls}` }, h('span', { 'aria-hidden': 'true' }, s.icon), ' ', status || 'unknown');
}

/** The codes of a record's or version's rule violations (`[{code, message}]`; the message as a tooltip). */
export const reasonCodes = (reasons) =>
  (reasons || []).map((reason) => h('code', { title: reason.message }, reason.code));

/** A link to a building's page, or '—' without a building. */
export const buildingLink = (id) => (id ? h('a', { href: `/ui/buildings/${encodeURIComponent(id)}` }, id) : '—');

/** A failure (an Error, such as an ApiFailure, or a message) shown as an alert. */
export function errorBox(err) {
  const message = err instanceof Error ? err.message : String(err);
  return h('p', { class: 'error', role: 'alert' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), message);
}

/**
 * A table: `columns` are `{label, key, num, cell(row)}` (`key` names the cells' `data-col`,
 * `num` aligns them right), one line per row of `rows`, 'Nothing to show.' without any.
 */
export function table(columns, rows, { caption, testid } = {}) {
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

/** A titled panel. */
export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...children);
}

/**
 * A KPI tile (`data-kpi` = `key`): label, value and an optional note; `accent` also gives it
 * `key` as a class, which colours the status tiles (valid, incomplete, inconsistent).
 */
export function kpi(key, label, value, { note = null, accent = false } = {}) {
  return h(
    'div',
    { class: accent ? `kpi ${key}` : 'kpi', 'data-kpi': key },
    h('span', { class: 'label' }, label),
    h('span', { class: 'value' }, value),
    note ? h('span', { class: 'note' }, note) : null,
  );
}

/** A pager's controls: '← Previous', `label`, 'Next →'; a button without a handler is disabled. */
export function pagerControls(previous, label, next) {
  return [
    h('button', { type: 'button', class: 'secondary', disabled: !previous, onclick: previous }, '← Previous'),
    label,
    h('button', { type: 'button', class: 'secondary', disabled: !next, onclick: next }, 'Next →'),
  ];
}

/**
 * Pager controls over a stack of keyset cursors (`cursors`, '' first for the first page):
 * Previous drops the last, Next pushes `next` (none on the last page); both then call `load`.
 */
export function cursorPager(cursors, next, load, labelAttrs = {}) {
  const previous = () => {
    cursors.pop();
    load();
  };
  const forward = () => {
    cursors.push(next);
    load();
  };
  const more = next !== null && next !== undefined && next !== '';
  return pagerControls(cursors.length > 1 ? previous : null, h('span', labelAttrs, `Page ${cursors.length}`), more ? forward : null);
}
