// People and their assignments (primary, concurrent, acting with its window), with links to edit them.

import { h, add } from '../dom.js';
import { t, nm } from '../i18n.js';
import { enc } from '../api.js';
import { can, documentOf } from '../app.js';
import { pageHeader, input, field } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org, args = [] }) {
  const { document: doc, revision, policy_version: policy } = await documentOf(org, { fresh: true });
  const ix = ov.index(doc);
  const writer = can('org_chart:write', org);
  const now = Date.now();
  const rowOf = (person) => h('tr', { dataset: { person: person.id } },
    h('td', {}, h('strong', {}, nm(person.name, person.id)), h('div', { class: 'muted' }, h('code', {}, person.id))),
    h('td', {}, h('ul', { class: 'plain' }, (person.assignments || []).map((a) => {
      const when = ov.phase(a, now);
      return h('li', { class: [when !== 'current' && 'muted', a.kind === 'acting' && 'acting'] },
        h('a', { href: `#/${enc(org)}/post/${enc(a.post)}` }, ov.postName(ix, a.post)),
        ` · ${t(`kind.${a.kind || 'primary'}`)}`,
        a.valid_from || a.valid_to ? ` · ${a.valid_from || '…'} – ${a.valid_to || '…'}` : '',
        a.stands_in_for ? ` · ${t('chart.acting_for', { person: ov.personName(ix, a.stands_in_for) })}` : '',
        when !== 'current' ? ` (${t(`phase.${when}`)})` : '');
    }))),
    h('td', {}, writer ? h('a', { class: 'button small', href: `#/${enc(org)}/edit/people/${enc(person.id)}`, 'aria-label': t('edit.edit_named', { name: nm(person.name, person.id) }) }, t('common.edit')) : null));
  const body = h('tbody', {});
  const people = [...ix.people.values()];
  // `#/<org>/people/<id>` (a search result) opens the list filtered to that person
  const search = input({ type: 'search', id: 'people-filter', placeholder: t('people.filter_hint'), value: args[0] || '' });
  const fill = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...people
      .filter((p) => !q || [p.id, p.name.zh, p.name.en, ...(p.assignments || []).map((a) => ov.postName(ix, a.post))].some((x) => String(x).toLowerCase().includes(q)))
      .map(rowOf));
  };
  search.addEventListener('input', fill);
  fill();
  const headers = [t('people.person'), t('people.assignments'), ''];
  add(page, 
    pageHeader(t('people.title'), writer ? h('a', { class: 'button primary', href: `#/${enc(org)}/new/people` }, t('edit.new_person')) : null),
    h('p', { class: 'meta' }, t('common.revision', { revision, policy })),
    field(t('people.filter'), search),
    h('table', { class: 'data' }, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body),
  );
}
