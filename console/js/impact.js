// The impact preview of a change (the admin API's `?preview=true` answer): who gains and loses which
// permission, now and over time (each acting window or scheduled date the change matters at), whose limits move,
// each rule field before → after, whose approver chain changes, separation-of-duties conflicts and other problems.

import { h } from './dom.js';
import { t, when, number, language } from './i18n.js';
import { dialog, issueList, issueText, table, decisionBadge } from './ui.js';
import * as ov from './orgview.js';

export function impactView(ix, preview) {
  const parts = [];
  if (!preview.valid) {
    parts.push(h('div', { class: 'error', role: 'alert' }, h('strong', {}, t('impact.invalid')), issueList(preview.issues || [], { lines: false })));
  }
  if ((preview.separation_of_duties || []).length) {
    parts.push(h('div', { class: 'impact-sod', role: 'alert' }, h('h3', {}, t('impact.sod')), conflictList(ix, preview.separation_of_duties)));
  }
  if (preview.valid && (preview.issues || []).length) {
    parts.push(h('div', { class: 'warning-box' }, h('h3', {}, t('impact.warnings')), issueList(preview.issues, { lines: false })));
  }
  parts.push(summary(preview.summary || {}));
  if (preview.valid && preview.permissions) parts.push(permissions(ix, preview.permissions));
  if (preview.valid && (preview.rule_changes || []).length) parts.push(ruleChanges(preview.rule_changes));
  if (preview.valid && preview.timeline) parts.push(timeline(ix, preview.timeline));
  if (preview.valid && (preview.limits || []).length) parts.push(limits(ix, preview.limits));
  if (preview.valid && preview.approver_chains) parts.push(chains(ix, preview.approver_chains));
  if (preview.note) parts.push(h('p', { class: 'muted' }, t('impact.rules_note')));
  if ((preview.checks || []).length) parts.push(checks(preview.checks));
  return h('div', { class: 'impact' }, parts);
}

// A conflict's path names a person by their place in the document (`people[2].assignments[1]`): say who.
function conflictList(ix, issues) {
  return h('ul', { class: 'issues' }, issues.map((issue) => {
    const at = /^people\[(\d+)\]/.exec(issue.path || '');
    const person = at ? (ix.doc.people || [])[Number(at[1])] : null;
    return h('li', {}, person ? h('strong', {}, `${ov.personName(ix, person.id)}: `) : null, issueText(issue, { lines: false }));
  }));
}

/** The entity-by-entity summary of a change (`orgmodel.diff.summarise`) as list items, one per kind of change. */
export function summaryItems(summary) {
  const items = [];
  for (const [collection, change] of Object.entries(summary)) {
    if (collection === 'fields') {
      if (change.length) items.push(h('li', {}, t('impact.fields', { fields: change.join(', ') })));
      continue;
    }
    for (const kind of ['added', 'removed', 'changed']) {
      if ((change[kind] || []).length) items.push(h('li', {}, t(`impact.${kind}`, { collection: t(`collection.${collection}`), ids: change[kind].join(', ') })));
    }
  }
  return items;
}

function summary(summary) {
  const items = summaryItems(summary);
  return h('div', {}, h('h3', {}, t('impact.summary')), items.length ? h('ul', {}, items) : h('p', { class: 'muted' }, t('impact.no_change')));
}

function permissionText(ix, p) {
  const via = p.posts && p.posts.length ? ` (${p.posts.map((id) => ov.postName(ix, id)).join(', ')}${p.duties && p.duties.length ? `; ${p.duties.join(', ')}` : ''})` : '';
  return `${ov.resourceName(ix, p.resource)} · ${p.action}${p.conditional ? ` [${t('impact.conditional')}]` : ''}${via}`;
}

