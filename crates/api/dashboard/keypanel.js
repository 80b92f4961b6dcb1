// The API key panel (the key is kept in this browser and sent with every request) and the
// banner that asks for a key when the API answers 401.

import { apiKey, onUnauthorized, setApiKey } from './api.js';
import { h } from './ui.js';

const banner = () => document.getElementById('banner');

function openKeyPanel() {
  document.getElementById('key-panel').hidden = false;
  document.getElementById('key-toggle').setAttribute('aria-expanded', 'true');
  document.getElementById('key-input').focus();
}

function showBanner(message) {
  const el = banner();
  el.replaceChildren(
    h('span', {}, message, ' '),
    h('button', { type: 'button', class: 'secondary', onclick: () => openKeyPanel() }, 'Enter API key'),
  );
  el.hidden = false;
}

/** Wires the panel of `index.html` and the 401 banner; `onChange` runs when the key is saved or forgotten. */
export function setupKeyPanel(onChange) {
  onUnauthorized((failure) => showBanner(failure.message));
  const panel = document.getElementById('key-panel');
  const toggle = document.getElementById('key-toggle');
  const input = document.getElementById('key-input');
  const status = document.getElementById('key-status');
  const describe = () => {
    status.textContent = apiKey() ? 'A key is saved in this browser.' : 'No key saved: requests are sent without one.';
    toggle.textContent = apiKey() ? 'API key ✓' : 'API key';
  };
  toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) input.focus();
  });
  document.getElementById('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    input.value = '';
    describe();
    banner().hidden = true;
    onChange();
  });
  document.getElementById('key-clear').addEventListener('click', () => {
    setApiKey('');
    describe();
    onChange();
  });
  describe();
}
