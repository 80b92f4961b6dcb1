// End-to-end tests of the dashboard in headless Chromium (playwright-core drives the Debian
// `chromium`). `scripts/e2e` seeds a database, starts `emdp serve` and sets EMDP_E2E_URL.
//
// Every test fails on a console error, an uncaught page error or a request to any host other
// than the server; each page is saved as a screenshot under target/e2e-screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { chromium } from 'playwright-core';

const BASE = (process.env.EMDP_E2E_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const SHOTS = process.env.EMDP_E2E_SCREENSHOTS || new URL('../../target/e2e-screenshots/', import.meta.url).pathname;
const CHROMIUM = process.env.EMDP_E2E_CHROMIUM || '/usr/bin/chromium';
// The servers under test: the one without keys and, when given, the one with keys.
const HOSTS = new Set([BASE, process.env.EMDP_E2E_AUTH_URL].filter(Boolean).map((url) => new URL(url).host));
mkdirSync(SHOTS, { recursive: true });

let browser;
let context;
let page;
let problems;

/** The API's answer, fetched by the test itself (to compare with what the page shows). */
async function api(path, init) {
  const response = await fetch(`${BASE}/api/v1${path}`, init);
  assert.ok(response.ok, `${path}: ${response.status}`);
  return response.json();
}

const int = (n) => Number(n).toLocaleString('en-US');
const pct = (x) => `${(x * 100).toFixed(1)} %`;
const norm = (text) => text.replace(/\u00a0/g, ' ').trim();

async function open(path) {
  await page.goto(`${BASE}${path}`);
  await ready();
}

/** Waits until the page has drawn everything of its route. */
async function ready() {
  await page.waitForSelector('main[data-ready="true"]', { timeout: 20_000 });
}

async function kpi(key) {
  return norm(await page.locator(`[data-kpi="${key}"] .value`).innerText());
}

async function shot(name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.protocol !== 'blob:' && !HOSTS.has(url.host)) problems.push(`external request: ${request.url()}`);
  });
});

afterEach(async () => {
  await context.close();
  assert.deepEqual(problems, [], 'no console error, page error or external request');
});

test('overview shows the API numbers: KPIs, chart, reasons and providers', async () => {
  await open('/');
  const report = await api('/quality/report');
  assert.equal(await kpi('records'), int(report.records.total));
  assert.equal(await kpi('valid'), pct(report.shares.valid));
  assert.equal(await kpi('incomplete'), int(report.records.incomplete));
  assert.equal(await kpi('inconsistent'), int(report.records.inconsistent));
  assert.equal(await kpi('duplicates'), int(report.rows.duplicates.exact + report.rows.duplicates.conflicting));
  assert.equal(await kpi('redelivered'), int(report.rows.redelivered));
  assert.equal(await kpi('open_conflicts'), int(report.records.pending));
  assert.equal(await kpi('buildings'), int(report.completeness.totals.buildings));
  assert.equal(await kpi('stale'), int(report.completeness.totals.stale));
  assert.equal(await page.locator('.chart canvas').count(), 1, 'the daily chart is drawn');
  const legend = await page.locator('.chart .u-legend').innerText();
  for (const label of ['VALID', 'INCOMPLETE', 'INCONSISTENT']) assert.match(legend, new RegExp(label));

  const top = Object.entries(report.records.reasons).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = await page.locator('[data-testid="reasons"] tbody tr').evaluateAll((rows) =>
    rows.map((row) => [row.querySelector('[data-col="reason"]').innerText, row.querySelector('[data-col="count"]').innerText]));
  assert.deepEqual(shown, top.slice(0, 10).map(([code, n]) => [code, int(n)]));

  const providers = await page.locator('[data-testid="providers"] tbody tr').evaluateAll((rows) =>
    rows.map((row) => [row.querySelector('[data-col="provider"]').innerText, row.querySelector('[data-col="total"]').innerText, row.querySelector('[data-col="valid"]').innerText]));
  assert.deepEqual(providers, report.breakdowns.providers.map((p) => [p.key || '(none)', int(p.total), int(p.valid)]));

  assert.equal(await kpi('alerts'), int((await api('/quality/overview')).alerts.firing));
  await shot('overview');
});

