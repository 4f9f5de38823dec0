// The search box in the header, and its results: people, posts, departments, duties, resources and rules of the
// organisation whose id or name (Chinese or English) contains the text; each result links to its page.

import { h, add } from '../dom.js';
import { t, nm } from '../i18n.js';
import { api, enc, query } from '../api.js';
import { go, can, documentOf } from '../app.js';
import * as ov from '../orgview.js';
import { pageHeader } from '../ui.js';

export const MAX_QUERY = 100;  // as the API bounds it (services/org_search.py)
const KINDS = ['person', 'post', 'department', 'duty', 'resource', 'group', 'rule'];

export function box(org, value = '') {
  const field = h('input', {
    type: 'search', id: 'search', name: 'q', value, maxlength: MAX_QUERY, autocomplete: 'off',
    placeholder: t('search.placeholder'), 'aria-label': t('search.label'),
  });
  return h('form', {
    class: 'search', role: 'search',
    onSubmit: (event) => {
      event.preventDefault();
      const q = field.value.trim();
      if (q) go(`#/${enc(org)}/search/${enc(q)}`);
    },
  }, field, h('button', { type: 'submit', class: 'button quiet' }, t('search.go')));
}

/** Where a result is shown. */
export function linkOf(org, hit) {
  const base = `#/${enc(org)}`;
  switch (hit.kind) {
    case 'person': return `${base}/people/${enc(hit.id)}`;
    case 'post': return `${base}/post/${enc(hit.id)}`;
    case 'duty': return hit.owner && hit.owner.startsWith('post:') ? `${base}/post/${enc(hit.owner.slice(5))}` : `${base}/chart`;
    case 'resource': case 'group': return `${base}/catalogue`;
    case 'rule': return can('rule_pack:read', org) ? `${base}/rules` : `${base}/overview`;
    default: return `${base}/chart`;
  }
}

export async function render(page, { org, args }) {
  const q = (args[0] || '').slice(0, MAX_QUERY);
  const [{ data }, { document: doc }] = await Promise.all([api(`/admin/orgs/${enc(org)}/search${query({ q, limit: 50 })}`), documentOf(org)]);
  const ix = ov.index(doc);
  const groups = KINDS.map((kind) => [kind, data.items.filter((hit) => hit.kind === kind)]).filter(([, hits]) => hits.length);
  add(page, pageHeader(t('search.title', { q: data.query })),
    h('p', { class: 'meta', role: 'status' }, data.items.length
      ? t(data.more ? 'search.found_more' : 'search.found', { n: data.items.length }) : t('search.none')),
    groups.map(([kind, hits]) => h('section', { class: 'panel search-group', dataset: { kind } },
      h('h2', {}, t(`search.kind.${kind}`)),
      h('ul', { class: 'results' }, hits.map((hit) => h('li', { dataset: { kind: hit.kind, id: hit.id } },
        h('a', { href: linkOf(org, hit) }, nm(hit.name, hit.id)),
        ' ', hit.kind === 'duty' ? h('span', { class: 'muted' }, duty(ix, hit)) : h('code', { class: 'muted' }, hit.id),
        hit.pack ? h('span', { class: 'muted' }, ` · ${t('search.in_pack', { pack: hit.pack })}`) : null))))));
}

// Whose duty it is, by name: 岗位「综合经办柜员」第 2 条 / duty 2 of Teller.
function duty(ix, hit) {
  if (!hit.owner || hit.owner === 'common') return t('search.common_duty', { number: hit.number });
  const [kind, id] = hit.owner.split(':');
  const owner = kind === 'post' ? ov.postName(ix, id) : ov.departmentName(ix, id);
  return t('search.duty_of', { owner, number: hit.number });
}
