// The upload page (`/ui/upload`): a CSV, NDJSON or JSON file posted to `POST /api/v1/records`
// with a progress bar, its columns mapped when named otherwise, the ingest summary at the end,
// and the ten latest batches below.

import { api, authHeaders, failureOf, query } from '../api.js';
import { errorBox, fmtInt, fmtTime, h, section, table } from '../ui.js';

const TYPES = { csv: 'text/csv', ndjson: 'application/x-ndjson', jsonl: 'application/x-ndjson', json: 'application/json' };

/** Draws the upload page into `main`. */
export function uploadPage(main) {
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
  if (s.stored) rows.push(['inserted', 'Inserted', s.stored.inserted], ['skipped', 'Duplicates skipped', s.stored.duplicates_skipped], ['conflicts', 'Conflicts', s.stored.conflicts], ['redelivered', 'Re-delivered', s.stored.redelivered]);
  const reasons = Object.entries(s.reasons || {}).filter(([, n]) => n > 0);
  return section(
    `Summary${s.batch_id ? ` of batch ${s.batch_id}` : ''}`,
    h('dl', { class: 'metrics', 'data-testid': 'summary' }, rows.map(([key, label, value]) => [h('dt', {}, label), h('dd', { 'data-key': key }, fmtInt(value))])),
    reasons.length ? h('p', {}, 'Reasons: ', reasons.map(([code, n]) => [h('code', {}, code), ` ${fmtInt(n)}  `])) : null,
  );
}
