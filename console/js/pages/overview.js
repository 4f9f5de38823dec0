// The organisation's home page (GET /admin/orgs/{org}/overview): the state of its policy and what waits, then what
// HR should look at in the chart now: vacant posts, posts over their headcount, separation-of-duties conflicts and
// acting windows starting or ending this week, all in the organisation's time zone.

import { h, add } from '../dom.js';
import { t, nm, when, number } from '../i18n.js';
import { api, enc } from '../api.js';
import { documentOf } from '../app.js';
import { pageHeader } from '../ui.js';
import { dateTime } from '../time.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const [{ data }, { document: doc }] = await Promise.all([api(`/admin/orgs/${enc(org)}/overview`), documentOf(org)]);
  const ix = ov.index(doc);
  const link = (path, text) => h('a', { href: `#/${enc(org)}/${path}` }, text);
  const post = (id) => link(`post/${enc(id)}`, ov.postName(ix, id));
  const person = (id) => link(`people/${enc(id)}`, ov.personName(ix, id));
  const p = data.policy;

  const policy = card('policy', t('overview.policy'), null,
    h('dl', { class: 'facts' },
      h('dt', {}, t('versions.revision')), h('dd', {}, String(p.revision)),
      h('dt', {}, t('overview.policy_version')), h('dd', {}, t('overview.policy_versions', { version: p.version, global: p.policy_version })),
      h('dt', {}, t('overview.rules')), h('dd', {}, t('overview.rules_count', { rules: number(p.rules), packs: number(p.rule_packs) })),
      h('dt', {}, t('overview.last_change')),
      h('dd', { id: 'overview-last-change' }, p.last_change
        ? [link(`versions/${p.last_change.version}`, p.last_change.kind === 'org' ? t('versions.org') : t('versions.pack', { name: p.last_change.name })),
          ` · ${p.last_change.author} · ${when(p.last_change.created_at)}`,
          p.last_change.comment ? h('div', { class: 'muted' }, p.last_change.comment) : null]
        : t('common.none'))),
    data.changes ? changes(org, ix, data.changes) : null);

  const w = data.waiting;
  const waiting = card('waiting', t('overview.waiting'), null,
    h('ul', { class: 'counts' },
      h('li', { dataset: { count: 'approvals' } }, h('strong', {}, number(w.approvals)), ' ', link('approvals', t('overview.approvals_pending'))),
      h('li', { dataset: { count: 'cases_open' } }, h('strong', {}, number(w.cases_open)), ' ', link('cases', t('overview.cases_open'))),
      h('li', { dataset: { count: 'cases_escalated' }, class: w.cases_escalated ? 'attention' : '' },
        h('strong', {}, number(w.cases_escalated)), ' ', link('cases', t('overview.cases_escalated')))));

  const vacant = card('vacant', t('overview.vacant'), data.vacant_posts.length,
    list(data.vacant_posts.map((id) => h('li', { dataset: { post: id } }, post(id), ' ', h('span', { class: 'muted' }, ov.departmentName(ix, ix.posts.get(id)?.department))))));

  const breaches = card('headcount', t('overview.headcount'), data.headcount_breaches.length,
    list(data.headcount_breaches.map((b) => h('li', { dataset: { post: b.post } }, post(b.post), ' ',
      h('span', { class: 'badge conflict' }, t('overview.holders_of', { n: b.holders.length, of: b.headcount })),
      h('div', { class: 'muted' }, b.holders.map((id) => ov.personName(ix, id)).join(t('common.list_separator')))))));

  const sod = card('sod', t('overview.sod'), data.sod_conflicts.length,
    list(data.sod_conflicts.map((c) => h('li', { dataset: { person: c.person, rule: c.rule } }, person(c.person), ': ',
      c.posts.map((id) => ov.postName(ix, id)).join(' + '), h('div', { class: 'muted' }, ruleReason(ix, c.rule))))));

  const acting = card('acting', t('overview.acting', { start: data.week.start, end: data.week.end }), data.acting_this_week.length,
    list(data.acting_this_week.map((a) => h('li', { dataset: { person: a.person, post: a.post } },
      person(a.person), ` · ${t('overview.acting_as')} `, post(a.post),
      a.stands_in_for ? ` · ${t('chart.acting_for', { person: ov.personName(ix, a.stands_in_for) })}` : '',
      h('div', { class: 'muted' }, `${a.valid_from || '…'} – ${a.valid_to || '…'}`, ' ',
        a.starts ? h('span', { class: 'badge acting' }, t('overview.starts')) : null, ' ',
        a.ends ? h('span', { class: 'badge partial' }, t('overview.ends')) : null)))));

  add(page,
    pageHeader(`${t('overview.title')} · ${nm(doc.name, org)}`),
    h('p', { class: 'meta', id: 'overview-at' }, t('overview.at', { when: dateTime(data.at, data.timezone), zone: data.timezone })),
    h('div', { class: 'overview' }, policy, waiting, vacant, breaches, sod, acting));
}

function card(id, title, count, ...body) {
  return h('section', { class: ['panel', 'card', count ? 'attention' : ''], id: `overview-${id}`, 'aria-labelledby': `overview-${id}-title` },
    h('h2', { id: `overview-${id}-title` }, title, count === null ? null : h('span', { class: 'count' }, ` (${count})`)),
    body);
}

function list(items) {
  return items.length ? h('ul', { class: 'plain' }, items) : h('p', { class: 'empty' }, t('overview.nothing'));
}

function ruleReason(ix, ruleId) {
  const rule = (ix.doc.separation_of_duties || []).find((r) => r.id === ruleId);
  return rule ? nm(rule.reason, ruleId) : ruleId;
}

function changes(org, ix, c) {
  return h('div', { class: 'changes', id: 'overview-changes' },
    h('h3', {}, t('overview.changes', { pending: c.pending, scheduled: c.scheduled })),
    c.items.length ? h('ul', { class: 'plain' }, c.items.map((x) => h('li', { dataset: { change: x.id } },
      h('a', { href: `#/${enc(org)}/approvals` }, `${t(`status.${x.status}`)}: ${targetName(ix, x.target)}`),
      h('span', { class: 'muted' }, ` · ${x.author} · ${when(x.created_at)}`),
      x.effective_at ? h('span', { class: 'muted' }, ` · ${t('approvals.effective', { when: when(x.effective_at) })}`) : null,
      x.comment ? h('div', { class: 'muted' }, x.comment) : null))) : null);
}

// What a change is to, by name: `posts/teller` → 综合经办柜员; `rules/limits` → rule pack limits; `org` → the document.
function targetName(ix, target) {
  const [collection, id] = target.split('/');
  if (!id) return t('versions.org');
  if (collection === 'rules') return t('versions.pack', { name: id });
  const names = { posts: ov.postName, people: ov.personName, departments: ov.departmentName, resources: ov.resourceName, groups: ov.resourceName };
  return `${t(`collection.${collection}`)} · ${names[collection] ? names[collection](ix, id) : id}`;
}
