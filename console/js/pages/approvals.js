// Approvals: admin changes waiting for a second pair of eyes or for their time (approve / reject here),
// and the organisation's business approvals (an approver's inbox, with each approval's history).

import { h, clear, add } from '../dom.js';
import { t, nm, when, number } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { can, documentOf, changed } from '../app.js';
import { pageHeader, section, field, select, button, busy, errorBox, table, dialog, toast, loading } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const { document: doc } = await documentOf(org);
  const ix = ov.index(doc);
  add(page, pageHeader(t('approvals.title')));
  if (can('change:read', org)) add(page, adminChanges(org));
  add(page, businessApprovals(org, ix));
}

function adminChanges(org) {
  const status = select([['pending', t('status.pending')], ['scheduled', t('status.scheduled')], ['applied', t('status.applied')],
    ['rejected', t('status.rejected')], ['failed', t('status.failed')], ['', t('common.all')]], { id: 'changes-status', value: 'pending' });
  const out = h('div', { 'aria-live': 'polite' });
  const approver = can('change:approve', org);
  const load = async () => {
    clear(out, loading());
    try {
      const { data } = await api(`/admin/changes${query({ org, status: status.value })}`);
      clear(out, table([t('log.time'), t('approvals.author'), t('approvals.target'), t('approvals.reason'), t('approvals.status'), t('edit.comment'), ''],
        data.items.map((c) => h('tr', { dataset: { change: c.id } },
          h('td', {}, when(c.created_at), c.effective_at ? h('div', { class: 'muted' }, t('approvals.effective', { when: when(c.effective_at) })) : null),
          h('td', {}, c.author), h('td', {}, h('code', {}, `${c.method.toUpperCase()} ${c.target}`)),
          h('td', {}, t(`approvals.reason.${c.reason}`)), h('td', {}, t(`status.${c.status}`), c.message ? h('div', { class: 'muted' }, c.message) : null),
          h('td', {}, c.comment),
          h('td', { class: 'actions' },
            button(t('approvals.view'), () => dialog(t('approvals.change_value'), h('pre', { class: 'code' }, JSON.stringify(c.value, null, 2)), [{ label: t('common.close'), value: 'close' }]), { kind: 'small' }),
            approver && c.status === 'pending' ? decideButtons(c, load) : null))),
        { caption: t('approvals.changes_caption') }));
    } catch (error) {
      clear(out, errorBox(error));
    }
  };
  status.addEventListener('change', load);
  load();
  return section(t('approvals.changes'), h('div', { class: 'toolbar' }, field(t('approvals.status'), status)), out);
}

function decideButtons(change, reload) {
  const decide = (approve, trigger) => busy(trigger, async () => {
    const comment = h('textarea', { rows: 2, id: 'decision-comment' });
    const choice = await dialog(t(approve ? 'approvals.approve_title' : 'approvals.reject_title'),
      [h('p', {}, `${change.method.toUpperCase()} ${change.target} · ${change.author}`), h('label', { for: 'decision-comment' }, t('edit.comment')), comment],
      [{ label: t(approve ? 'approvals.approve' : 'approvals.reject'), value: 'go', kind: approve ? 'primary' : 'danger' }, { label: t('common.cancel'), value: 'cancel' }]);
    if (choice !== 'go') return;
    try {
      await api(`/admin/changes/${enc(change.id)}/${approve ? 'approve' : 'reject'}`, { method: 'POST', body: { comment: comment.value } });
      changed(change.organisation);
      toast(t(approve ? 'approvals.approved' : 'approvals.rejected'));
      await reload();
    } catch (error) {
      trigger.closest('td').append(errorBox(error));
    }
  });
  const yes = button(t('approvals.approve'), () => decide(true, yes), { kind: 'small primary' });
  const no = button(t('approvals.reject'), () => decide(false, no), { kind: 'small danger' });
  return [yes, no];
}

