// Versions of the organisation's document and rule packs: who, when, why; the diff of each; restore.

import { h, clear, add } from '../dom.js';
import { t, when } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { can, changed, go } from '../app.js';
import { pageHeader, section, button, busy, errorBox, dialog, toast, loading } from '../ui.js';
import { summaryItems } from '../impact.js';

export async function render(page, { org, args }) {
  const selected = args[0] ? Number(args[0]) : null;
  const { data } = await api(`/admin/orgs/${enc(org)}/versions${query({ limit: 100 })}`);
  const rows = data.items.map((v) => h('tr', { class: v.version === selected ? 'selected' : '', dataset: { version: v.version } },
    h('td', { class: 'num' }, h('a', { href: `#/${enc(org)}/versions/${v.version}`, 'aria-current': v.version === selected ? 'true' : null }, String(v.version))),
    h('td', { class: 'num' }, String(v.revision)),
    h('td', {}, v.kind === 'org' ? t('versions.org') : t('versions.pack', { name: v.name }), v.deleted ? h('span', { class: 'badge vacant' }, t('versions.deleted')) : null),
    h('td', {}, v.author), h('td', {}, v.comment), h('td', {}, when(v.created_at))));
  const headers = [t('versions.version'), t('versions.revision'), t('versions.what'), t('approvals.author'), t('edit.comment'), t('log.time')];
  const list = h('div', { class: 'table-scroll versions-list' }, h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows)));
  const detail = h('div', { class: 'version-detail', 'aria-live': 'polite' });
  add(page, pageHeader(t('versions.title')), h('div', { class: 'split versions' }, list, detail));
  if (selected) await showDiff(org, selected, detail, data.items.find((v) => v.version === selected));
  else detail.append(h('p', { class: 'hint' }, t('versions.pick')));
}

async function showDiff(org, number, box, listed) {
  clear(box, loading());
  try {
    const { data } = await api(`/admin/orgs/${enc(org)}/versions/${number}/diff`);
    const kind = data.kind || (listed && listed.kind);
    const may = can(kind === 'rules' ? 'rule_pack:write' : 'org_chart:write', org);
    const restore = may ? button(t('versions.restore'), () => doRestore(org, number, restore), { kind: 'primary', id: 'restore' }) : null;
    clear(box, section(t('versions.diff_title', { version: number, previous: data.previous_version ?? '—' }),
      h('p', { class: 'meta' }, `${data.author} · ${when(data.created_at)}${data.comment ? ` · ${data.comment}` : ''}`),
      summary(data.summary || {}),
      h('pre', { class: 'diff', tabindex: '0', 'aria-label': t('versions.diff') }, (data.diff || '').split('\n').map((line) => h('span', {
        class: line.startsWith('+++') || line.startsWith('---') ? 'file' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : '',
      }, `${line}\n`))),
      restore ? h('div', { class: 'actions' }, restore) : null));
  } catch (error) {
    clear(box, errorBox(error));
  }
}

function summary(summary) {
  const items = summaryItems(summary);
  return items.length ? h('ul', { class: 'summary' }, items) : null;
}

async function doRestore(org, number, trigger) {
  const comment = h('textarea', { rows: 2, id: 'restore-comment' });
  const choice = await dialog(t('versions.restore_title', { version: number }),
    [h('p', {}, t('versions.restore_text', { version: number })), h('label', { for: 'restore-comment' }, t('edit.comment')), comment],
    [{ label: t('versions.restore'), value: 'go', kind: 'primary' }, { label: t('common.cancel'), value: 'cancel' }]);
  if (choice !== 'go') return;
  await busy(trigger, async () => {
    try {
      const done = await api(`/admin/orgs/${enc(org)}/versions/${number}/restore`, { method: 'POST', body: comment.value ? { comment: comment.value } : {} });
      changed(org);
      toast(done.status === 202 ? t('rules.pending') : t('versions.restored', { version: done.data.policy_version, revision: done.data.revision }));
      go(`#/${enc(org)}/versions/${done.data.version || number}`);
    } catch (error) {
      trigger.parentElement.append(errorBox(error));
    }
  });
}
