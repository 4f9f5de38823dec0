// Widgets every page uses: loading and error states, form fields with their API issues, dialogs, tables.

import { h, clear, newId } from './dom.js';
import { issueWords, t } from './i18n.js';

export function loading(text) {
  return h('p', { class: 'loading', role: 'status', 'aria-busy': 'true' }, text || t('common.loading'));
}

/** An error in the user's language (by status), then what the API said, and its issues. */
export function errorBox(error, { onReload } = {}) {
  const status = error && error.status !== undefined ? error.status : 0;
  const key = `error.${status}`;
  const headline = t(key) === key ? t('error.other', { status }) : t(key);
  const box = h('div', { class: 'error', role: 'alert' }, h('strong', {}, headline));
  const issues = (error && error.issues) || [];
  // The API's message is its first issue in English: with issues, the list says it in the reader's language.
  const detail = error && error.message;
  if (detail && detail !== headline && !issues.length) box.append(h('p', { class: 'detail' }, detail));
  if (issues.length) box.append(issueList(issues, { lines: false }));
  if (status === 412 && onReload) {
    box.append(h('button', { type: 'button', class: 'button', onClick: onReload }, t('common.reload')));
  }
  return box;
}

/** An issue as one line; `lines: false` for JSON bodies, where the API's line numbers mean nothing. */
export function issueText(issue, { lines = true } = {}) {
  const where = [issue.file && issue.file !== '<request>' ? issue.file : '', lines && issue.line ? t('issue.line', { line: issue.line }) : '', issue.path]
    .filter(Boolean).join(' · ');
  const words = issueWords(issue);
  return where ? `${where}: ${words}` : words;
}

export function issueList(issues, options) {
  return h('ul', { class: 'issues' }, issues.map((i) => h('li', { class: i.severity === 'warning' ? 'warning' : '' }, issueText(i, options))));
}

/** A labelled control; `path` is the entity field it edits, so that the API's issues can be shown beside it. */
export function field(label, control, { path, hint, wide } = {}) {
  if (!control.id) control.id = newId('in');
  const error = h('p', { class: 'field-error', id: `${control.id}-error`, hidden: true });
  const described = [error.id];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${control.id}-hint` }, hint);
    described.push(hintEl.id);
  }
  control.setAttribute('aria-describedby', described.join(' '));
  return h('div', { class: ['field', wide && 'wide'], dataset: path ? { path } : undefined },
    h('label', { for: control.id }, label), control.fieldBody || control, hintEl, error);
}

export function clearIssues(form) {
  for (const el of form.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const general = form.querySelector('.form-issues');
  if (general) clear(general);
}

/**
 * Show each issue beside the field it names (`posts[3].reports_to` → the field with data-path
 * `reports_to`, or the nearest enclosing one); the rest in the form's general list. Returns how many were placed.
 * `entity` is the document path of what the form edits (`catalogue.resources[9]`): issues about other entities
 * (a duty that names a removed action) then go to the general list; `null` places none.
 */
export function showIssues(form, issues, { entity } = {}) {
  clearIssues(form);
  const rest = [];
  let placed = 0;
  for (const issue of issues) {
    // An entity's write names its own fields relative to it; a problem it causes elsewhere in the document
    // comes as the file `<organisation>` with its document path, and is listed, not put beside a field.
    const elsewhere = entity === '' && issue.file === '<organisation>';
    const target = elsewhere ? null : fieldFor(form, issue.path || '', entity);
    if (target) {
      const error = target.querySelector(':scope > .field-error') || target.querySelector('.field-error');
      error.hidden = false;
      error.textContent = error.textContent ? `${error.textContent} ${issueWords(issue)}` : issueWords(issue);
      const control = target.querySelector('input, select, textarea');
      if (control) control.setAttribute('aria-invalid', 'true');
      placed += 1;
    } else {
      rest.push(issue);
    }
  }
  const general = form.querySelector('.form-issues');
  if (general && rest.length) general.append(issueList(rest, { lines: false }));
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
  return placed;
}

function fieldFor(form, path, entity) {
  // The document path of an entity field: drop the collection and index (`people[2].`, `catalogue.groups[0].`).
  let rest;
  if (entity === null) return null;
  if (entity === '') rest = path;
  else if (entity === undefined) rest = path.replace(/^(?:[a-z_]+\.)?[a-z_]+\[\d+\]\.?/, '');
  else if (path === entity || path.startsWith(`${entity}.`) || path.startsWith(`${entity}[`)) rest = path.slice(entity.length).replace(/^\./, '');
  else return null;
  while (rest) {
    const found = form.querySelector(`[data-path="${CSS.escape(rest)}"]`);
    if (found) return found;
    const cut = Math.max(rest.lastIndexOf('.'), rest.lastIndexOf('['));
    if (cut <= 0) break;
    rest = rest.slice(0, cut);
  }
  return null;
}

export function input(props = {}) {
  return h('input', { type: 'text', ...props });
}

export function select(options, props = {}) {
  return h('select', props, options.map(([value, label]) => h('option', { value }, label)));
}

export function button(label, onClick, { kind = '', type = 'button', ...props } = {}) {
  return h('button', { type, class: ['button', kind], onClick, ...props }, label);
}

/** Run `work` with the button disabled and saying so; errors go to `where` (replacing what was there). */
export async function busy(btn, work) {
  const label = btn.textContent;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  btn.textContent = t('common.working');
  try {
    return await work();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    btn.textContent = label;
  }
}

export function decisionBadge(decision) {
  const known = ['allow', 'deny', 'needs_approval', 'error'].includes(decision) ? decision : 'other';
  return h('span', { class: ['badge', `decision-${known}`] }, t(`decision.${decision}`) === `decision.${decision}` ? decision : t(`decision.${decision}`));
}

export function table(headers, rows, { caption, className } = {}) {
  return h('table', { class: ['data', className] },
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, t('common.none')))));
}

/** A modal dialog; resolves with the value of the button pressed (`cancel` for Escape). */
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const titleId = newId('dlg');
    const box = h('dialog', { class: 'dialog', 'aria-labelledby': titleId });
    const done = (value) => {
      box.close();
      box.remove();
      resolve(value);
    };
    const actions = buttons.map(({ label, value, kind, disabled }) => button(label, () => done(value), { kind, disabled }));
    box.append(h('h2', { id: titleId }, title), h('div', { class: 'dialog-body' }, body), h('div', { class: 'actions' }, actions));
    box.addEventListener('cancel', (event) => { event.preventDefault(); done('cancel'); });
    document.body.append(box);
    box.showModal();
    const primary = actions.find((b) => !b.disabled);
    if (primary) primary.focus();
  });
}

let toastTimer = null;
export function toast(message) {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div', { id: 'toast', class: 'toast', role: 'status' });
    document.body.append(el);
  }
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), children);
}

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}
