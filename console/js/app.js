// The console's shell: session, organisation picker, language switch, navigation, and the hash router
// (`#/<org>/<page>/<args…>`). Pages live in ./pages/ and render into <main>.

import { h, clear } from './dom.js';
import { t, useLanguage, preferred, language, nm } from './i18n.js';
import { api, setCsrf, onUnauthenticated, enc } from './api.js';
import { loading, errorBox, button, field, input } from './ui.js';
import * as chart from './pages/chart.js';
import * as post from './pages/post.js';
import * as people from './pages/people.js';
import * as catalogue from './pages/catalogue.js';
import * as edit from './pages/edit.js';
import * as rules from './pages/rules.js';
import * as simulator from './pages/simulator.js';
import * as approvals from './pages/approvals.js';
import * as cases from './pages/cases.js';
import * as decisions from './pages/decisions.js';
import * as audit from './pages/audit.js';
import * as versions from './pages/versions.js';
import * as overview from './pages/overview.js';
import * as search from './pages/search.js';
import { useZone, zone } from './time.js';

export const state = { session: null, orgs: [], docs: new Map(), packs: new Map() };

const PAGES = {
  chart: chart.render, post: post.render, people: people.render, catalogue: catalogue.render, edit: edit.renderEdit, new: edit.renderNew,
  rules: rules.render, simulator: simulator.render, approvals: approvals.render, cases: cases.render,
  decisions: decisions.render, audit: audit.render, versions: versions.render,
  overview: overview.render, search: search.render,
};

// The navigation: page, label, and the permission it needs (null: anyone who may read the organisation).
const NAV = [
  ['overview', 'nav.overview', null],
  ['chart', 'nav.chart', null],
  ['people', 'nav.people', null],
  ['catalogue', 'nav.catalogue', null],
  ['rules', 'nav.rules', 'rule_pack:read'],
  ['simulator', 'nav.simulator', null],
  ['approvals', 'nav.approvals', null],
  ['cases', 'nav.cases', null],
  ['decisions', 'nav.decisions', 'decision_log:read'],
  ['audit', 'nav.audit', 'audit:read'],
  ['versions', 'nav.versions', null],
];

/** May the logged-in user do `permission` (`resource:action`) in `org`? (The API decides; this only hides.) */
export function can(permission, org) {
  const granted = (state.session && state.session.permissions) || {};
  return (granted[org] || []).includes(permission) || (granted['*'] || []).includes(permission);
}

/** The organisation document `{version, revision, policy_version, etag, document}`, cached until a change is saved:
 * `revision` is the document's own counter, `policy_version` the global policy version (what checks answer with),
 * `version` the policy version that made the revision (its entry in the history). */
export async function documentOf(org, { fresh = false } = {}) {
  if (!fresh && state.docs.has(org)) return state.docs.get(org);
  const { data, etag } = await api(`/admin/orgs/${enc(org)}`);
  const value = { version: data.version, revision: data.revision, policy_version: data.policy_version, etag: data.etag || etag, document: data.document };
  state.docs.set(org, value);
  return value;
}

/** The organisation's rule packs (empty for someone who may not read them). */
export async function packsOf(org, { fresh = false } = {}) {
  if (!can('rule_pack:read', org)) return [];
  if (!fresh && state.packs.has(org)) return state.packs.get(org);
  const { data } = await api(`/admin/orgs/${enc(org)}/rules`);
  state.packs.set(org, data.items);
  return data.items;
}

export function changed(org) {
  state.docs.delete(org);
  state.packs.delete(org);
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { org: parts[0] || '', page: parts[1] || HOME, args: parts.slice(2) };
}

// The page an organisation opens on.
const HOME = 'overview';
// An organisation document that names no zone is in this one (orgmodel/document.py, `Organisation.timezone`).
const DEFAULT_ZONE = 'Asia/Shanghai';

let root;
let routeCount = 0;