test('overview filters update the URL and every panel', async () => {
  await open('/');
  const provider = (await api('/quality/report')).breakdowns.providers.find((p) => p.key).key;
  await page.fill('#f-provider', provider);
  await page.press('#f-provider', 'Enter');
  await page.waitForURL((url) => url.searchParams.get('provider') === provider);
  await ready();
  let report = await api(`/quality/report?provider=${provider}`);
  assert.equal(await kpi('records'), int(report.records.total));
  assert.equal(await kpi('incomplete'), int(report.records.incomplete));
  assert.equal(await page.locator('[data-testid="providers"] tbody tr').count(), 1);
  assert.equal(await page.locator('[data-testid="providers"] [data-col="total"]').innerText(), int(report.records.total));

  const from = report.breakdowns.days[Math.floor(report.breakdowns.days.length / 2)].key;
  await page.fill('#f-from', from); // a date input applies on change
  await page.waitForURL((url) => url.searchParams.get('from') === from && url.searchParams.get('provider') === provider);
  await ready();
  report = await api(`/quality/report?provider=${provider}&from=${from}`);
  assert.equal(await kpi('records'), int(report.records.total));
  assert.equal(await kpi('valid'), pct(report.shares.valid));
  const overview = await api(`/quality/overview?provider=${provider}&from=${from}`);
  assert.equal(await kpi('stale'), int(overview.completeness.totals.stale), 'the filtered buildings\' stale ones');
  assert.equal(await kpi('alerts'), int(overview.alerts.firing), 'the filtered buildings\' alerts');
  await shot('overview-filtered');

  // The filters live in the URL: a reload (or a shared link) shows the same numbers.
  await page.reload();
  await ready();
  assert.equal(await page.inputValue('#f-provider'), provider);
  assert.equal(await kpi('records'), int(report.records.total));
  // Back to all data.
  await page.click('text=Reset');
  await page.waitForURL(`${BASE}/`);
  await ready();
  assert.equal(await kpi('records'), int((await api('/quality/report')).records.total));
});

test('buildings: keyboard navigation, table numbers, sorting, searching, lazy anomalies', async () => {
  await open('/');
  // Keyboard: skip link, then the navigation; Enter follows a real link.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.focus('a[data-nav="buildings"]');
  await page.keyboard.press('Enter');
  await page.waitForURL(`${BASE}/ui/buildings`);
  await ready();
  assert.equal(await page.getAttribute('a[data-nav="buildings"]', 'aria-current'), 'page');

  const data = await api('/quality/buildings?limit=1000');
  const rows = page.locator('[data-testid="buildings"] tbody tr');
  assert.equal(await rows.count(), Math.min(50, data.buildings.length));
  const first = data.buildings.slice().sort((a, b) => (a.building_id < b.building_id ? -1 : 1))[0];
  const cells = rows.first().locator('td');
  assert.equal(await cells.nth(0).innerText(), first.building_id);
  assert.equal(await cells.nth(1).innerText(), int(first.total));
  assert.equal(norm(await cells.nth(2).innerText()), pct(first.valid_days / first.expected_days));
  assert.equal(await cells.nth(3).innerText(), `${int(first.gaps)} (${int(first.gap_days)} d)`);
  assert.match(await cells.nth(4).innerText(), new RegExp(first.last_valid_day));
  assert.equal(norm(await cells.nth(5).innerText()), pct(first.valid / first.total));

  // Sort by completeness, descending on the second press.
  await page.click('th button:has-text("Completeness")');
  await page.click('th button:has-text("Completeness")');
  assert.equal(await page.getAttribute('th:nth-child(3)', 'aria-sort'), 'descending');
  const best = Math.max(...data.buildings.map((b) => b.valid_days / b.expected_days));
  assert.equal(norm(await rows.first().locator('td').nth(2).innerText()), pct(best));
  assert.match(page.url(), /sort=completeness&dir=desc/);

  // Search.
  await page.fill('#b-search', first.building_id);
  assert.equal(await rows.count(), 1);
  // Anomalies are counted on demand.
  await page.click(`button[aria-label="Count anomalies of ${first.building_id}"]`);
  const anomalies = await api(`/buildings/${first.building_id}/anomalies`);
  await page.waitForSelector(`[data-anomalies="${first.building_id}"]`);
  assert.equal(await page.locator(`[data-anomalies="${first.building_id}"]`).innerText(), int(anomalies.anomalies.length));
  await page.fill('#b-search', '');
  await shot('buildings');
});

