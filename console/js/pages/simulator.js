// The simulator: a request (person, resource, action, amount and context, time) decided now by /v1/check
// (decision, reasons, rules, approver chain), and under the draft by the admin preview's `checks` (duty model and
// business rules, with the draft's rule packs if it has any); and the recent decision log replayed against the
// draft, listing the decisions that would change.

import { h, clear, add } from '../dom.js';
import { t, nm, when, language } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { documentOf, go } from '../app.js';
import { pageHeader, section, field, input, select, button, busy, errorBox, decisionBadge, table, showIssues, clearIssues } from '../ui.js';
import { draftOf, dropDraft } from '../drafts.js';
import * as ov from '../orgview.js';
import { dateTimeInput, naive, dateTime, zone } from '../time.js';

const remembered = (org) => `dutyline.sim.${org}`;

export async function render(page, { org }) {
  const { document: doc, version, revision, policy_version: policy } = await documentOf(org, { fresh: true });
  const ix = ov.index(doc);
  const draft = draftOf(org);
  const last = JSON.parse(sessionStorage.getItem(remembered(org)) || '{}');

  const person = select([...ix.people.values()].map((p) => [p.id, `${nm(p.name, p.id)} (${p.id})`]), { id: 'sim-person', value: last.person });
  const resource = select([...ix.resources.values()].map((r) => [r.id, `${nm(r.name, r.id)} (${r.id})`]), { id: 'sim-resource', value: last.resource });
  const action = h('select', { id: 'sim-action' });
  const fillActions = (chosen) => {
    const type = ix.resources.get(resource.value);
    clear(action, ((type && type.actions) || []).map((a) => h('option', { value: a }, a)));
    if (chosen) action.value = chosen;
  };
  resource.addEventListener('change', () => fillActions());
  fillActions(last.action);
  const resourceId = input({ id: 'sim-resource-id', value: last.resource_id || '' });
  const amount = input({ id: 'sim-amount', type: 'number', step: 'any', value: last.amount ?? '' });
  // Limits in a currency refuse an amount whose currency is not stated (fail closed): the simulator states one.
  const currency = input({ id: 'sim-currency', value: last.currency ?? 'CNY', maxlength: 3, autocapitalize: 'characters', size: 4 });
  const context = h('textarea', { id: 'sim-context', class: 'code', rows: 3, spellcheck: 'false', placeholder: '{"currency": "CNY", "budget_remaining": 8000}', value: last.context || '' });
  // The moment asked about is the organisation's wall time: sent without an offset, the API reads it in the
  // organisation's zone (never the browser's), and the answer says which moment and zone it was decided for.
  const at = dateTimeInput({ id: 'sim-at', value: last.at || '' }, { label: t('date.pick') });
  const result = h('div', { id: 'sim-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'simulator', novalidate: true, onSubmit: (e) => { e.preventDefault(); decide(decideButton); } },
    h('div', { class: 'form-issues' }),
    h('div', { class: 'grid' },
      field(t('sim.person'), person, { path: 'subject' }),
      field(t('sim.resource'), resource, { path: 'resource' }),
      field(t('sim.resource_id'), resourceId, { path: 'resource.id' }),
      field(t('sim.action'), action, { path: 'action' }),
      field(t('sim.amount'), amount, { path: 'context.amount', hint: t('sim.amount_hint') }),
      field(t('sim.currency'), currency, { path: 'context.currency', hint: t('sim.currency_hint') }),
      field(t('sim.at_zone', { zone: zone() }), at, { path: 'at', hint: t('sim.at_hint') }),
      field(t('sim.context'), context, { path: 'context', hint: t('sim.context_hint'), wide: true })));
  const decideButton = h('button', { type: 'submit', class: 'button primary', id: 'sim-decide' }, t('sim.decide'));
  form.append(h('div', { class: 'actions' }, decideButton));

  async function decide(trigger) {
    clearIssues(form);
    let extra = {};
    if (context.value.trim()) {
      try {
        extra = JSON.parse(context.value);
        if (typeof extra !== 'object' || Array.isArray(extra) || extra === null) throw new Error('object');
      } catch {
        showIssues(form, [{ path: 'context', message: t('sim.context_invalid') }]);
        return;
      }
    }
    const ctx = { ...extra };
    if (amount.value !== '') ctx.amount = Number(amount.value);
    if (amount.value !== '' && currency.value.trim() && !('currency' in ctx)) ctx.currency = currency.value.trim();
    const check = { subject: { id: person.value }, resource: { type: resource.value }, action: action.value };
    if (resourceId.value.trim()) check.resource.id = resourceId.value.trim();
    if (Object.keys(ctx).length) check.context = ctx;
    if (at.value.trim()) check.at = naive(at.value) || at.value.trim();  // junk goes as typed: the API names the field
    sessionStorage.setItem(remembered(org), JSON.stringify({
      person: person.value, resource: resource.value, action: action.value, resource_id: resourceId.value, amount: amount.value, currency: currency.value, context: context.value, at: at.value,
    }));
    await busy(trigger, async () => {
      clear(result);
      try {
        const now = (await api('/v1/check', { method: 'POST', body: { organisation: org, ...check, simulated: true } })).data;
        result.append(answerView(ix, now, check.at));
        if (draft) {
          const preview = (await api(`/admin/orgs/${enc(org)}/preview`, { method: 'POST', body: draftBody(draft, [check]) })).data;
          result.append(draftAnswer(ix, preview));
        }
      } catch (error) {
        if (error.issues.length) showIssues(form, error.issues);
        result.append(errorBox(error));
      }
    });
  }

  add(page, 
    pageHeader(t('sim.title')),
    h('p', { class: 'meta' }, t('common.revision', { revision, policy }), ' · ', t('sim.intro')),
    draftPanel(org, ix, draft, version),
    section(t('sim.request'), form, result),
    replay(org, ix, draft),
  );
}

function answerView(ix, answer, asked) {
  const lang = language();
  const title = asked
    ? t('sim.decided_at', { when: asked.replace('T', ' '), zone: zone() })
    : t('sim.decided_now', { when: dateTime(new Date()), zone: zone() });
  return h('div', { class: 'answer', dataset: { decision: answer.decision } },
    h('h3', { id: 'sim-decided' }, title),
    h('p', { class: 'verdict' }, decisionBadge(answer.decision), ' ', h('code', {}, answer.code),
      h('span', { class: 'muted' }, ` · ${t('common.policy_version', { version: answer.policy_version })} · ${answer.decision_id}`)),
    h('h4', {}, t('sim.reasons')),
    h('ul', { class: 'reasons' }, (answer.reasons || []).map((r) => h('li', {}, r[lang] || r.en))),
    (answer.rules || []).length ? [h('h4', {}, t('sim.rules')), table([t('rules.rule'), t('rules.kind'), t('sim.effect'), t('rules.message'), t('sim.detail')],
      answer.rules.map((r) => h('tr', {}, h('td', {}, h('code', {}, r.rule)), h('td', {}, t(`kind.rule.${r.kind}`)), h('td', {}, decisionBadge(r.effect)),
        h('td', {}, nm(r.message)), h('td', {}, Object.entries(r.detail || {}).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`).join(', ')))))] : null,
    h('h4', {}, t('sim.approvers')),
    (answer.approvers || []).length
      ? h('ol', { class: 'chain', id: 'sim-approvers' }, answer.approvers.map((step) => h('li', {}, h('strong', {}, ov.postName(ix, step.post)),
        ': ', step.people.length ? step.people.map((p) => ov.personName(ix, p)).join(', ') : t('chart.vacant'))))
      : h('p', { class: 'muted' }, t('sim.no_approvers')),
    (answer.obligations || []).length ? h('p', {}, t('sim.notify', { posts: answer.obligations.map((o) => ov.postName(ix, o.notify)).join(', ') })) : null);
}

// The preview request for a draft: its whole document, and its rule packs (a rule draft) if it has any.
function draftBody(draft, checks) {
  return draft.rules ? { document: draft.document, rules: draft.rules, checks } : { document: draft.document, checks };
}

function draftAnswer(ix, preview) {
  if (!preview.valid) return h('div', { class: 'error', role: 'alert' }, t('sim.draft_invalid'));
  const [c] = preview.checks;
  const fired = c.proposed.rules || [];
  const approvers = c.proposed.approvers || [];
  return h('div', { class: 'answer draft', id: 'sim-draft', dataset: { decision: c.proposed.decision } },
    h('h3', {}, t('sim.draft')),
    h('p', { class: 'verdict' }, t('sim.duty_model_now'), ' ', decisionBadge(c.current.decision), ` ${c.current.code} → `,
      t('sim.duty_model_draft'), ' ', decisionBadge(c.proposed.decision), ` ${c.proposed.code}`),
    h('p', { class: c.changed ? 'changed' : 'muted' }, c.changed ? t('sim.draft_changes') : t('sim.draft_same')),
    fired.length ? [h('h4', {}, t('sim.rules')), table([t('rules.rule'), t('rules.kind'), t('sim.effect'), t('rules.message')],
      fired.map((r) => h('tr', {}, h('td', {}, h('code', {}, r.rule)), h('td', {}, t(`kind.rule.${r.kind}`)), h('td', {}, decisionBadge(r.effect)), h('td', {}, nm(r.message)))))] : null,
    approvers.length ? [h('h4', {}, t('sim.approvers')), h('ol', { class: 'chain', id: 'sim-draft-approvers' }, approvers.map((step) => h('li', {}, h('strong', {}, ov.postName(ix, step.post)),
      ': ', step.people.length ? step.people.map((p) => ov.personName(ix, p)).join(', ') : t('chart.vacant'))))] : null,
    h('p', { class: 'hint' }, t('sim.draft_note')));
}

function draftPanel(org, ix, draft, version) {
  if (!draft) return h('p', { class: 'notice', id: 'no-draft' }, t('sim.no_draft'));
  return h('div', { class: 'notice draft-panel', id: 'draft-panel' },
    h('strong', {}, t('sim.draft_is', { description: draft.description })), ' ',
    h('span', { class: 'muted' }, t('sim.draft_base', { version: draft.base_version, when: when(draft.created_at) })),
    draft.base_version !== version ? h('p', { class: 'warning' }, t('sim.draft_stale', { version })) : null,
    button(t('sim.discard_draft'), () => { dropDraft(org); go(location.hash); }, { kind: 'small' }));
}

function replay(org, ix, draft) {
  const limit = select([['50', '50'], ['100', '100'], ['200', '200']], { id: 'replay-limit', value: '100' });
  const out = h('div', { id: 'replay-result', 'aria-live': 'polite' });
  const run = async (trigger) => busy(trigger, async () => {
    clear(out);
    try {
      const log = (await api(`/v1/decisions${query({ organisation: org, limit: limit.value })}`)).data.items
        .filter((d) => d.decision !== 'error' && d.request);
      if (!log.length) {
        out.append(h('p', { class: 'empty' }, t('sim.replay_empty')));
        return;
      }
      const checks = log.map((d) => {
        const check = {
          subject: { id: d.subject, type: d.subject_type === 'post' ? 'post' : 'person' },
          resource: { type: d.resource_type }, action: d.action,
          at: new Date(d.request.at ? d.request.at * 1000 : d.decided_at).toISOString(),
        };
        if (d.request.subject_properties) check.subject.properties = d.request.subject_properties;
        if (d.resource_id) check.resource.id = d.resource_id;
        if (d.request.resource_properties) check.resource.properties = d.request.resource_properties;
        if (d.request.context) check.context = d.request.context;
        return check;
      });
      const preview = (await api(`/admin/orgs/${enc(org)}/preview`, { method: 'POST', body: draftBody(draft, checks) })).data;
      if (!preview.valid) {
        out.append(h('div', { class: 'error', role: 'alert' }, t('sim.draft_invalid')));
        return;
      }
      const changedRows = preview.checks.map((c, i) => [c, log[i]]).filter(([c]) => c.changed);
      out.append(h('p', { role: 'status' }, t('sim.replay_summary', { n: log.length, changed: changedRows.length })),
        table([t('log.time'), t('log.subject'), t('log.resource'), t('log.action'), t('sim.logged'), t('sim.current'), t('sim.draft')],
          changedRows.map(([c, d]) => h('tr', { class: 'changed' }, h('td', {}, when(d.decided_at)), h('td', {}, ov.personName(ix, d.subject)),
            h('td', {}, `${ov.resourceName(ix, d.resource_type)}${d.resource_id ? ` #${d.resource_id}` : ''}`), h('td', {}, d.action),
            h('td', {}, decisionBadge(d.decision)), h('td', {}, decisionBadge(c.current.decision)), h('td', {}, decisionBadge(c.proposed.decision)))),
          { className: 'replay' }),
        h('p', { class: 'hint' }, t('sim.draft_note')));
    } catch (error) {
      out.append(errorBox(error));
    }
  });
  const runButton = button(t('sim.replay'), () => run(runButton), { kind: 'primary', id: 'replay', disabled: !draft });
  return section(t('sim.replay_title'), h('p', { class: 'hint' }, draft ? t('sim.replay_hint') : t('sim.no_draft')),
    h('div', { class: 'toolbar' }, field(t('sim.replay_limit'), limit), runButton), out);
}
