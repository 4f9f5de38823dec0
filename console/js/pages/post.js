// One post: where it sits, who holds it, its duties (numbers, texts, permissions), its qualifications,
// and what the rule packs say about it (limits of authority and other rules).

import { h, add } from '../dom.js';
import { t, nm, number } from '../i18n.js';
import { enc, ApiError } from '../api.js';
import { can, documentOf, packsOf } from '../app.js';
import { pageHeader, section, table } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org, args }) {
  const postId = args[0];
  const [{ document: doc }, packs] = await Promise.all([documentOf(org, { fresh: true }), packsOf(org)]);
  const ix = ov.index(doc);
  const post = ix.posts.get(postId);
  if (!post) throw new ApiError(404, { message: t('post.unknown', { post: postId }) });
  const link = (id) => h('a', { href: `#/${enc(org)}/post/${enc(id)}` }, ov.postName(ix, id));
  const subordinates = (ov.children(ix).get(postId) || []);
  const headed = [...ix.departments.values()].filter((d) => d.head === postId);
  const held = ov.holdersByPost(ix, Date.now()).get(postId) || [];
  const sod = ov.separations(ix).get(postId) || [];

  add(page, 
    pageHeader(ov.postName(ix, postId),
      can('org_chart:write', org) ? h('a', { class: 'button primary', href: `#/${enc(org)}/edit/posts/${enc(postId)}` }, t('common.edit')) : null),
    h('p', { class: 'meta' }, h('code', {}, postId), ' · ', `${post.name.zh} / ${post.name.en}`, ' · ',
      h('a', { href: `#/${enc(org)}/chart` }, t('post.back'))),
    h('dl', { class: 'facts' },
      fact(t('post.department'), ov.departmentName(ix, post.department)),
      fact(t('post.reports_to'), post.reports_to ? link(post.reports_to) : t('post.top')),
      fact(t('post.line'), ov.line(ix, postId).length ? join(ov.line(ix, postId).map(link), ' → ') : '—'),
      fact(t('post.subordinates'), subordinates.length ? join(subordinates.map(link), ', ') : '—'),
      fact(t('post.inherits'), (post.inherits || []).length ? join(post.inherits.map(link), ', ') : '—'),
      fact(t('post.headcount'), String(post.headcount === undefined ? 1 : post.headcount)),
      headed.length ? fact(t('post.heads'), headed.map((d) => nm(d.name, d.id)).join(', ')) : null,
      sod.length ? fact(t('chart.sod'), h('span', { class: 'sod-text' }, sod.map((s) => `${s.others.map((p) => ov.postName(ix, p)).join(', ')}: ${nm(s.reason)}`).join('; '))) : null),
    section(t('post.holders'), holders(ix, held)),
    section(t('post.duties'), duties(ix, post.duties || []),
      headed.map((d) => h('div', { class: 'sub' }, h('h3', {}, t('post.department_duties', { department: nm(d.name, d.id) })), duties(ix, d.duties || []))),
      (doc.common_duties || []).length ? h('div', { class: 'sub' }, h('h3', {}, t('post.common_duties')), duties(ix, doc.common_duties)) : null),
    section(t('post.qualifications'), qualifications(post.qualifications)),
    can('rule_pack:read', org) ? section(t('post.limits'), limits(ix, packs, postId)) : null,
    can('rule_pack:read', org) ? section(t('post.rules'), otherRules(packs, postId)) : null,
  );
}

function fact(label, value) {
  return value === null ? null : [h('dt', {}, label), h('dd', {}, value)];
}

function join(items, separator) {
  return items.flatMap((item, i) => (i ? [separator, item] : [item]));
}

function holders(ix, held) {
  const rows = held.map(({ person, assignment, phase }) => h('tr', { class: phase === 'upcoming' ? 'muted' : '' },
    h('td', {}, ov.personName(ix, person)),
    h('td', {}, t(`kind.${assignment.kind || 'primary'}`)),
    h('td', {}, assignment.valid_from || assignment.valid_to ? `${assignment.valid_from || '…'} – ${assignment.valid_to || '…'}` : '—'),
    h('td', {}, assignment.stands_in_for ? ov.personName(ix, assignment.stands_in_for) : ''),
    h('td', {}, phase === 'upcoming' ? t('chart.upcoming') : t('post.now'))));
  const table_ = table([t('post.person'), t('post.kind'), t('post.window'), t('post.stands_in_for'), t('post.state')], rows);
  return held.some((x) => x.phase === 'current') ? table_ : [h('p', { class: 'badge vacant' }, t('chart.vacant')), table_];
}

function duties(ix, list, prefix = '') {
  if (!list.length) return h('p', { class: 'empty' }, t('post.no_duties'));
  return h('ol', { class: 'duties' }, list.map((duty) => {
    const full = prefix ? `${prefix}.${duty.number}` : duty.number;
    return h('li', {},
      h('span', { class: 'duty-number' }, full),
      h('div', { class: 'duty-body' },
        h('p', { lang: 'zh-CN' }, duty.text),
        duty.en ? h('p', { class: 'muted', lang: 'en' }, duty.en) : null,
        (duty.permissions || []).length ? h('ul', { class: 'permissions' }, duty.permissions.map((p) => h('li', { class: p.effect === 'deny' ? 'deny' : 'allow' },
          h('span', { class: 'effect' }, p.effect === 'deny' ? t('perm.deny') : t('perm.allow')), ' ',
          h('strong', {}, ov.resourceName(ix, p.resource)), ': ', ov.actionsText(p.actions),
          p.condition ? h('code', { class: 'condition' }, ` ${t('perm.when')} ${p.condition}`) : null))) : null,
        (duty.duties || []).length ? duties(ix, duty.duties, full) : null));
  }));
}

function qualifications(q) {
  if (!q) return h('p', { class: 'empty' }, t('common.none'));
  return h('dl', { class: 'facts' },
    q.education ? fact(t('post.education'), nm(q.education)) : null,
    q.experience_years !== undefined ? fact(t('post.experience'), t('post.years', { n: q.experience_years })) : null,
    (q.skills || []).length ? fact(t('post.skills'), q.skills.map((s) => nm(s)).join('; ')) : null);
}

function limits(ix, packs, postId) {
  const rows = ov.limitsFor(packs, postId).map(({ pack, rule, limit, isDefault }) => h('tr', {},
    h('td', {}, nm(rule.name, rule.id), h('div', { class: 'muted' }, h('code', {}, rule.id), ` · ${pack}`)),
    h('td', {}, `${(rule.applies_to.resources || []).map((r) => ov.resourceName(ix, r)).join(', ')} · ${ov.actionsText(rule.applies_to.actions || '*')}`),
    h('td', { class: 'num' }, `${number(limit)}${rule.currency ? ` ${rule.currency}` : ''}`, isDefault ? h('span', { class: 'muted' }, ` (${t('rules.default')})`) : null),
    h('td', {}, rule.period ? t(`period.${rule.period}`) : t('period.each')),
    h('td', {}, h('code', {}, rule.attribute))));
  return table([t('rules.rule'), t('rules.applies_to'), t('rules.limit'), t('rules.period'), t('rules.attribute')], rows);
}

function otherRules(packs, postId) {
  const rows = ov.rulesFor(packs, postId).map(({ pack, rule }) => h('tr', {},
    h('td', {}, nm(rule.name, rule.id), h('div', { class: 'muted' }, h('code', {}, rule.id), ` · ${pack}`)),
    h('td', {}, t(`kind.rule.${rule.kind}`)),
    h('td', {}, nm(rule.message))));
  return table([t('rules.rule'), t('rules.kind'), t('rules.message')], rows);
}