function businessApprovals(org, ix) {
  const status = select([['pending', t('status.pending')], ['approved', t('status.approved')], ['rejected', t('status.rejected')], ['', t('common.all')]],
    { id: 'approvals-status', value: 'pending' });
  const approver = select([['', t('approvals.everyone')], ...[...ix.people.values()].map((p) => [p.id, nm(p.name, p.id)])], { id: 'approvals-approver' });
  const out = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    clear(out, loading());
    try {
      const { data } = await api(`/v1/approvals${query({ organisation: org, status: status.value, approver: approver.value, limit: 200 })}`);
      clear(out, table([t('log.time'), t('approvals.id'), t('approvals.requester'), t('approvals.request'), t('approvals.rules'), t('approvals.at_post'),
        t('approvals.status'), t('approvals.due'), t('approvals.uses'), t('approvals.expires'), ''],
        data.items.map((a) => h('tr', { dataset: { approval: a.id } },
          h('td', {}, when(a.created_at)), h('td', {}, h('code', {}, a.id)), h('td', {}, ov.personName(ix, a.requester)),
          h('td', {}, `${ov.resourceName(ix, a.resource.type)}${a.resource.id ? ` #${a.resource.id}` : ''} · ${a.action}`,
            a.request && a.request.context && a.request.context.amount !== undefined ? ` · ${number(a.request.context.amount)}` : ''),
          h('td', {}, a.rules.map((r) => h('code', {}, r)).flatMap((x, i) => (i ? [', ', x] : [x]))),
          h('td', { class: 'level' }, ov.postName(ix, a.post), h('div', { class: 'muted' }, levelText(a))),
          h('td', {}, t(`status.${a.status}`), a.decided_by ? h('div', { class: 'muted' }, `${ov.personName(ix, a.decided_by)} · ${when(a.decided_at)}`) : null),
          h('td', {}, when(a.due_at)),
          h('td', { dataset: { usesLeft: String(a.uses_left) } }, t('approvals.uses_left', { left: a.uses_left, of: a.uses })),
          h('td', {}, validity(a)),
          h('td', {}, button(t('approvals.history'), () => history(ix, a), { kind: 'small' })))),
        { caption: t('approvals.business_caption') }));
    } catch (error) {
      clear(out, errorBox(error));
    }
  };
  status.addEventListener('change', load);
  approver.addEventListener('change', load);
  load();
  return section(t('approvals.business'), h('p', { class: 'hint' }, t('approvals.business_hint')),
    h('div', { class: 'toolbar' }, field(t('approvals.status'), status), field(t('approvals.inbox_of'), approver)), out);
}

// Where it stands in its chain: only a pending approval waits at a level; a decided one was decided at it.
function levelText(a) {
  const level = { n: a.level + 1, of: a.chain.length };
  return a.status === 'pending' ? t('approvals.waiting_level', level) : t(`approvals.${a.status}_level`, level);
}

// An approval may be presented until it expires: counted from its approval, so a pending one has no expiry yet.
function validity(approval) {
  if (approval.status !== 'approved' || !approval.expires_at) return approval.status === 'pending' ? h('span', { class: 'muted' }, t('approvals.not_yet')) : '';
  const over = new Date(approval.expires_at).getTime() <= Date.now();
  return [when(approval.expires_at), over ? h('div', { class: 'muted' }, t('approvals.expired')) : null];
}

async function history(ix, approval) {
  let data;
  try {
    ({ data } = await api(`/v1/approvals/${enc(approval.id)}`));
  } catch (error) {
    return dialog(t('approvals.history_title', { id: approval.id }), [errorBox(error)], [{ label: t('common.close'), value: 'close' }]);
  }
  return dialog(t('approvals.history_title', { id: data.id }), [
    h('p', {}, data.comment),
    table([t('log.time'), t('events.kind'), t('events.from'), t('events.to'), t('events.actor'), t('edit.comment')],
      data.events.map((e) => h('tr', {}, h('td', {}, when(e.at)), h('td', {}, t(`events.${e.kind}`)),
        h('td', {}, e.from_post ? ov.postName(ix, e.from_post) : ''), h('td', {}, e.to_post ? ov.postName(ix, e.to_post) : ''),
        h('td', {}, ov.personName(ix, e.actor)), h('td', {}, e.comment)))),
  ], [{ label: t('common.close'), value: 'close' }]);
}
