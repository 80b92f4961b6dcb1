// Times the dashboard's overview in headless Chromium against a running server:
// from navigation start until every panel is drawn (main[data-ready]), RUNS times.
//   node tests/e2e/bench-overview.mjs http://127.0.0.1:8000 [path] [runs]
import { chromium } from 'playwright-core';

const [base = 'http://127.0.0.1:8000', path = '/', runs = '3'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.EMDP_E2E_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
for (let run = 1; run <= Number(runs); run += 1) {
  const page = await browser.newPage();
  const started = Date.now();
  await page.goto(`${base}${path}`);
  await page.waitForSelector('main[data-ready="true"]', { timeout: 60_000 });
  const total = Date.now() - started;
  const api = await page.evaluate(() => document.getElementById('main').dataset.loadMs);
  const records = await page.locator('[data-kpi="records"] .value').innerText();
  console.log(`run ${run}: ${path} ready in ${total} ms (the page's API calls: ${api} ms), records ${records}`);
  await page.close();
}
await browser.close();