test('building page: charts, baseline metrics, gaps and paginated records', async () => {
  const id = (await api('/quality/buildings')).buildings[0].building_id;
  await open('/ui/buildings');
  await page.click(`a:text-is("${id}")`);
  await page.waitForURL(`${BASE}/ui/buildings/${id}`);
  await ready();
  const b = (await api(`/quality/buildings?building_id=${id}`)).buildings[0];
  assert.equal(await kpi('records'), int(b.total));
  assert.equal(await kpi('valid'), int(b.valid));
  assert.equal(await kpi('gaps'), int(b.gaps));
  const anomalies = await api(`/buildings/${id}/anomalies`);
  assert.equal(await kpi('anomalies'), int(anomalies.anomalies.length));
  assert.equal(await page.locator('.chart canvas').count(), 2, 'time series and scatter are drawn');
  const baseline = await api(`/buildings/${id}/baseline`);
  const metrics = await page.locator('[data-testid="baseline"]').innerText();
  assert.match(metrics, new RegExp(baseline.model.model_type));
  assert.match(metrics, new RegExp(`Days used\\s+${int(baseline.model.n)}`));
  const gaps = (await api(`/quality/gaps?building_id=${id}`)).items;
  assert.equal(await page.locator('[data-testid="gaps"] tbody tr').count(), Math.max(1, Math.min(100, gaps.length)));

  const page1 = await api(`/records?building_id=${id}&limit=25`);
  const ids = () => page.locator('[data-testid="records"] [data-col="id"]').allInnerTexts();
  assert.deepEqual(await ids(), page1.items.map((r) => String(r.id)));
  await page.click('button:has-text("Next →") >> nth=-1');
  await page.waitForFunction(() => document.querySelector('[data-testid="records-page"]')?.textContent === 'Page 2');
  const page2 = await api(`/records?building_id=${id}&limit=25&cursor=${page1.next_cursor}`);
  assert.deepEqual(await ids(), page2.items.map((r) => String(r.id)));
  const statuses = await page.locator('[data-testid="records"] [data-col="status"]').allInnerTexts();
  assert.deepEqual(statuses.map((s) => s.replace(/^\W+\s*/, '')), page2.items.map((r) => r.quality_status), 'status shown as text');
  await shot('building');
});

test('duplicates: conflict groups and a resolve by picking a version', async () => {
  await open('/ui/duplicates');
  const groups = await api('/duplicates?limit=20');
  assert.ok(groups.items.length > 0, 'the seeded data has conflict groups');
  assert.equal(await page.locator('article.group').count(), groups.items.length);
  const group = groups.items[0];
  const loser = group.versions.find((v) => !v.winner);
  const card = page.locator(`article[data-group="${group.record_id}"]`);
  const explained = group.versions.flatMap((v) => v.reasons);
  assert.ok(explained.every((r) => r.code && r.message), 'reasons are {code, message}');
  for (const reason of explained.slice(0, 3)) {
    assert.ok(await card.locator(`code[title="${reason.message}"]`).count() > 0, `${reason.code} shown with its message`);
  }
  await shot('duplicates');
  await card.locator(`button[aria-label="Keep batch ${loser.batch_id} line ${loser.line}"]`).click();
  await card.locator('.outcome:has-text("Resolved")').waitFor();
  const after = (await api(`/duplicates?limit=20`)).items.find((g) => g.record_id === group.record_id);
  assert.deepEqual(after.winner, { batch_id: loser.batch_id, line: loser.line }, 'the picked version wins');
  // The list is drawn again with the new winner.
  await page.locator(`article[data-group="${group.record_id}"] tr:has(button[aria-label="Keep batch ${loser.batch_id} line ${loser.line}"])`).waitFor({ state: 'detached' });
  // And back with a policy.
  await page.locator(`article[data-group="${group.record_id}"] select`).selectOption('prefer_valid');
  await page.locator(`article[data-group="${group.record_id}"] button:has-text("Apply policy")`).click();
  await page.locator(`article[data-group="${group.record_id}"] .outcome:has-text("Resolved")`).waitFor();
});

