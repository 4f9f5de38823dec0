// Rules: the delegation-of-authority matrix (posts × limit rules, one table per pack and currency), a form for every
// rule of every pack (./ruleforms.js), and each rule pack in a YAML editor (the expert view) whose validation errors
// point at their lines. Every save shows each change before → after and carries a comment.

import { h, clear, add } from '../dom.js';
import { t, nm, number } from '../i18n.js';
import { api, enc } from '../api.js';
import { can, documentOf, packsOf, changed, go } from '../app.js';
import { pageHeader, section, field, button, busy, errorBox, issueText, dialog, toast, select } from '../ui.js';
import { impactView } from '../impact.js';
import { amountInput, commentField, ruleForm, saveRules } from './ruleforms.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const [{ document: doc }, packs] = await Promise.all([documentOf(org, { fresh: true }), packsOf(org, { fresh: true })]);
  const ix = ov.index(doc);
  const writer = can('rule_pack:write', org);
  add(page, pageHeader(t('rules.title'), h('a', { class: 'button', href: `#/${enc(org)}/simulator` }, t('nav.simulator'))));
  if (!writer) add(page, h('p', { class: 'notice', role: 'status', id: 'read-only' }, t('rules.read_only')));
  if (!packs.length) {
    add(page, h('p', { class: 'empty' }, t('rules.no_packs')));
    return;
  }
  const matrices = packs.flatMap((item) => currencies(item).map((currency) => matrix(org, ix, item, currency, writer)));
  add(page, section(t('rules.matrix'), h('p', { class: 'hint' }, t('rules.matrix_hint')),
    matrices.length ? matrices : h('p', { class: 'empty' }, t('rules.no_limits'))));
  add(page, section(t('rules.forms'), h('p', { class: 'hint' }, t('rules.forms_hint')),
    packs.map((item) => h('div', { class: 'rule-pack', dataset: { pack: item.name } },
      h('h3', {}, `${nm(item.pack.name, item.name)} `, h('span', { class: 'muted' }, `(${item.name})`)),
      (item.pack.rules || []).map((rule, position) => ruleForm(org, ix, item, position, writer))))));
  add(page, section(t('rules.yaml'), yamlEditor(org, ix, packs, writer)));
}

// The currencies of a pack's limit rules, in the order they first appear ('' for limits without one).
function currencies(item) {
  const limits = (item.pack.rules || []).filter((r) => r.kind === 'limit');
  return [...new Set(limits.map((r) => r.currency || ''))];
}

// --- the delegation-of-authority matrix -------------------------------------------------------------------

function matrix(org, ix, item, currency, writer) {
  const pack = structuredClone(item.pack);
  const original = structuredClone(item.pack);
  const limits = (pack.rules || []).filter((r) => r.kind === 'limit' && (r.currency || '') === currency);
  const posts = [...ix.posts.keys()];
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const [comment, commentBox] = commentField();

  const cell = (rule, position, post) => {
    const isDefault = post === null;
    const current = isDefault ? rule.default : rule.limits[post];
    const before = isDefault ? original.rules[position].default : original.rules[position].limits[post];
    const label = `${isDefault ? t('rules.default') : ov.postName(ix, post)} — ${nm(rule.name, rule.id)}`;
    if (!writer) {
      return h('td', { class: 'num', dataset: { rule: rule.id, post: post || '*' } },
        current === undefined || current === null ? h('span', { class: 'muted' }, isDefault ? '—' : t('rules.inherits_default')) : number(current));
    }
    const [el, error] = amountInput(current, (value) => {
      if (isDefault) {
        if (value === undefined) delete rule.default; else rule.default = value;
      } else if (value === undefined) delete rule.limits[post];
      else rule.limits[post] = value;
      el.classList.toggle('changed', value !== before);
    }, {
      class: 'limit', 'aria-label': label,
      placeholder: isDefault ? '—' : rule.default === undefined || rule.default === null ? '—' : number(rule.default),
      dataset: { rule: rule.id, post: post || '*' },
    });
    return h('td', { class: 'num' }, el, error);
  };

  const positions = limits.map((rule) => pack.rules.indexOf(rule));
  const head = h('tr', {}, h('th', { scope: 'col' }, t('rules.post')), limits.map((rule) => h('th', { scope: 'col' },
    h('span', {}, nm(rule.name, rule.id)),
    h('span', { class: 'col-meta' },
      `${(rule.applies_to.resources || []).map((r) => ov.resourceName(ix, r)).join(', ')} · ${ov.actionsText(rule.applies_to.actions || '*')}`),
    h('span', { class: 'col-meta' }, `${rule.attribute}${rule.currency ? ` · ${rule.currency}` : ''} · ${rule.period ? t(`period.${rule.period}`) : t('period.each')}`))));
  const rows = posts.map((post) => h('tr', { dataset: { post } }, h('th', { scope: 'row' }, ov.postName(ix, post)), limits.map((rule, k) => cell(rule, positions[k], post))));
  rows.push(h('tr', { class: 'default-row' }, h('th', { scope: 'row' }, t('rules.default_row')), limits.map((rule, k) => cell(rule, positions[k], null))));
  const title = currency ? t('rules.matrix_in', { currency }) : t('rules.matrix_no_currency');
  const form = h('form', { class: 'matrix', dataset: { pack: item.name, currency }, onSubmit: (e) => { e.preventDefault(); save(); } },
    h('h3', {}, `${nm(pack.name, item.name)} · ${title} `, h('span', { class: 'muted' }, `(${item.name} · ${t('common.pack_revision', { revision: item.revision, version: item.version })})`)),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data matrix-table' }, h('thead', {}, head), h('tbody', {}, rows))),
    h('div', { class: 'form-issues', 'aria-live': 'assertive' }),
    status);
  const saveButton = h('button', { type: 'submit', class: 'button primary' }, t('edit.review'));
  if (writer) form.append(commentBox, h('div', { class: 'actions' }, saveButton, button(t('common.reset'), () => go(location.hash))));

  function save() {
    if (form.querySelector('input.limit[aria-invalid]')) {
      clear(status, h('p', { class: 'error', role: 'alert' }, t('rules.fix_amounts')));
      return;
    }
    saveRules(org, ix, item, pack, { trigger: saveButton, status, comment: comment.value.trim() });
  }
  return form;
}

