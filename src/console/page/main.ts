// The console: a login, then five views chosen by the URL fragment. Every view reads the
// admin API afresh when shown; nothing is cached across views.
import { api, token, whenUnauthorized, type Status } from './api.js';
import { h } from './dom.js';
import { showDeadLetters } from './dead.js';
import { showEventDetail, showEvents } from './events.js';
import { showGraph } from './graph.js';
import { showHealth } from './health.js';
import { showRuns } from './runs.js';
import { announce, openView } from './shell.js';

const nav = document.querySelector('nav')!;

function login(message = ''): void {
  // A new view: whatever was loading or refreshing for the old one is dropped.
  const view = openView();
  nav.hidden = true;
  // Not a password the browser should offer to remember: the token lives in this tab only.
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'login-help' });
  const form = h(
    'form',
    { class: 'login', 'aria-label': 'Sign in' },
    h('label', { for: 'token' }, 'Admin token', input),
    h('p', { id: 'login-help', class: 'muted', text: 'A token from BRIDGE_ADMIN_TOKEN (or an admin JWT). It is kept in this tab only.' }),
    message ? h('p', { class: 'error', role: 'alert', text: message }) : null,
    h('button', { type: 'submit', text: 'Sign in' }),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    // Proves the token before any view is drawn: a wrong one shows its error and no data.
    const checked = await api<Status>('/v1/status');
    if (!checked.ok) {
      token.clear();
      return login(`Sign-in failed: ${checked.message}`);
    }
    route();
  });
  view.render('Sign in', form);
  input.focus();
}

whenUnauthorized((message) => login(`Signed out: ${message}`));

document.getElementById('logout')!.addEventListener('click', () => {
  token.clear();
  announce('');
  login();
});

async function route(): Promise<void> {
  if (!token.get()) return login();
  nav.hidden = false;
  const [name = 'events', id] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  announce('');
  const view = openView();
  if (name === 'events' && id) return showEventDetail(view, id);
  if (name === 'dead') return showDeadLetters(view);
  if (name === 'runs') return showRuns(view);
  if (name === 'graph') return showGraph(view);
  if (name === 'health') return showHealth(view);
  return showEvents(view);
}

// Views live in "#/…" fragments; any other fragment (the skip link's) is not a navigation.
window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/') || location.hash === '') void route();
});
document.querySelector<HTMLAnchorElement>('a.skip')!.addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main')!.focus();
});
void route();
