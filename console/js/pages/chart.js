// The org chart: posts along their reporting lines (直接上级), coloured by department, with holders, acting
// holders and their windows, vacancies and separation-of-duties conflicts; the departments beside it.

import { h, clear, add } from '../dom.js';
import { t, nm } from '../i18n.js';
import { enc } from '../api.js';
import { can, documentOf, go } from '../app.js';
import { pageHeader, section, button, field, input } from '../ui.js';
import * as ov from '../orgview.js';
import { dateInput, instantOf, isLocal, today as todayIn, zone } from '../time.js';

export async function render(page, { org }) {
  const { document: doc, revision, policy_version: policy } = await documentOf(org, { fresh: true });
  const ix = ov.index(doc);
  const writer = can('org_chart:write', org);
  // The chart's day is the organisation's (its zone), read at noon there.
  const atInput = dateInput({ id: 'chart-at', value: todayIn() }, { label: t('date.pick') });
  const chartBox = h('div', { class: 'chart-scroll', tabindex: '0', 'aria-label': t('chart.label') });
  const draw = () => {
    const noon = instantOf(`${atInput.value.trim().slice(0, 10)} 12:00`);
    const at = noon ? noon.getTime() : Date.now();
    clear(chartBox, drawChart(org, ix, at));
  };
  atInput.addEventListener('change', draw);
  atInput.addEventListener('input', () => { if (isLocal(atInput.value)) draw(); });  // redrawn once a whole date is typed
  draw();
  add(page, 
    pageHeader(`${t('chart.title')} · ${nm(doc.name, org)}`,
      writer ? button(t('edit.new_department'), () => go(`#/${enc(org)}/new/departments`)) : null,
      writer ? button(t('edit.new_post'), () => go(`#/${enc(org)}/new/posts`)) : null,
      writer ? button(t('edit.new_person'), () => go(`#/${enc(org)}/new/people`)) : null),
    h('p', { class: 'meta' }, t('common.revision', { revision, policy }), ' · ', t('chart.summary', { posts: ix.posts.size, people: ix.people.size, departments: ix.departments.size })),
    h('div', { class: 'toolbar' }, field(t('chart.at'), atInput, { hint: t('time.zone', { zone: zone() }) }), legend()),
    chartBox,
    departments(org, ix, writer),
  );
}

function legend() {
  return h('ul', { class: 'legend', 'aria-label': t('chart.legend') },
    h('li', {}, h('span', { class: 'swatch vacant' }), t('chart.vacant')),
    h('li', {}, h('span', { class: 'swatch acting' }), t('chart.acting')),
    h('li', {}, h('span', { class: 'swatch sod' }), t('chart.sod')),
    h('li', {}, h('span', { class: 'swatch conflict' }), t('chart.conflict')));
}

function drawChart(org, ix, at) {
  const holders = ov.holdersByPost(ix, at);
  const sod = ov.separations(ix);
  const clashes = ov.conflicts(ix, at);
  const kids = ov.children(ix);
  const seen = new Set();
  // Three or more subordinates without subordinates of their own are stacked in a column: the chart stays
  // about as wide as a laptop screen instead of one long row.
  const stacked = (ids) => ids.length >= 3 && ids.every((id) => !(kids.get(id) || []).length);
  const branch = (postId) => {
    if (seen.has(postId)) return null;
    seen.add(postId);
    const below = kids.get(postId) || [];
    return h('li', { class: 'branch' }, node(org, ix, postId, holders.get(postId) || [], sod.get(postId) || [], clashes),
      below.length ? h('ul', { class: ['children', stacked(below) && 'stack'] }, below.map(branch)) : null);
  };
  const trees = ov.roots(ix).map((id) => h('ul', { class: 'tree' }, branch(id)));
  return h('div', { class: 'forest' }, trees.length ? trees : h('p', { class: 'empty' }, t('chart.no_posts')));
}