// --- the YAML editor ------------------------------------------------------------------------------------

function yamlEditor(org, ix, packs, writer) {
  const picker = select(packs.map((p) => [p.name, p.name]), { id: 'pack-picker' });
  const area = h('textarea', { id: 'yaml', class: 'code', rows: 24, spellcheck: 'false', readOnly: !writer, 'aria-describedby': 'yaml-issues' });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const issues = h('div', { id: 'yaml-issues', class: 'yaml-issues', 'aria-live': 'polite' });
  const [comment, commentBox] = commentField();
  let etag = null;
  let errorLines = new Set();

  const drawGutter = () => {
    const count = area.value.split('\n').length;
    clear(gutter, Array.from({ length: count }, (_, i) => h('div', { class: errorLines.has(i + 1) ? 'bad' : '' }, String(i + 1))));
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener('input', drawGutter);
  area.addEventListener('scroll', () => { gutter.scrollTop = area.scrollTop; });

  const goToLine = (line) => {
    const lines = area.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[line - 1] || '').length);
    const height = area.scrollHeight / Math.max(lines.length, 1);
    area.scrollTop = Math.max(0, (line - 5) * height);
  };

  const showProblems = (list) => {
    errorLines = new Set(list.filter((i) => i.line).map((i) => i.line));
    drawGutter();
    clear(issues, list.length ? h('div', { class: 'error', role: 'alert' }, h('strong', {}, t('rules.invalid', { n: list.length })),
      h('ul', { class: 'issues' }, list.map((issue) => h('li', {}, issue.line
        ? h('button', { type: 'button', class: 'link', onClick: () => goToLine(issue.line) }, issueText(issue))
        : issueText(issue))))) : null);
  };

  const load = async () => {
    clear(issues);
    errorLines = new Set();
    const { data, etag: tag } = await api(`/admin/orgs/${enc(org)}/rules/${enc(picker.value)}`, { accept: 'application/yaml' });
    area.value = data;
    etag = tag;
    drawGutter();
  };
  picker.addEventListener('change', () => load().catch((error) => clear(issues, errorBox(error))));

  const path = () => `/admin/orgs/${enc(org)}/rules/${enc(picker.value)}`;
  const validate = async (trigger) => busy(trigger, async () => {
    try {
      const preview = (await api(`${path()}?preview=true`, { method: 'PUT', body: area.value, yaml: true })).data;
      showProblems(preview.valid ? [] : preview.issues);
      if (preview.valid) issues.append(h('p', { class: 'ok', role: 'status' }, t('rules.valid')));
      return preview;
    } catch (error) {
      showProblems(error.issues);
      if (!error.issues.length) clear(issues, errorBox(error));
      return null;
    }
  });
  const save = async (trigger) => {
    const preview = await validate(trigger);
    if (!preview || !preview.valid) return;
    const said = comment.value.trim() ? h('p', { class: 'change-comment-shown' }, h('strong', {}, `${t('rules.comment')}: `), comment.value.trim()) : null;
    const choice = await dialog(t('rules.preview_title'), h('div', {}, impactView(ix, preview), said), [
      { label: t('common.save'), value: 'save', kind: 'primary' }, { label: t('common.cancel'), value: 'cancel' }]);
    if (choice !== 'save') return;
    await busy(trigger, async () => {
      try {
        const done = await api(path(), { method: 'PUT', body: area.value, yaml: true, etag, comment: comment.value.trim() || undefined });
        changed(org);
        toast(done.status === 202 ? t('rules.pending') : t('edit.saved', { version: done.data.policy_version, revision: done.data.revision }));
        await load();
      } catch (error) {
        showProblems(error.issues);
        issues.append(errorBox(error, { onReload: () => load() }));
      }
    });
  };
  const validateButton = button(t('rules.validate'), () => validate(validateButton), { id: 'yaml-validate' });
  const saveButton = button(t('common.save'), () => save(saveButton), { kind: 'primary', id: 'yaml-save' });
  const box = h('div', { class: 'yaml-editor' },
    field(t('rules.pack'), picker),
    h('label', { for: 'yaml', class: 'sr-only' }, t('rules.yaml_label')),
    h('div', { class: 'code-box' }, gutter, area),
    issues,
    writer ? commentBox : null,
    writer ? h('div', { class: 'actions' }, validateButton, saveButton) : null);
  load().catch((error) => clear(issues, errorBox(error)));
  return box;
}

