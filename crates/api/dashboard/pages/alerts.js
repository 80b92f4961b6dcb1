// The alerts page (`/ui/alerts`): the alerts list, live (server-sent events read with fetch
// streaming, so the key can be sent), with an Acknowledge button; and what the other pages need
// to know of alerts (whether the server has an alerts API, the list in an answer, an alert's state).

import { api, exists, streamEvents } from '../api.js';
import { buildingLink, fmtTime, h, table } from '../ui.js';

let alertsAvailable = null;
/** Whether the server has an alerts API (asked once). */
export async function hasAlerts() {
  if (alertsAvailable === null) alertsAvailable = await exists('/alerts');
  return alertsAvailable;
}

/** The alerts of an alerts answer (a list, or a page of `items`/`alerts`). */
export function alertList(body) {
  if (Array.isArray(body)) return body;
  return (body && (body.items || body.alerts)) || [];
}

/** An alert's state in lower case (`firing`, `resolved`, …). */
export const alertState = (alert) => String(alert.state || alert.status || '').toLowerCase();

function stateTag(state) {
  if (state === 'firing') return h('span', { class: 'badge inconsistent' }, h('span', { 'aria-hidden': 'true' }, '⚠'), ' firing');
  if (state === 'resolved') return h('span', { class: 'badge valid' }, h('span', { 'aria-hidden': 'true' }, '✓'), ' resolved');
  return h('span', { class: 'badge incomplete' }, h('span', { 'aria-hidden': 'true' }, '•'), ` ${state || 'unknown'}`);
}

/** Draws the alerts page into `main`; the live stream stops when the page is left. */
export async function alertsPage(main, { live, onLeave }) {
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
  onLeave(stop);
}
