// The decision log of the organisation (auditors), newest first, filtered by subject and time. Questions tried out
// in the simulator are logged too, marked, and left out unless asked for.

import { h, clear, add } from '../dom.js';
import { t, when, nm } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { documentOf, packsOf } from '../app.js';
import { pageHeader, section, field, input, select, button, busy, errorBox, decisionBadge, table } from '../ui.js';
import { dateTimeInput, instantOf, zone } from '../time.js';
import * as ov from '../orgview.js';

export async function render(page, { org, args }) {
  const { document: doc } = await documentOf(org);
  const ix = ov.index(doc);
  if (args[0]) {
    await detail(page, org, ix, args[0]);
    return;
  }
  const subject = select([['', t('common.all')], ...[...ix.people.values()].map((p) => [p.id, ov.personName(ix, p.id)])], { id: 'log-subject' });
  const since = dateTimeInput({ id: 'log-since' }, { label: t('date.pick') });
  const until = dateTimeInput({ id: 'log-until' }, { label: t('date.pick') });
  const simulated = select([['exclude', t('log.simulated_exclude')], ['include', t('log.simulated_include')], ['only', t('log.simulated_only')]], { id: 'log-simulated' });
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const more = button(t('common.more'), () => load(more, false), { id: 'log-more', hidden: true });
  let next = null;
  let walk = null; // the filters of the listing shown: "more" continues it (a page token is bound to them)
  // Typed in the organisation's zone; the log is asked in UTC. A time that is not one is refused here, by name.
  const iso = (el) => {
    if (!el.value.trim()) return '';
    const at = instantOf(el.value);
    if (!at) throw Object.assign(new Error(t('date.invalid', { value: el.value })), { status: 400, issues: [] });
    return at.toISOString();
  };
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
          h('td', {}, h('a', { href: `#/${enc(org)}/decisions/${enc(d.decision_id)}`, class: 'small', 'aria-label': t('detail.open_decision', { id: d.decision_id }) }, h('code', {}, d.decision_id))))));
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
  add(page, pageHeader(t('log.title')), h('p', { class: 'meta' }, t('time.shown_in', { zone: zone() })), form,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'decision-log' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body)),
    status, more);
  await load(apply, true);
}

// One decision in full: the request as logged, the reasons in both languages, the rules that fired, the approval it
// was allowed through, and the policy version it was decided on.
async function detail(page, org, ix, id) {
  const [{ data: d }, packs] = await Promise.all([api(`/admin/orgs/${enc(org)}/decisions/${enc(id)}`), packsOf(org).catch(() => [])]);
  const ruleNames = new Map(packs.flatMap((item) => ((item.pack && item.pack.rules) || []).map((r) => [r.id, r.name])));
  const request = d.request || {};
  const fact = (label, ...value) => [h('dt', {}, label), h('dd', {}, ...value)];
  const properties = (title, values) => (values && Object.keys(values).length
    ? [h('h3', {}, title), table([t('detail.key'), t('detail.value')], Object.entries(values).map(([k, v]) => h('tr', {}, h('td', {}, h('code', {}, k)),
      h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)))))] : null);
  const approval = d.approval;
  add(page,
    pageHeader(t('detail.decision_title'), h('a', { class: 'button', href: `#/${enc(org)}/decisions` }, t('detail.back_to_log'))),
    h('p', { class: 'meta' }, t('time.shown_in', { zone: zone() })),
    h('div', { class: 'detail', id: 'decision-detail', dataset: { decision: d.decision_id } },
      section(t('detail.what'), h('dl', { class: 'facts' },
        fact(t('log.id'), h('code', {}, d.decision_id)),
        fact(t('log.time'), when(d.decided_at)),
        fact(t('log.subject'), ov.personName(ix, d.subject)),
        fact(t('log.resource'), `${ov.resourceName(ix, d.resource_type)}${d.resource_id ? ` #${d.resource_id}` : ''}`),
        fact(t('log.action'), d.action),
        fact(t('log.decision'), decisionBadge(d.decision), ' ', h('code', {}, d.code), d.simulated ? h('span', { class: 'badge muted' }, t('log.simulated')) : null),
        fact(t('detail.decided_on'), h('span', { id: 'decision-version' }, t('common.policy_version', { version: d.policy_version }))),
        request.at ? fact(t('detail.asked_for'), when(request.at)) : null,
        d.request_id ? fact(t('detail.request_id'), h('code', {}, d.request_id)) : null)),
      section(t('detail.request'),
        properties(t('detail.subject_properties'), request.subject_properties),
        properties(t('detail.resource_properties'), request.resource_properties),
        properties(t('detail.context'), request.context),
        (request.truncated || []).length ? h('p', { class: 'warning' }, t('detail.truncated', { parts: request.truncated.map((x) => x.part).join(', ') })) : null,
        !request.subject_properties && !request.resource_properties && !request.context ? h('p', { class: 'empty' }, t('detail.no_request')) : null),
      section(t('detail.reasons'), table([t('detail.reason_zh'), t('detail.reason_en')],
        (d.reasons || []).map((r) => h('tr', {}, h('td', { lang: 'zh-CN' }, r.zh), h('td', { lang: 'en' }, r.en))), { className: 'reasons-both' })),
      section(t('detail.rules'), (d.rules || []).length
        ? h('ul', { class: 'plain', id: 'decision-rules' }, d.rules.map((id) => h('li', { dataset: { rule: id } }, ruleNames.has(id) ? nm(ruleNames.get(id), id) : id,
          ruleNames.has(id) ? h('span', { class: 'muted' }, ' ', h('code', {}, id)) : null)))
        : h('p', { class: 'empty' }, t('detail.no_rules'))),
      section(t('detail.approval'), approval
        ? h('dl', { class: 'facts', id: 'decision-approval' },
          fact(t('approvals.id'), h('code', {}, approval.id)),
          fact(t('detail.approved_by'), approval.approved_by ? ov.personName(ix, approval.approved_by) : '—', approval.approved_at ? ` · ${when(approval.approved_at)}` : ''),
          fact(t('approvals.uses'), t('approvals.uses_left', { left: approval.uses_left, of: approval.uses })),
          fact(t('approvals.expires'), approval.expires_at ? when(approval.expires_at) : '—'))
        : h('p', { class: 'empty' }, t('detail.no_approval')))));
}
