// Cases: complaints, overdue checks and the like, with the post each waits at and its escalation history.

import { h, clear, add } from '../dom.js';
import { t, when } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { documentOf } from '../app.js';
import { pageHeader, field, select, button, errorBox, table, dialog, loading } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const { document: doc } = await documentOf(org);
  const ix = ov.index(doc);
  const status = select([['', t('common.all')], ['open', t('status.open')], ['escalated', t('status.escalated')], ['resolved', t('status.resolved')]], { id: 'cases-status' });
  const post = select([['', t('common.all')], ...[...ix.posts.keys()].map((id) => [id, ov.postName(ix, id)])], { id: 'cases-post' });
  const out = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    clear(out, loading());
    try {
      const { data } = await api(`/v1/cases${query({ organisation: org, status: status.value, post: post.value, limit: 200 })}`);
      clear(out, table([t('cases.opened'), t('cases.type'), t('cases.case'), t('cases.at_post'), t('approvals.status'), t('approvals.due'), ''],
        data.items.map((c) => h('tr', { dataset: { case: c.id } },
          h('td', {}, when(c.created_at)), h('td', {}, h('code', {}, c.type)),
          h('td', {}, c.title, c.subject ? h('div', { class: 'muted' }, ov.personName(ix, c.subject)) : null),
          h('td', {}, ov.postName(ix, c.post), h('div', { class: 'muted' }, t('cases.step', { n: c.step }))),
          h('td', {}, h('span', { class: `badge status-${c.status}` }, t(`status.${c.status}`)), c.resolved_by ? h('div', { class: 'muted' }, `${ov.personName(ix, c.resolved_by)} · ${when(c.resolved_at)}`) : null),
          h('td', {}, when(c.due_at)),
          h('td', {}, button(t('cases.history'), () => history(ix, c.id), { kind: 'small' }))))));
    } catch (error) {
      clear(out, errorBox(error));
    }
  };
  status.addEventListener('change', load);
  post.addEventListener('change', load);
  load();
  add(page, pageHeader(t('cases.title')), h('p', { class: 'hint' }, t('cases.hint')),
    h('div', { class: 'toolbar' }, field(t('approvals.status'), status), field(t('cases.at_post'), post)), out);
}

async function history(ix, id) {
  let data;
  try {
    ({ data } = await api(`/v1/cases/${enc(id)}`));
  } catch (error) {
    return dialog(t('cases.history'), [errorBox(error)], [{ label: t('common.close'), value: 'close' }]);
  }
  return dialog(t('cases.history_title', { title: data.title }), [
    data.resolution ? h('p', {}, t('cases.resolution', { text: data.resolution })) : null,
    h('ol', { class: 'timeline' }, data.events.map((e) => h('li', { class: `event-${e.kind}` },
      h('strong', {}, t(`events.${e.kind}`)), ` · ${when(e.at)} · `,
      e.from_post ? `${ov.postName(ix, e.from_post)} → ` : '', e.to_post ? ov.postName(ix, e.to_post) : '',
      h('span', { class: 'muted' }, ` · ${e.actor}`), e.comment ? h('div', {}, e.comment) : null))),
  ], [{ label: t('common.close'), value: 'close' }]);
}
