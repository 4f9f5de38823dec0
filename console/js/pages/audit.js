// The audit trail: every change, login and token of the organisation, newest first, hash-chained. A system
// administrator (who reads the whole trail) may widen it to everything: logins, users and tokens belong to no
// organisation, so a view filtered by one would never show them.

import { h, clear, add } from '../dom.js';
import { t, when } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { can } from '../app.js';
import { pageHeader, section, field, input, select, button, busy, errorBox, table } from '../ui.js';
import { dateTimeInput, instantOf, zone } from '../time.js';
import { summaryItems } from '../impact.js';

export async function render(page, { org, args }) {
  if (args[0]) {
    await detail(page, org, args[0]);
    return;
  }
  const actor = input({ id: 'audit-actor', autocomplete: 'off' });
  const everything = can('audit:read', '*');
  const scope = everything
    ? select([['all', t('audit.scope_all')], ['org', t('audit.scope_org', { org })]], { id: 'audit-scope' })
    : null;
  const since = dateTimeInput({ id: 'audit-since' }, { label: t('date.pick') });
  const until = dateTimeInput({ id: 'audit-until' }, { label: t('date.pick') });
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const more = button(t('common.more'), () => load(more, false), { id: 'audit-more', hidden: true });
  let before = null;
  const iso = (el) => {  // typed in the organisation's zone; the trail is asked in UTC
    if (!el.value.trim()) return '';
    const at = instantOf(el.value);
    if (!at) throw Object.assign(new Error(t('date.invalid', { value: el.value })), { status: 400, issues: [] });
    return at.toISOString();
  };
  async function load(trigger, fresh) {
    await busy(trigger, async () => {
      clear(status);
      try {
        const params = { org: scope && scope.value === 'all' ? '' : org, actor: actor.value.trim(), since: iso(since), until: iso(until), limit: 100, before: fresh ? '' : before };
        const { data } = await api(`/admin/audit${query(params)}`);
        if (fresh) body.replaceChildren();
        body.append(...data.items.map((e) => h('tr', { dataset: { seq: e.seq } },
          h('td', { class: 'num' }, h('a', { href: `#/${enc(org)}/audit/${e.seq}`, 'aria-label': t('detail.open_audit', { seq: e.seq }) }, String(e.seq))), h('td', {}, when(e.at)), h('td', {}, e.actor),
          h('td', { title: e.action }, actionName(e.action)), h('td', {}, e.organisation || t('audit.no_org')), h('td', {}, e.target),
          h('td', {}, Object.keys(e.detail || {}).length
            ? h('details', {}, h('summary', {}, t('audit.detail')), h('pre', { class: 'code' }, JSON.stringify(e.detail, null, 2))) : ''),
          h('td', {}, h('code', { class: 'small', title: e.hash }, e.hash.slice(0, 12))))));
        if (!body.children.length) status.append(h('p', { class: 'empty' }, t('log.empty')));
        before = data.next_before;
        more.hidden = !before;
      } catch (error) {
        status.append(errorBox(error));
      }
    });
  }
  const apply = h('button', { type: 'submit', class: 'button primary', id: 'audit-apply' }, t('common.apply'));
  const form = h('form', { class: 'toolbar', onSubmit: (e) => { e.preventDefault(); load(apply, true); } },
    ...(scope ? [field(t('audit.scope'), scope)] : []), field(t('audit.actor'), actor), field(t('log.since'), since), field(t('log.until'), until), apply);
  const verifyOut = h('span', { 'aria-live': 'polite' });
  const verify = can('audit:read', '*') ? button(t('audit.verify'), () => busy(verify, async () => {
    try {
      const { data } = await api('/admin/audit/verify');
      clear(verifyOut, data.ok ? h('span', { class: 'ok' }, t('audit.intact', { n: data.entries }))
        : h('span', { class: 'error' }, t('audit.broken', { seq: data.broken.seq, message: data.broken.message })));
    } catch (error) {
      clear(verifyOut, errorBox(error));
    }
  }), { id: 'audit-verify' }) : null;
  const headers = ['#', t('log.time'), t('audit.actor'), t('audit.action'), t('audit.organisation'), t('audit.target'), t('audit.detail'), t('audit.hash')];
  add(page, pageHeader(t('audit.title'), verify, verifyOut), h('p', { class: 'meta' }, t('time.shown_in', { zone: zone() })), form,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'audit-trail' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body)),
    status, more);
  await load(apply, true);
}

function actionName(action) {
  return t(`audit.event.${action}`) === `audit.event.${action}` ? h('code', {}, action) : t(`audit.event.${action}`);
}

// One entry in full: who, when, what, the comment, and what the change did (before → after: the version it made,
// against the one before it), with the entry's place in the hash chain.
async function detail(page, org, seq) {
  const { data: e } = await api(`/admin/audit/${enc(seq)}`);
  const info = e.detail || {};
  const fact = (label, ...value) => [h('dt', {}, label), h('dd', {}, ...value)];
  const shown = new Set(['comment', 'summary', 'version']);
  const rest = Object.entries(info).filter(([k]) => !shown.has(k));
  let change = null;
  if (e.organisation && Number.isInteger(info.version)) {
    try {
      const { data } = await api(`/admin/orgs/${enc(e.organisation)}/versions/${info.version}/diff`);
      const items = summaryItems(data.summary || {});
      change = [
        h('p', { class: 'meta' }, t('detail.version_against', { version: info.version, previous: data.previous_version ?? '—' }), ' ',
          h('a', { href: `#/${enc(e.organisation)}/versions/${info.version}` }, t('detail.open_version'))),
        items.length ? h('ul', { class: 'summary' }, items) : null,
        h('pre', { class: 'diff', id: 'audit-diff', tabindex: '0', 'aria-label': t('versions.diff') }, (data.diff || '').split('\n').map((line) => h('span', {
          class: line.startsWith('+++') || line.startsWith('---') ? 'file' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : '',
        }, `${line}\n`))),
      ];
    } catch (error) {
      change = errorBox(error);
    }
  }
  add(page,
    pageHeader(t('detail.audit_title', { seq: e.seq }), h('a', { class: 'button', href: `#/${enc(org)}/audit` }, t('detail.back_to_audit'))),
    h('p', { class: 'meta' }, t('time.shown_in', { zone: zone() })),
    h('div', { class: 'detail', id: 'audit-detail', dataset: { seq: e.seq } },
      section(t('detail.what'), h('dl', { class: 'facts' },
        fact(t('audit.actor'), e.actor),
        fact(t('log.time'), when(e.at)),
        fact(t('audit.action'), actionName(e.action)),
        fact(t('audit.organisation'), e.organisation || t('audit.no_org')),
        fact(t('audit.target'), h('code', {}, e.target)),
        fact(t('edit.comment'), h('span', { id: 'audit-comment' }, info.comment || '—')))),
      change ? section(t('detail.before_after'), change) : null,
      rest.length ? section(t('audit.detail'), table([t('detail.key'), t('detail.value')], rest.map(([k, v]) => h('tr', {}, h('td', {}, h('code', {}, k)),
        h('td', {}, typeof v === 'object' ? h('pre', { class: 'code' }, JSON.stringify(v, null, 2)) : String(v)))))) : null,
      section(t('detail.chain'), h('dl', { class: 'facts' }, fact(t('audit.hash'), h('code', { class: 'small' }, e.hash)), fact(t('detail.prev_hash'), h('code', { class: 'small' }, e.prev_hash))))));
}