test('upload: a CSV is ingested with progress and its summary', async () => {
  await open('/ui/upload');
  const csv = [
    'building_id,date,consumption,temperature,provider',
    'E2E-UPLOAD,2025-03-01,120.5,8.1,provider_e2e',
    'E2E-UPLOAD,2025-03-02,,8.4,provider_e2e',
    'E2E-UPLOAD,2025-03-03,-4,7.9,provider_e2e',
    'E2E-UPLOAD,2025-03-04,118.2,9.0,provider_e2e',
  ].join('\n');
  await page.setInputFiles('#u-file', { name: 'e2e.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  assert.match(await page.locator('[data-testid="chosen"]').innerText(), /e2e\.csv/);
  await page.click('button:has-text("Upload")');
  await page.waitForSelector('[data-testid="summary"]');
  const value = (key) => page.locator(`[data-testid="summary"] dd[data-key="${key}"]`).innerText();
  assert.equal(await value('total'), '4');
  assert.equal(await value('valid'), '2');
  assert.equal(await value('incomplete'), '1');
  assert.equal(await value('inconsistent'), '1');
  assert.equal(await value('inserted'), '4');
  assert.match(await page.locator('[data-testid="progress"]').innerText(), /Done: \d+ bytes/);
  const stored = await api('/records?building_id=E2E-UPLOAD');
  assert.equal(stored.items.length, 4, 'the records are stored');
  // The upload's batch heads the recent batches, with its rows.
  const batch = (await api('/batches?limit=1')).items[0];
  const firstRow = page.locator('[data-testid="batch-table"] tbody tr').first();
  await firstRow.locator(`td[data-col="id"]:text-is("${batch.id}")`).waitFor();
  assert.equal(await firstRow.locator('td[data-col="source"]').innerText(), 'api');
  assert.equal(await firstRow.locator('td[data-col="rows"]').innerText(), '4');
  assert.match(await firstRow.locator('td[data-col="finished"]').innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  await shot('upload');
});

test('upload: columns named otherwise are mapped, and a bad mapping is refused', async () => {
  await open('/ui/upload');
  const csv = ['site,day,kwh,temperature,provider', 'E2E-MAPPED,2025-03-01,120.5,8.1,provider_e2e'].join('\n');
  await page.setInputFiles('#u-file', { name: 'mapped.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.click('summary:has-text("Columns named otherwise")');
  await page.fill('#u-col-building_id', 'date');
  await page.click('button:has-text("Upload")');
  await page.waitForSelector('[data-testid="upload-result"] .error');
  assert.match(await page.locator('[data-testid="upload-result"]').innerText(), /would both be read from column 'date'/);
  // The browser logs the refused upload's 400 as a failed resource: expected here, once.
  assert.equal(problems.filter((problem) => /status of 400/.test(problem)).length, 1);
  problems = problems.filter((problem) => !/status of 400/.test(problem));
  await page.fill('#u-col-building_id', 'site');
  await page.fill('#u-col-date', 'day');
  await page.fill('#u-col-consumption', 'kwh');
  await page.click('button:has-text("Upload")');
  await page.waitForSelector('[data-testid="summary"]');
  assert.equal(await page.locator('[data-testid="summary"] dd[data-key="valid"]').innerText(), '1');
  const stored = await api('/records?building_id=E2E-MAPPED');
  assert.equal(stored.items.length, 1, 'the record is stored under its mapped building');
  assert.equal(stored.items[0].consumption, 120.5);
  await shot('upload-mapped');
});

test('alerts: a live alert arrives over the stream and is acknowledged', async () => {
  await open('/ui/alerts');
  const doc = await (await fetch(`${BASE}/openapi.json`)).json();
  if (!doc.paths['/api/v1/alerts/stream']) {
    assert.match(await page.locator('[data-testid="alerts-missing"]').innerText(), /no alerts API/);
    await shot('alerts');
    return;
  }
  await page.waitForFunction(() => /live/.test(document.querySelector('[data-testid="stream-status"]')?.textContent || ''));
  const before = await page.locator('[data-testid="alerts"] tbody tr:has(button)').count();
  // A rule that fires on the next record, then the record: the page is not reloaded.
  const building = `E2E-ALERT-${Date.now()}`;
  await api('/alert-rules', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: `e2e ${building}`, kind: 'threshold', params: { building, above: 1000 }, severity: 'critical' }),
  });
  await api('/records', {
    method: 'POST',
    headers: { 'Content-Type': 'text/csv' },
    body: `building_id,date,consumption,temperature,provider\n${building},2025-03-01,5000,8,provider_e2e\n`,
  });
  const row = page.locator(`[data-testid="alerts"] tbody tr:has(a:text-is("${building}"))`);
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.innerText(), /firing/);
  assert.equal(await page.locator('[data-testid="alerts"] tbody tr:has(button)').count(), before + 1);
  await shot('alerts');
  await row.locator('button:has-text("Acknowledge")').click();
  await page.locator(`[data-testid="alerts"] tbody tr:has(a:text-is("${building}")):has-text("acknowledged")`).waitFor();
  const list = await api(`/alerts?building=${building}`);
  assert.ok(list.items[0].acknowledged_at, 'the API has the acknowledgement');
  // The overview counts it among the firing alerts.
  await open('/');
  const firing = await api('/alerts?state=firing&limit=1000');
  assert.equal(await kpi('alerts'), int(firing.items.length));
  // Filtered by the alert's building, the overview counts that building's alerts only.
  await open(`/?building_id=${encodeURIComponent(building)}`);
  assert.equal(await kpi('alerts'), int(firing.items.filter((a) => a.building === building).length));
});

test('the API key is entered once, kept, and sent with every API request', async () => {
  await open('/');
  await page.click('#key-toggle');
  await page.fill('#key-input', 'emdp_e2e_key');
  await page.press('#key-input', 'Enter');
  const sent = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/api/')) sent.push(request.headers().authorization);
  });
  await page.reload();
  await ready();
  assert.ok(sent.length > 0);
  assert.ok(sent.every((header) => header === 'Bearer emdp_e2e_key'), `every API request carries the key: ${sent}`);
  await page.click('#key-toggle');
  await page.click('#key-clear');
});

