// The decision log of the organisation (auditors), newest first, filtered by subject and time. Questions tried out
// in the simulator are logged too, marked, and left out unless asked for.

import { h, clear, add } from '../dom.js';
import { t, when } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { documentOf } from '../app.js';
import { pageHeader, field, input, select, button, busy, errorBox, decisionBadge } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const { document: doc } = await documentOf(org);
  const ix = ov.index(doc);
  const subject = select([['', t('common.all')], ...[...ix.people.values()].map((p) => [p.id, ov.personName(ix, p.id)])], { id: 'log-subject' });
  const since = input({ type: 'datetime-local', id: 'log-since' });
  const until = input({ type: 'datetime-local', id: 'log-until' });
  const simulated = select([['exclude', t('log.simulated_exclude')], ['include', t('log.simulated_include')], ['only', t('log.simulated_only')]], { id: 'log-simulated' });
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const more = button(t('common.more'), () => load(more, false), { id: 'log-more', hidden: true });
  let next = null;
  let walk = null; // the filters of the listing shown: "more" continues it (a page token is bound to them)
  const iso = (el) => (el.value ? new Date(el.value).toISOString() : '');
  async function load(trigger, fresh) {
    await busy(trigger, async () => {
      clear(status);
      try {
        if (fresh || !walk) walk = { subject: subject.value, since: iso(since), until: iso(until), simulated: simulated.value };
        const params = { ...walk, limit: 100, page_token: fresh ? '' : next };
        const { data } = await api(`/admin/orgs/${enc(org)}/decisions${query(params)}`);
        if (fresh) body.replaceChildren();
        body.append(...data.items.map((d) => h('tr', { dataset: { decision: d.decision_id }, class: d.simulated ? 'simulated' : '' },
          h('td', {}, when(d.decided_at)), h('td', {}, ov.personName(ix, d.subject)),
          h('td', {}, `${ov.resourceName(ix, d.resource_type)}${d.resource_id ? ` #${d.resource_id}` : ''}`), h('td', {}, d.action),
          h('td', {}, decisionBadge(d.decision), d.simulated ? h('span', { class: 'badge muted' }, t('log.simulated')) : ''), h('td', {}, h('code', {}, d.code)), h('td', { class: 'num' }, String(d.policy_version)),
          h('td', {}, h('code', { class: 'small' }, d.decision_id)))));
        if (!body.children.length) status.append(h('p', { class: 'empty' }, t('log.empty')));
        next = data.next_token;
        more.hidden = !next;
      } catch (error) {
        status.append(errorBox(error));
      }
    });
  }
  const apply = h('button', { type: 'submit', class: 'button primary', id: 'log-apply' }, t('common.apply'));
  const form = h('form', { class: 'toolbar', onSubmit: (e) => { e.preventDefault(); load(apply, true); } },
    field(t('log.subject'), subject), field(t('log.since'), since), field(t('log.until'), until), field(t('log.simulated_filter'), simulated), apply);
  const headers = [t('log.time'), t('log.subject'), t('log.resource'), t('log.action'), t('log.decision'), t('log.code'), t('log.version'), t('log.id')];
  add(page, pageHeader(t('log.title')), form,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'decision-log' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body)),
    status, more);
  await load(apply, true);
}
