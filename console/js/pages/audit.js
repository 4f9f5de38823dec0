// The audit trail: every change, login and token of the organisation, newest first, hash-chained. A system
// administrator (who reads the whole trail) may widen it to everything: logins, users and tokens belong to no
// organisation, so a view filtered by one would never show them.

import { h, clear, add } from '../dom.js';
import { t, when } from '../i18n.js';
import { api, query } from '../api.js';
import { can } from '../app.js';
import { pageHeader, field, input, select, button, busy, errorBox } from '../ui.js';

export async function render(page, { org }) {
  const actor = input({ id: 'audit-actor', autocomplete: 'off' });
  const everything = can('audit:read', '*');
  const scope = everything
    ? select([['all', t('audit.scope_all')], ['org', t('audit.scope_org', { org })]], { id: 'audit-scope' })
    : null;
  const since = input({ type: 'datetime-local', id: 'audit-since' });
  const until = input({ type: 'datetime-local', id: 'audit-until' });
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const more = button(t('common.more'), () => load(more, false), { id: 'audit-more', hidden: true });
  let before = null;
  const iso = (el) => (el.value ? new Date(el.value).toISOString() : '');
  async function load(trigger, fresh) {
    await busy(trigger, async () => {
      clear(status);
      try {
        const params = { org: scope && scope.value === 'all' ? '' : org, actor: actor.value.trim(), since: iso(since), until: iso(until), limit: 100, before: fresh ? '' : before };
        const { data } = await api(`/admin/audit${query(params)}`);
        if (fresh) body.replaceChildren();
        body.append(...data.items.map((e) => h('tr', { dataset: { seq: e.seq } },
          h('td', { class: 'num' }, String(e.seq)), h('td', {}, when(e.at)), h('td', {}, e.actor),
          h('td', { title: e.action }, t(`audit.event.${e.action}`) === `audit.event.${e.action}` ? h('code', {}, e.action) : t(`audit.event.${e.action}`)), h('td', {}, e.organisation || t('audit.no_org')), h('td', {}, e.target),
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
  add(page, pageHeader(t('audit.title'), verify, verifyOut), form,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'audit-trail' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body)),
    status, more);
  await load(apply, true);
}
