// One form per rule kind (the rules page's structured editors): posts are picked by name, a time window is a
// weekly grid, a condition's expression is checked as it is typed (by the pack's own preview, so the answer is
// the server's: syntax, unknown attributes, bounds), amounts are typed and shown with thousands separators.
// Every save goes through `saveRules`: the preview with each field before → after, a comment, then the write.

import { h, clear, newId } from '../dom.js';
import { t, nm, number, issueWords } from '../i18n.js';
import { api, enc } from '../api.js';
import { changed, documentOf, go } from '../app.js';
import { field, button, busy, errorBox, dialog, toast, select, input } from '../ui.js';
import { impactView } from '../impact.js';
import { keepDraft } from '../drafts.js';
import * as ov from '../orgview.js';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const SPECIAL_NOTIFY = ['superior', 'department_heads', 'leadership'];

// --- amounts with thousands separators ---------------------------------------------------------------------

/** The number a person typed ("50,000", "50 000", "1.5"), `undefined` for nothing, NaN for not a number. */
export function parseAmount(text) {
  const bare = String(text).replace(/[\s,\u00a0\u202f']/g, '');
  if (bare === '') return undefined;
  return /^\d+(\.\d+)?$/.test(bare) ? Number(bare) : NaN;
}

/** A text input for an amount: shown with separators, read by `parseAmount`; `onValue(n | undefined)` on a valid
 * change. A value that is not a number marks the input invalid and says so (`#<id>-error`). */
export function amountInput(value, onValue, props = {}) {
  const el = input({ inputmode: 'decimal', autocomplete: 'off', ...props, value: value === undefined || value === null ? '' : number(value) });
  const error = h('span', { class: 'cell-error', id: newId('amount-error'), hidden: true }, t('rules.not_a_number'));
  el.setAttribute('aria-describedby', error.id);
  el.addEventListener('input', () => {
    const parsed = parseAmount(el.value);
    const bad = Number.isNaN(parsed);
    error.hidden = !bad;
    if (bad) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid');
    if (!bad) onValue(parsed);
  });
  el.addEventListener('blur', () => {
    const parsed = parseAmount(el.value);
    if (parsed !== undefined && !Number.isNaN(parsed)) el.value = number(parsed);
  });
  return [el, error];
}

// --- saving: preview (before → after), comment, write --------------------------------------------------------

/** The comment field every rule form carries (sent as the change's comment). */
export function commentField() {
  const el = input({ class: 'change-comment', maxlength: 500 });
  return [el, field(t('rules.comment'), el, { hint: t('rules.comment_hint') })];
}

/**
 * Preview `pack` as the new version of `item`, show each change before → after, and save it with `comment`
 * when the person says so (or keep it as a draft for the simulator). Problems go to `status`.
 */
export async function saveRules(org, ix, item, pack, { trigger, status, comment }) {
  clear(status);
  const path = `/admin/orgs/${enc(org)}/rules/${enc(item.name)}`;
  await busy(trigger, async () => {
    try {
      const preview = (await api(`${path}?preview=true`, { method: 'PUT', body: pack })).data;
      const said = comment ? h('p', { class: 'change-comment-shown' }, h('strong', {}, `${t('rules.comment')}: `), comment) : null;
      const choice = await dialog(t('rules.preview_title'), h('div', {}, impactView(ix, preview), said), [
        { label: t('common.save'), value: 'save', kind: 'primary', disabled: !preview.valid },
        { label: t('impact.keep_draft'), value: 'draft', disabled: !preview.valid },
        { label: t('common.cancel'), value: 'cancel' },
      ]);
      if (choice === 'draft') {
        // Tried in the simulator against the current document with this pack in place of the stored one.
        const { document: current, version } = await documentOf(org, { fresh: true });
        keepDraft(org, {
          description: `PUT rules/${item.name}`, base_version: version, created_at: new Date().toISOString(),
          document: current, rules: { [item.name]: structuredClone(pack) },
        });
        status.append(h('p', { class: 'notice', role: 'status' }, t('edit.draft_kept'), ' ',
          h('a', { href: `#/${enc(org)}/simulator` }, t('edit.open_simulator'))));
        return;
      }
      if (choice !== 'save') return;
      const done = await api(path, { method: 'PUT', body: pack, etag: item.etag, comment: comment || undefined });
      changed(org);
      toast(done.status === 202 ? t('rules.pending') : t('edit.saved', { version: done.data.policy_version, revision: done.data.revision }));
      go(location.hash);
    } catch (error) {
      status.append(errorBox(error, { onReload: () => go(location.hash) }));
    }
  });
}

// --- pickers ------------------------------------------------------------------------------------------------

/** Checkboxes of posts by name (`extra`: more [value, label] choices first); `onChange(values)` in post order. */
function postPicker(ix, legend, chosen, onChange, { extra = [], hint, path } = {}) {
  const picked = new Set(chosen || []);
  const options = [...extra, ...[...ix.posts.keys()].map((id) => [id, ov.postName(ix, id)])];
  // A post the document no longer has is still shown (by its id), so that saving does not drop it silently.
  for (const id of picked) if (!options.some(([value]) => value === id)) options.push([id, id]);
  const boxes = options.map(([value, label]) => {
    const box = h('input', { type: 'checkbox', value, checked: picked.has(value), dataset: { post: value } });
    box.addEventListener('change', () => onChange(boxes.filter((b) => b.checked).map((b) => b.value)));
    return box;
  });
  const hintEl = hint ? h('p', { class: 'hint' }, hint) : null;
  return h('fieldset', { class: 'checks post-picker', dataset: path ? { path } : undefined }, h('legend', {}, legend),
    boxes.map((box, i) => h('label', { class: 'check' }, box, options[i][1])), hintEl,
    h('p', { class: 'field-error', hidden: true }));
}

function postSelect(ix, value, { none }) {
  return select([['', none], ...[...ix.posts.keys()].map((id) => [id, ov.postName(ix, id)])], { value: value || '' });
}

// --- the form of one rule -----------------------------------------------------------------------------------

/**
 * The form of the rule at `position` of `item`'s pack. `writer`: may save. Limits are in the matrix; their form
 * holds what the matrix does not (name, message, scope, currency, period).
 */
export function ruleForm(org, ix, item, position, writer) {
  const pack = structuredClone(item.pack);
  const rule = pack.rules[position];
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const issues = h('div', { class: 'form-issues', 'aria-live': 'assertive' });
  const [comment, commentBox] = commentField();
  const checkers = [];
  const ctx = { org, ix, item, pack, position, rule, checkers };

  const body = [
    names(rule),
    enabledBox(rule),
    scope(ix, rule),
    ...kindFields(ctx),
    messageFields(rule),
  ];
  const saveButton = h('button', { type: 'submit', class: 'button primary' }, t('edit.review'));
  const form = h('form', {
    class: ['rule-form', `kind-${rule.kind}`], dataset: { rule: rule.id, pack: item.name },
    onSubmit: (e) => { e.preventDefault(); if (writer) saveRules(org, ix, item, pack, { trigger: saveButton, status, comment: comment.value.trim() }); },
  }, h('fieldset', { class: 'plain', disabled: !writer }, body), issues,
  writer ? commentBox : null,
  writer ? h('div', { class: 'actions' }, saveButton, button(t('common.reset'), () => go(location.hash))) : null,
  status);
  const kindName = t(`kind.rule.${rule.kind}`);
  return h('details', { class: 'rule-item', dataset: { rule: rule.id, kind: rule.kind } },
    h('summary', {}, h('strong', {}, nm(rule.name, rule.id)), ` · ${kindName}`,
      rule.enabled === false ? h('span', { class: 'badge muted' }, t('rules.disabled')) : null),
    form);
}

function names(rule) {
  const zh = input({ value: (rule.name || {}).zh || '', lang: 'zh-CN' });
  const en = input({ value: (rule.name || {}).en || '', lang: 'en' });
  const set = () => { rule.name = { zh: zh.value, en: en.value }; };
  zh.addEventListener('input', set);
  en.addEventListener('input', set);
  return h('div', { class: 'field-row' }, field(t('rules.name_zh'), zh, { path: 'name.zh' }), field(t('rules.name_en'), en, { path: 'name.en' }));
}

function enabledBox(rule) {
  const box = h('input', { type: 'checkbox', checked: rule.enabled !== false });
  box.addEventListener('change', () => { if (box.checked) delete rule.enabled; else rule.enabled = false; });
  return h('label', { class: 'check' }, box, t('rules.enabled'));
}

function scope(ix, rule) {
  const applies = rule.applies_to || {};
  const what = `${(applies.resources || []).map((r) => ov.resourceName(ix, r)).join(', ')} · ${ov.actionsText(applies.actions || '*')}`;
  return h('div', {},
    h('p', { class: 'meta rule-scope' }, h('strong', {}, `${t('rules.applies_to')}: `), what),
    postPicker(ix, t('rules.only_posts'), applies.posts, (values) => {
      if (values.length) rule.applies_to.posts = values; else delete rule.applies_to.posts;
    }, { hint: t('rules.only_posts_hint'), path: 'applies_to.posts' }));
}

function messageFields(rule) {
  const zh = h('textarea', { rows: 2, lang: 'zh-CN' });
  const en = h('textarea', { rows: 2, lang: 'en' });
  zh.value = (rule.message || {}).zh || '';
  en.value = (rule.message || {}).en || '';
  const set = () => {
    if (!zh.value && !en.value) delete rule.message; else rule.message = { zh: zh.value, en: en.value };
  };
  zh.addEventListener('input', set);
  en.addEventListener('input', set);
  return h('div', { class: 'field-row' }, field(t('rules.message_zh'), zh, { path: 'message.zh', wide: true }), field(t('rules.message_en'), en, { path: 'message.en', wide: true }));
}

function choice(rule, key, label, options, { fallback } = {}) {
  const el = select(options.map((o) => [o, t(`rules.${key}.${o}`)]), { value: rule[key] || fallback });
  el.addEventListener('change', () => { rule[key] = el.value; });
  return field(label, el, { path: key });
}

function pathInput(rule, key, label, fallback) {
  const el = input({ value: rule[key] || fallback, class: 'code', spellcheck: 'false' });
  el.addEventListener('input', () => { rule[key] = el.value.trim(); });
  return field(label, el, { path: key, hint: t('rules.path_hint') });
}

function approverSelect(ix, rule) {
  const el = postSelect(ix, rule.approver, { none: t('rules.approver_default') });
  el.addEventListener('change', () => { if (el.value) rule.approver = el.value; else delete rule.approver; });
  return field(t('rules.approver'), el, { path: 'approver' });
}

function kindFields(ctx) {
  const { ix, rule } = ctx;
  switch (rule.kind) {
    case 'limit':
      return [
        h('p', { class: 'hint' }, t('rules.limit_in_matrix')),
        pathInput(rule, 'attribute', t('rules.attribute'), 'context.amount'),
        h('div', { class: 'field-row' },
          (() => {
            const el = input({ value: rule.currency || '', maxlength: 3, class: 'code', autocapitalize: 'characters' });
            el.addEventListener('input', () => { const v = el.value.trim().toUpperCase(); if (v) rule.currency = v; else delete rule.currency; });
            return field(t('rules.currency'), el, { path: 'currency' });
          })(),
          (() => {
            const el = select([['', t('period.each')], ...['day', 'week', 'month'].map((p) => [p, t(`period.${p}`)])], { value: rule.period || '' });
            el.addEventListener('change', () => { if (el.value) rule.period = el.value; else delete rule.period; });
            return field(t('rules.period'), el, { path: 'period' });
          })()),
      ];
    case 'separation':
      return [
        choice(rule, 'check', t('rules.check'), ['maker_checker', 'self_approval', 'four_eyes']),
        pathInput(rule, 'maker', t('rules.maker'), 'context.maker'),
        pathInput(rule, 'requester', t('rules.requester'), 'context.requester'),
        (() => {
          const el = input({ type: 'number', min: 1, max: 100, value: String(rule.history || 3) });
          el.addEventListener('input', () => { const n = Number(el.value); if (Number.isInteger(n) && n !== 3) rule.history = n; else delete rule.history; });
          return field(t('rules.history'), el, { path: 'history', hint: t('rules.history_hint') });
        })(),
      ];
    case 'dual_control':
      return [
        postPicker(ix, t('rules.second_posts'), rule.posts, (values) => { rule.posts = values; }, { path: 'posts' }),
        pathInput(rule, 'second_person', t('rules.second_person'), 'context.second_person'),
      ];
    case 'suitability':
      return [
        pathInput(rule, 'risk', t('rules.risk'), 'resource.risk_level'),
        pathInput(rule, 'tolerance', t('rules.tolerance'), 'context.customer_risk_tolerance'),
      ];
    case 'time_window':
      return [weeklyGrid(rule)];
    case 'requirement':
      return [
        expressionField(ctx, 'when', t('rules.when'), 'true'),
        expressionField(ctx, 'require', t('rules.require')),
        choice(rule, 'otherwise', t('rules.otherwise'), ['deny', 'needs_approval'], { fallback: 'deny' }),
        approverSelect(ix, rule),
      ];
    case 'notification':
      return [
        expressionField(ctx, 'when', t('rules.when'), 'true'),
        postPicker(ix, t('rules.notify'), rule.notify, (values) => { rule.notify = values; },
          { extra: SPECIAL_NOTIFY.map((s) => [s, t(`rules.notify.${s}`)]), path: 'notify' }),
      ];
    case 'condition':
      return [
        expressionField(ctx, 'when', t('rules.when')),
        choice(rule, 'effect', t('rules.effect'), ['deny', 'needs_approval'], { fallback: 'deny' }),
        approverSelect(ix, rule),
      ];
    default:
      return [h('p', { class: 'hint' }, t('rules.yaml_only'))];
  }
}

// --- a time window: the week as a grid ------------------------------------------------------------------------

function weeklyGrid(rule) {
  const body = h('tbody', {});
  const draw = () => {
    clear(body, rule.windows.map((w, i) => {
      const days = new Set(w.days || WEEKDAYS);
      const label = nm(w.name, t('rules.window_n', { n: i + 1 }));
      const dayBox = (day) => {
        const box = h('input', { type: 'checkbox', checked: days.has(day), 'aria-label': `${label} — ${t(`weekday.${day}`)}`, dataset: { day } });
        box.addEventListener('change', () => {
          if (box.checked) days.add(day); else days.delete(day);
          const list = WEEKDAYS.filter((d) => days.has(d));
          if (list.length === WEEKDAYS.length) delete w.days; else w.days = list;
        });
        return h('td', { class: 'day' }, box);
      };
      const clock = (key) => {
        const el = h('input', { type: 'time', value: w[key], 'aria-label': `${label} — ${t(`rules.window_${key}`)}`, dataset: { clock: key } });
        el.addEventListener('input', () => { w[key] = el.value; });
        return h('td', {}, el);
      };
      // The visible word first, then (for screen readers) which window: axe's label-content-name-mismatch.
      const remove = button([t('common.remove'), h('span', { class: 'sr-only' }, ` ${label}`)], () => { rule.windows.splice(i, 1); draw(); },
        { kind: 'small', disabled: rule.windows.length === 1 });
      return h('tr', { dataset: { window: i } }, h('th', { scope: 'row' }, label), WEEKDAYS.map(dayBox), clock('start'), clock('end'), h('td', {}, remove));
    }));
  };
  draw();
  const add = button(t('rules.add_window'), () => { rule.windows.push({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }); draw(); });
  return h('fieldset', { class: 'group week-grid', dataset: { path: 'windows' } }, h('legend', {}, t('rules.windows')),
    h('p', { class: 'hint' }, t('rules.windows_hint')),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('rules.window')), WEEKDAYS.map((d) => h('th', { scope: 'col', class: 'day' }, t(`weekday.${d}`))),
        h('th', { scope: 'col' }, t('rules.window_start')), h('th', { scope: 'col' }, t('rules.window_end')), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('common.remove'))))),
      body)),
    add, h('p', { class: 'field-error', hidden: true }), holidays(rule));
}