async function route() {
  const count = ++routeCount;
  if (!state.session) {
    renderLogin();
    return;
  }
  const { org, page, args } = parse();
  if (!org) {
    if (state.orgs.length) go(`#/${enc(state.orgs[0].id)}/${HOME}`);
    else clear(root, shell('', ''), h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'empty' }, t('org.none'))));
    return;
  }
  // Times are shown and entered in the organisation's zone: its document says which.
  try {
    useZone((await documentOf(org)).document.timezone || DEFAULT_ZONE);
  } catch {
    useZone(null);  // the page says why it cannot show the organisation
  }
  if (count !== routeCount) return;
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(root, shell(org, page), main);
  const render = PAGES[page];
  if (!render) {
    main.append(errorBox({ status: 404, message: t('error.no_page', { page }) }));
    return;
  }
  main.append(loading());
  try {
    const content = h('div', { class: 'page' });
    await render(content, { org, args, refresh: route });
    if (count !== routeCount) return;  // the user went elsewhere meanwhile
    clear(main, content);
  } catch (error) {
    if (count !== routeCount) return;
    clear(main, errorBox(error));
  }
  // After a navigation, put keyboard and screen-reader focus on the new page's heading.
  const heading = main.querySelector('h1');
  if (heading && count > 1 && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function shell(org, page) {
  const known = state.orgs.some((o) => o.id === org);
  const picker = h('select', { id: 'org-picker', onChange: (e) => go(`#/${enc(e.target.value)}/${HOME}`) },
    known || !org ? null : h('option', { value: org }, `${org} (?)`),
    state.orgs.map((o) => h('option', { value: o.id }, `${nm(o.name, o.id)}`)));
  picker.value = org;
  const roles = (state.session.roles || []).map((r) => `${t(`role.${r.role}`)}${r.organisation === '*' ? '' : ` @ ${r.organisation}`}`).join(', ');
  const nav = h('nav', { class: 'nav', 'aria-label': t('nav.label') },
    h('ul', {}, NAV.filter(([, , need]) => !need || !org || can(need, org)).map(([name, label]) => h('li', {},
      h('a', { href: `#/${enc(org)}/${name}`, 'aria-current': name === page || (name === 'chart' && page === 'post') ? 'page' : null }, t(label))))));
  return h('header', { class: 'top' },
    h('div', { class: 'bar' },
      h('a', { class: 'brand', href: org ? `#/${enc(org)}/${HOME}` : '#/' }, h('img', { src: '/console/icon.svg', alt: '' }), t('app.name')),
      h('div', { class: 'org' }, h('label', { for: 'org-picker' }, t('org.label')), picker),
      org ? h('span', { class: 'zone', id: 'org-zone' }, t('time.zone', { zone: zone() })) : null,
      h('div', { class: 'spacer' }),
      org ? search.box(org, page === 'search' ? parse().args[0] : '') : null,
      languageButton(),
      h('span', { class: 'user', title: roles }, h('strong', {}, state.session.username), roles ? h('span', { class: 'roles' }, roles) : null),
      button(t('auth.logout'), logout, { kind: 'quiet', id: 'logout' })),
    org ? nav : null);
}

function languageButton() {
  const other = language() === 'zh' ? 'en' : 'zh';
  return h('button', {
    type: 'button', class: 'button quiet', id: 'language', lang: other === 'zh' ? 'zh-CN' : 'en',
    'aria-label': `${other === 'zh' ? '中文' : 'English'} — ${t('lang.switch')}`,
    onClick: async () => { await useLanguage(other); route(); },
  }, other === 'zh' ? '中文' : 'English');
}

async function logout() {
  try {
    await api('/admin/logout', { method: 'POST' });
  } catch {
    // the session may already be gone; either way we are logged out here
  }
  state.session = null;
  state.docs.clear();
  state.packs.clear();
  setCsrf(null);
  go('#/login');
}

function renderLogin(problem) {
  const username = input({ name: 'username', autocomplete: 'username', required: true });
  const password = input({ type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const message = h('div', { class: 'form-issues', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, t('auth.login'));
  // Before the first administrator exists nobody can sign in: say how to make one (on the server's host).
  const setup = h('div', { id: 'login-setup', 'aria-live': 'polite' });
  api('/admin/setup').then(({ data }) => {
    if (!data.users) setup.append(h('p', { class: 'hint', role: 'status' }, t('auth.no_users'), ' ', h('code', {}, data.first_user)));
  }).catch(() => {});
  const form = h('form', { class: 'login', onSubmit: async (event) => {
    event.preventDefault();
    clear(message);
    submit.disabled = true;
    submit.textContent = t('auth.logging_in');
    try {
      const { data } = await api('/admin/login', { method: 'POST', body: { username: username.value, password: password.value }, expect401: true });
      await start(data);
    } catch (error) {
      const text = error.status === 401 ? t('auth.wrong') : error.status === 429 ? t('auth.throttled') : null;
      clear(message, text ? h('div', { class: 'error', role: 'alert' }, text) : errorBox(error));
      submit.disabled = false;
      submit.textContent = t('auth.login');
      password.focus();
    }
  } },
  h('h1', {}, t('auth.title')),
  problem ? h('div', { class: 'error', role: 'alert' }, problem) : null,
  setup,
  field(t('auth.username'), username), field(t('auth.password'), password), message,
  h('div', { class: 'actions' }, submit));
  clear(root, h('header', { class: 'top' }, h('div', { class: 'bar' },
    h('span', { class: 'brand' }, h('img', { src: '/console/icon.svg', alt: '' }), t('app.name')), h('div', { class: 'spacer' }), languageButton())),
  h('main', { id: 'main', class: 'login-page' }, form));
  username.focus();
}

async function start(session) {
  state.session = session;
  setCsrf(session.csrf_token);
  const { data } = await api('/admin/orgs');
  state.orgs = data.items;
  const { org } = parse();
  if (!org || location.hash === '#/login') go(state.orgs.length ? `#/${enc(state.orgs[0].id)}/${HOME}` : '#/');
  else route();
}

async function boot() {
  root = document.getElementById('app');
  root.classList.remove('booting');
  root.removeAttribute('aria-busy');
  await useLanguage(preferred());
  onUnauthenticated(() => {
    if (!state.session) return;
    state.session = null;
    setCsrf(null);
    renderLogin(t('auth.expired'));
  });
  window.addEventListener('hashchange', route);
  try {
    const { data } = await api('/admin/session', { expect401: true });
    await start(data);
  } catch (error) {
    if (error.status === 401) renderLogin();
    else clear(root, errorBox(error));
  }
}

boot();
