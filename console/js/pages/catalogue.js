// The organisation's catalogue and its separation of duties: resource types with their actions, resource groups
// with their members, and the entries that keep posts apart (with whoever holds two of them today). Each is
// edited with the same form, impact preview and If-Match as a post (pages/edit.js).

import { h, add } from '../dom.js';
import { t, nm } from '../i18n.js';
import { enc } from '../api.js';
import { can, documentOf, go } from '../app.js';
import { pageHeader, section, button, table } from '../ui.js';
import * as ov from '../orgview.js';

export async function render(page, { org }) {
  const { document: doc, revision, policy_version: policy } = await documentOf(org, { fresh: true });
  const ix = ov.index(doc);
  const writer = can('org_chart:write', org);
  const editLink = (collection, id, name) => (writer
    ? h('a', { class: 'button small', href: `#/${enc(org)}/edit/${collection}/${enc(id)}`, 'aria-label': t('edit.edit_named', { name }) }, t('common.edit'))
    : null);
  const newButton = (collection) => (writer
    ? h('div', { class: 'toolbar' }, button(t(`edit.new.${collection}`), () => go(`#/${enc(org)}/new/${collection}`), { id: `new-${collection}` }))
    : null);
  const named = (names, id) => h('td', {}, h('strong', {}, nm(names, id)), h('div', { class: 'muted' }, h('code', {}, id)));
  const codes = (ids) => h('ul', { class: 'plain ids' }, ids.map((id) => h('li', {}, h('code', {}, id))));

  const resources = [...ix.resources.values()].map((r) => h('tr', { dataset: { resource: r.id } },
    named(r.name, r.id), h('td', {}, codes(r.actions || [])), h('td', {}, String((r.instances || []).length)),
    h('td', {}, editLink('resources', r.id, nm(r.name, r.id)))));
  const groups = [...ix.groups.values()].map((g) => h('tr', { dataset: { group: g.id } },
    named(g.name, g.id), h('td', {}, h('ul', { class: 'plain ids' }, (g.members || []).map((m) => h('li', {}, ov.resourceName(ix, m), ' ', h('code', { class: 'small' }, m))))),
    h('td', {}, editLink('groups', g.id, nm(g.name, g.id)))));
  const now = Date.now();
  const entries = (doc.separation_of_duties || []).map((s) => {
    const together = [...ix.people.values()].filter((person) => new Set((person.assignments || [])
      .filter((a) => s.posts.includes(a.post) && ov.phase(a, now) === 'current').map((a) => a.post)).size >= 2);
    return h('tr', { dataset: { sod: s.id } },
      h('td', {}, h('code', {}, s.id)),
      h('td', {}, h('ul', { class: 'plain' }, s.posts.map((p) => h('li', {}, h('a', { href: `#/${enc(org)}/post/${enc(p)}` }, ov.postName(ix, p)))))),
      h('td', {}, nm(s.reason)),
      h('td', {}, together.length
        ? together.map((person) => h('span', { class: 'badge conflict' }, nm(person.name, person.id)))
        : h('span', { class: 'muted' }, t('catalogue.nobody'))),
      h('td', {}, editLink('separation_of_duties', s.id, s.id)));
  });

  add(page,
    pageHeader(t('catalogue.title')),
    h('p', { class: 'meta' }, t('common.revision', { revision, policy })),
    writer ? null : h('p', { class: 'notice', role: 'status', id: 'read-only' }, t('edit.read_only')),
    section(t('catalogue.resources'), h('p', { class: 'hint' }, t('catalogue.resources_hint')), newButton('resources'),
      table([t('catalogue.resource'), t('catalogue.actions'), t('catalogue.instances'), ''], resources, { className: 'catalogue-resources' })),
    section(t('catalogue.groups'), h('p', { class: 'hint' }, t('catalogue.groups_hint')), newButton('groups'),
      table([t('catalogue.group'), t('catalogue.members'), ''], groups, { className: 'catalogue-groups' })),
    section(t('catalogue.sod'), h('p', { class: 'hint' }, t('catalogue.sod_hint')), newButton('separation_of_duties'),
      table([t('catalogue.entry'), t('catalogue.posts'), t('catalogue.reason'), t('catalogue.held_together'), ''], entries, { className: 'catalogue-sod' })));
}
