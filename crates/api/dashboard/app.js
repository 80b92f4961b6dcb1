// emdp's data-quality dashboard: a few pages routed in the browser, each drawing what the API
// aggregates on the server (never every record). No build step: plain ES modules, one per page
// under pages/; this one only routes between them.
//
// A page is `async page(main, { live, navigate, onLeave })`: it draws into `main`; `live()` says
// whether it is still the page shown (a late answer is dropped when not), `navigate(url)` goes to
// another page, `onLeave(stop)` registers what to stop when the page is left.

import { setupKeyPanel } from './keypanel.js';
import { alertsPage } from './pages/alerts.js';
import { buildingPage } from './pages/building.js';
import { buildingsPage } from './pages/buildings.js';
import { duplicatesPage } from './pages/duplicates.js';
import { overviewPage } from './pages/overview.js';
import { uploadPage } from './pages/upload.js';
import { errorBox, h } from './ui.js';

// Routing: real links, handled in the page (history API); the server answers every /ui path.

let cleanups = [];
let generation = 0;

function navigate(url) {
  history.pushState(null, '', url);
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

function notFoundPage(main) {
  main.append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '/' }, 'Go to the overview.')));
}

/** The current location's navigation entry (`data-nav`) and page. */
function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/ui') return ['overview', overviewPage];
  if (path === '/ui/buildings') return ['buildings', buildingsPage];
  const building = path.match(/^\/ui\/buildings\/([^/]+)$/);
  if (building) return ['buildings', (main, page) => buildingPage(main, page, decodeURIComponent(building[1]))];
  if (path === '/ui/duplicates') return ['duplicates', duplicatesPage];
  if (path === '/ui/alerts') return ['alerts', alertsPage];
  if (path === '/ui/upload') return ['upload', uploadPage];
  return [null, notFoundPage];
}

function render() {
  cleanups.forEach((cleanup) => cleanup());
  cleanups = [];
  generation += 1;
  const mine = generation;
  const live = () => mine === generation;
  const onLeave = (stop) => cleanups.push(stop);
  const [nav, page] = route();
  document.querySelectorAll('[data-nav]').forEach((link) => {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
  const main = document.getElementById('main');
  main.replaceChildren();
  main.removeAttribute('data-ready');
  Promise.resolve(page(main, { live, navigate, onLeave }))
    .catch((err) => live() && main.append(errorBox(err)))
    .finally(() => live() && main.setAttribute('data-ready', 'true'));
}

setupKeyPanel(render);
render();
