// The API client: every request carries the API key kept in localStorage, errors are RFC 9457
// problem details turned into readable messages, and server-sent events are read with fetch()
// streaming (EventSource cannot send the Authorization header).

const KEY = 'emdp.apiKey';

export function apiKey() {
  try {
    return localStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
}

export function authHeaders(extra = {}) {
  const headers = { Accept: 'application/json', ...extra };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/** An API failure: `status` (0 for a network error) and a readable `message`. */
export class ApiFailure extends Error {
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

const listeners = new Set();
/** Called with every ApiFailure with status 401 (to ask for a key). */
export function onUnauthorized(listener) {
  listeners.add(listener);
}

export async function failureOf(response) {
  let problem = null;
  let text = '';
  try {
    text = await response.text();
    problem = JSON.parse(text);
  } catch {
    problem = null;
  }
  const detail = problem && (problem.detail || problem.title);
  let message = detail || text || response.statusText || 'request failed';
  if (response.status === 401) message = `An API key is needed (${message}). Enter one with the “API key” button.`;
  else if (response.status === 403) message = `Your API key may not do this (${message}).`;
  else if (response.status === 429) message = `Too many requests: retry in ${response.headers.get('Retry-After') || 'a few'} s.`;
  else message = `${response.status} ${response.statusText}: ${message}`;
  const failure = new ApiFailure(response.status, message, problem);
  if (response.status === 401) listeners.forEach((listener) => listener(failure));
  return failure;
}

/** GET (or another method with `init`) `/api/v1` + `path`; resolves to the parsed JSON. */
export async function api(path, init = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { ...init, headers: authHeaders(init.headers) });
  } catch (err) {
    throw new ApiFailure(0, `The server cannot be reached (${err.message}).`);
  }
  if (!response.ok) throw await failureOf(response);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * The values of `promises` once every one has settled; the first failure, if any, is thrown only
 * then. A page that awaits its requests this way has none in flight when it shows a failure and is
 * marked ready (a late 401 would otherwise come after the key banner).
 */
export async function settled(promises) {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => result.value);
}

/**
 * Every page of a route paged by `cursor`/`next_cursor`: the first page's body with the arrays
 * under `key` of every page joined (1,000 a page, the most a page holds).
 */
export async function allPages(path, key) {
  const sep = path.includes('?') ? '&' : '?';
  const first = await api(`${path}${sep}limit=1000`);
  let next = first.next_cursor;
  while (next) {
    const page = await api(`${path}${sep}limit=1000&cursor=${encodeURIComponent(next)}`);
    first[key] = first[key].concat(page[key]);
    next = page.next_cursor;
  }
  first.next_cursor = null;
  return first;
}

export function postJson(path, body) {
  return api(path, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
}

/**
 * Whether the server has `/api/v1` + `path` (from its public OpenAPI document, so that a missing
 * route is not probed with a request that fails): used to hide what a server lacks.
 */
let openapi = null;
export async function exists(path) {
  if (!openapi) {
    openapi = fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then((response) => (response.ok ? response.json() : { paths: {} }))
      .catch(() => ({ paths: {} }));
  }
  const doc = await openapi;
  return Object.prototype.hasOwnProperty.call(doc.paths || {}, `/api/v1${path}`);
}

/** Query string of the non-empty entries of `params` (with a leading `?`, or ''). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Reads the server-sent events of `/api/v1` + `path` with fetch streaming; calls
 * `onEvent({event, data, id})` for each. Returns a function that stops it. Reconnects after
 * `retryMs` when the stream ends or fails; `onState` receives 'open', 'closed' or an ApiFailure.
 */
export function streamEvents(path, onEvent, onState = () => {}, retryMs = 3000) {
  const controller = new AbortController();
  let stopped = false;
  let timer = null;
  let lastId = null;
  async function run() {
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      const response = await fetch(`/api/v1${path}`, {
        headers,
        signal: controller.signal,
        cache: 'no-store',
      });
      if (!response.ok) {
        onState(await failureOf(response));
        if (response.status === 401 || response.status === 403 || response.status === 404) return;
      } else {
        onState('open');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const message = { event: 'message', data: '', id: null };
            const data = [];
            for (const line of block.split('\n')) {
              if (!line || line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'data') data.push(text);
              else if (field === 'event') message.event = text;
              else if (field === 'id') message.id = text;
            }
            if (message.id !== null) lastId = message.id;
            if (data.length) {
              message.data = data.join('\n');
              onEvent(message);
            }
          }
        }
        onState('closed');
      }
    } catch (err) {
      if (stopped) return;
      onState(new ApiFailure(0, `The live stream was interrupted (${err.message}).`));
    }
    if (!stopped) timer = setTimeout(run, retryMs);
  }
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    controller.abort();
  };
}