test('with keys required: a 401 asks for a key, a reader sees the numbers, a resolve is a readable 403', { skip: !process.env.EMDP_E2E_AUTH_URL && 'no key-protected server (EMDP_E2E_AUTH_URL)' }, async () => {
  const AUTH = process.env.EMDP_E2E_AUTH_URL.replace(/\/$/, '');
  const authed = async (path, key) => {
    const response = await fetch(`${AUTH}/api/v1${path}`, { headers: { Authorization: `Bearer ${key}` } });
    assert.ok(response.ok, `${path}: ${response.status}`);
    return response.json();
  };
  // A 401 from the API is logged by the browser as a failed resource: expected here, once.
  const expected401 = (text) => /status of 401/.test(text);
  await page.goto(`${AUTH}/`);
  await ready();
  assert.match(await page.locator('#banner').innerText(), /API key is needed/);
  problems = problems.filter((problem) => !expected401(problem));
  await page.click('#banner button');
  await page.fill('#key-input', process.env.EMDP_E2E_READER_KEY);
  await page.press('#key-input', 'Enter');
  await ready();
  await page.waitForSelector('[data-kpi="records"]');
  const report = await authed('/quality/report', process.env.EMDP_E2E_READER_KEY);
  assert.equal(await kpi('records'), int(report.records.total));
  assert.ok(await page.locator('#banner').isHidden());
  await shot('auth-overview');

  // The key is kept: another page, after a reload, still sends it.
  await page.goto(`${AUTH}/ui/duplicates`);
  await ready();
  const groups = await authed('/duplicates?limit=20', process.env.EMDP_E2E_READER_KEY);
  const group = groups.items[0];
  const loser = group.versions.find((v) => !v.winner);
  const card = page.locator(`article[data-group="${group.record_id}"]`);
  await card.locator(`button[aria-label="Keep batch ${loser.batch_id} line ${loser.line}"]`).click();
  await card.locator('.outcome.error').waitFor();
  assert.match(await card.locator('.outcome').innerText(), /may not do this.*admin/);
  problems = problems.filter((problem) => !/status of 403/.test(problem));
  await shot('auth-duplicates-403');
});

test('phone width: no horizontal scroll on any page', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  const id = (await api('/quality/buildings')).buildings[0].building_id;
  for (const [name, path] of [['overview', '/'], ['buildings', '/ui/buildings'], ['building', `/ui/buildings/${id}`], ['duplicates', '/ui/duplicates'], ['alerts', '/ui/alerts'], ['upload', '/ui/upload']]) {
    await open(path);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width} px wide at 390 px`);
    await shot(`phone-${name}`);
  }
});

test('unknown API paths still answer problem+json; the page sends a CSP', async () => {
  const response = await fetch(`${BASE}/api/v1/no-such-route`);
  assert.equal(response.status, 404);
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  const html = await fetch(`${BASE}/`);
  assert.match(html.headers.get('content-security-policy'), /default-src 'self'/);
  assert.match(await html.text(), /<script type="module" src="\/assets\/app.js">/);
});