// The dates no window opens on (public holidays, closures), in the organisation's time zone.
function holidays(rule) {
  const list = h('ul', { class: 'plain holidays' });
  const draw = () => {
    const days = rule.holidays || [];
    clear(list, days.map((day, i) => {
      const el = h('input', { type: 'date', value: day, 'aria-label': t('rules.holiday_n', { n: i + 1 }), dataset: { holiday: i } });
      el.addEventListener('input', () => { days[i] = el.value; });
      const remove = button([t('common.remove'), h('span', { class: 'sr-only' }, ` ${t('rules.holiday_n', { n: i + 1 })}`)], () => {
        days.splice(i, 1);
        if (!days.length) delete rule.holidays;
        draw();
      }, { kind: 'small' });
      return h('li', { dataset: { path: `holidays[${i}]` } }, el, ' ', remove, h('p', { class: 'field-error', hidden: true }));
    }));
    if (!days.length) list.append(h('li', { class: 'muted' }, t('rules.no_holidays')));
  };
  draw();
  const add = button(t('rules.add_holiday'), () => {
    rule.holidays ||= [];
    rule.holidays.push(new Date().toISOString().slice(0, 10));
    draw();
    list.querySelector(`input[data-holiday="${rule.holidays.length - 1}"]`).focus();
  });
  return h('fieldset', { class: 'group', dataset: { path: 'holidays' } }, h('legend', {}, t('rules.holidays')),
    h('p', { class: 'hint' }, t('rules.holidays_hint')), list, add);
}