function permissions(ix, changes) {
  const rows = changes.map((c) => h('tr', { dataset: { person: c.person } },
    h('th', { scope: 'row' }, ov.personName(ix, c.person)),
    h('td', {}, h('ul', { class: 'plain gained' }, c.gained.map((p) => h('li', {}, `+ ${permissionText(ix, p)}`)))),
    h('td', {}, h('ul', { class: 'plain lost' }, c.lost.map((p) => h('li', {}, `− ${permissionText(ix, p)}`))))));
  return h('div', {}, h('h3', {}, t('impact.permissions')),
    changes.length ? table([t('impact.person'), t('impact.gains'), t('impact.loses')], rows, { className: 'impact-permissions' })
      : h('p', { class: 'muted' }, t('impact.no_permission_change')));
}

const span = (c) => (c.until ? t('impact.between', { since: when(c.since), until: when(c.until) }) : t('impact.from', { since: when(c.since) }));

function timeline(ix, changes) {
  const rows = changes.map((c) => h('tr', { dataset: { person: c.person }, class: c.change },
    h('th', { scope: 'row' }, ov.personName(ix, c.person)),
    h('td', {}, `${c.change === 'gained' ? '+' : '−'} ${permissionText(ix, c.permission)}`),
    h('td', {}, span(c))));
  return h('div', {}, h('h3', {}, t('impact.timeline')),
    changes.length ? table([t('impact.person'), t('impact.permission'), t('impact.when')], rows, { className: 'impact-timeline' })
      : h('p', { class: 'muted' }, t('impact.no_timeline_change')));
}

function limits(ix, changes) {
  const amount = (v) => (v === null || v === undefined ? t('impact.no_limit') : number(v));
  const rows = changes.map((c) => h('tr', { dataset: { person: c.person, rule: c.rule } },
    h('th', { scope: 'row' }, ov.personName(ix, c.person)), h('td', {}, h('code', {}, c.rule)),
    h('td', { class: 'num' }, `${amount(c.before)} → ${amount(c.after)}`), h('td', {}, span(c))));
  return h('div', {}, h('h3', {}, t('impact.limits')),
    table([t('impact.person'), t('impact.rule'), t('impact.limit'), t('impact.when')], rows, { className: 'impact-limits' }));
}

function ruleChanges(changes) {
  return h('div', {}, h('h3', {}, t('impact.rule_changes')),
    h('ul', { class: 'plain impact-rule-changes' }, changes.map((c) => h('li', { dataset: { rule: c.rule, field: c.field } }, language() === 'zh' ? c.zh : c.en))));
}

function chains(ix, changes) {
  const names = (list) => (list.length ? list.map((id) => ov.postName(ix, id)).join(' → ') : '—');
  const rows = changes.map((c) => h('tr', {}, h('th', { scope: 'row' }, ov.postName(ix, c.post)), h('td', {}, names(c.before)), h('td', {}, names(c.after))));
  return h('div', {}, h('h3', {}, t('impact.chains')),
    changes.length ? table([t('impact.post'), t('impact.before'), t('impact.after')], rows, { className: 'impact-chains' })
      : h('p', { class: 'muted' }, t('impact.no_chain_change')));
}

function checks(list) {
  const rows = list.map((c, i) => h('tr', { class: c.changed ? 'changed' : '' },
    h('td', {}, String(i + 1)), h('td', {}, decisionBadge(c.current.decision), ` ${c.current.code}`),
    h('td', {}, decisionBadge(c.proposed.decision), ` ${c.proposed.code}`), h('td', {}, c.changed ? t('common.yes') : t('common.no'))));
  return h('div', {}, h('h3', {}, t('impact.checks')), table(['#', t('sim.current'), t('sim.draft'), t('sim.changed')], rows));
}

/** Show the preview; resolves `save`, `draft` or `cancel`. */
export function impactDialog(ix, preview, { title, saveLabel, allowDraft = true } = {}) {
  const buttons = [
    { label: saveLabel || t('common.save'), value: 'save', kind: 'primary', disabled: !preview.valid },
    allowDraft ? { label: t('impact.keep_draft'), value: 'draft', disabled: !preview.valid } : null,
    { label: t('common.cancel'), value: 'cancel' },
  ].filter(Boolean);
  return dialog(title || t('impact.title'), impactView(ix, preview), buttons);
}