function node(org, ix, postId, held, sod, clashes) {
  const post = ix.posts.get(postId);
  const current = held.filter((x) => x.phase === 'current');
  const vacant = current.length === 0;
  const conflict = current.some((x) => clashes.has(`${x.person}|${postId}`));
  const headcount = post.headcount === undefined ? 1 : post.headcount;
  const badges = [];
  if (vacant) badges.push(h('span', { class: 'badge vacant' }, t('chart.vacant')));
  else if (current.length < headcount) badges.push(h('span', { class: 'badge partial' }, t('chart.filled', { n: current.length, of: headcount })));
  else if (current.length > headcount) badges.push(h('span', { class: 'badge conflict over-headcount' }, t('chart.over_headcount', { n: current.length, of: headcount })));
  if (conflict) badges.push(h('span', { class: 'badge conflict' }, t('chart.conflict')));
  if (sod.length) {
    const others = sod.flatMap((s) => s.others.map((p) => ov.postName(ix, p)));
    badges.push(h('span', { class: 'badge sod', title: t('chart.sod_with', { posts: others.join(', ') }) }, `${t('chart.sod')}: ${others.join(', ')}`));
  }
  return h('div', {
    class: ['node', `dept-c${ov.colourOf(ix, post.department)}`, vacant && 'is-vacant', (conflict || current.length > headcount) && 'is-conflict'],
    dataset: { post: postId },
  },
  h('a', { class: 'node-title', href: `#/${enc(org)}/post/${enc(postId)}` }, ov.postName(ix, postId)),
  h('span', { class: 'chip' }, ov.departmentName(ix, post.department)),
  held.length ? h('ul', { class: 'holders' }, held.map((x) => holder(ix, x, clashes, postId))) : null,
  badges.length ? h('div', { class: 'badges' }, badges) : null);
}

function holder(ix, { person, assignment, phase }, clashes, postId) {
  const acting = assignment.kind === 'acting';
  const window = acting || assignment.valid_from || assignment.valid_to
    ? `${assignment.valid_from || '…'} – ${assignment.valid_to || '…'}` : '';
  const label = [ov.personName(ix, person)];
  if (acting) label.push(` · ${t('chart.acting_for', { person: assignment.stands_in_for ? ov.personName(ix, assignment.stands_in_for) : '' })}`.replace(/\s+$/, ''));
  else if (assignment.kind === 'concurrent') label.push(` · ${t('kind.concurrent')}`);
  return h('li', {
    class: [acting && 'acting', phase === 'upcoming' && 'upcoming', clashes.has(`${person}|${postId}`) && 'conflict'],
    dataset: { person },
  }, label.join(''), window ? h('span', { class: 'window' }, ` ${window}`) : null,
  phase === 'upcoming' ? h('span', { class: 'window' }, ` (${t('chart.upcoming')})`) : null);
}

function departments(org, ix, writer) {
  const rows = ov.departmentTree(ix).map(({ id, depth }) => {
    const d = ix.departments.get(id);
    return h('li', { class: `depth-${Math.min(depth, 4)}` },
      h('span', { class: `swatch dept dept-c${ov.colourOf(ix, id)}` }),
      h('strong', {}, nm(d.name, id)),
      d.head ? h('span', { class: 'muted' }, ` · ${t('dept.head')}: `, h('a', { href: `#/${enc(org)}/post/${enc(d.head)}` }, ov.postName(ix, d.head))) : null,
      (d.duties || []).length ? h('span', { class: 'muted' }, ` · ${t('dept.duties', { n: d.duties.length })}`) : null,
      writer ? h('a', { class: 'button small', href: `#/${enc(org)}/edit/departments/${enc(id)}`, 'aria-label': t('edit.edit_named', { name: nm(d.name, id) }) }, t('common.edit')) : null);
  });
  return section(t('dept.title'), h('ul', { class: 'departments' }, rows));
}