// --- an expression, checked as it is typed ----------------------------------------------------------------------

function expressionField(ctx, key, label, fallback) {
  const { org, item, pack, position, rule } = ctx;
  const el = h('textarea', { rows: 2, class: 'code expression', spellcheck: 'false', dataset: { expression: key } });
  el.value = rule[key] === undefined ? (fallback || '') : rule[key];
  const verdict = h('p', { class: 'expression-check', 'aria-live': 'polite' });
  let timer = null;
  let asked = 0;
  const check = async () => {
    const mine = ++asked;
    clear(verdict, t('rules.checking'));
    verdict.className = 'expression-check muted';
    try {
      const preview = (await api(`/admin/orgs/${enc(org)}/rules/${enc(item.name)}?preview=true`, { method: 'PUT', body: pack })).data;
      if (mine !== asked) return;
      show(preview.issues || []);
    } catch (error) {
      if (mine !== asked) return;
      if (error.issues.length) show(error.issues); else clear(verdict, errorBox(error));
    }
  };
  const show = (list) => {
    const here = `rules[${position}].${key}`;
    const mine = list.filter((i) => i.severity !== 'warning' && (i.path === here || (i.path || '').startsWith(`${here}.`)));
    if (mine.length) {
      el.setAttribute('aria-invalid', 'true');
      verdict.className = 'expression-check bad';
      clear(verdict, h('span', { role: 'alert' }, mine.map((i) => issueWords(i)).join(' ')));
    } else {
      el.removeAttribute('aria-invalid');
      verdict.className = 'expression-check ok';
      clear(verdict, t('rules.expression_ok'));
    }
  };
  el.addEventListener('input', () => {
    rule[key] = el.value;
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
  const box = field(label, el, { path: key, wide: true, hint: t('rules.expression_hint') });
  box.append(verdict);
  ctx.checkers.push(check);
  return box;
}
