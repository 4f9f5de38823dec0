// Reading an organisation document for display: names, who holds a post at a moment (acting windows
// included), vacancies, separation-of-duties pairs, reporting lines. Pure functions of the document.

import { nm } from './i18n.js';
import { instantOf } from './time.js';

export function index(doc) {
  const posts = new Map((doc.posts || []).map((p) => [p.id, p]));
  const people = new Map((doc.people || []).map((p) => [p.id, p]));
  const departments = new Map((doc.departments || []).map((d) => [d.id, d]));
  const resources = new Map(((doc.catalogue || {}).resources || []).map((r) => [r.id, r]));
  const groups = new Map(((doc.catalogue || {}).groups || []).map((g) => [g.id, g]));
  return { doc, posts, people, departments, resources, groups };
}

export const postName = (ix, id) => nm(ix.posts.get(id)?.name, id);
export const personName = (ix, id) => nm(ix.people.get(id)?.name, id);
export const departmentName = (ix, id) => nm(ix.departments.get(id)?.name, id);
export const resourceName = (ix, id) => nm((ix.resources.get(id) || ix.groups.get(id))?.name, id);

function startOf(value) {
  if (!value) return -Infinity;
  const text = String(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return instantOf(text).getTime();  // the day starts in the organisation's zone
  return zonedTime(text);
}

// A date-time without an offset is the organisation's wall time, as the server reads it.
function zonedTime(text) {
  const local = instantOf(text);
  return local ? local.getTime() : new Date(text).getTime();
}

function endOf(value) {
  if (!value) return Infinity;
  const text = String(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const [y, m, d] = text.split('-').map(Number);
    const next = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
    return instantOf(next).getTime();  // a date alone includes that whole day
  }
  return zonedTime(text);
}

/** `current`, `upcoming` or `past` for an assignment at `at` (ms). */
export function phase(assignment, at) {
  if (at < startOf(assignment.valid_from)) return 'upcoming';
  if (at >= endOf(assignment.valid_to)) return 'past';
  return 'current';
}

/** Per post: its assignments `{person, assignment, phase}` (past ones left out). */
export function holdersByPost(ix, at) {
  const out = new Map([...ix.posts.keys()].map((id) => [id, []]));
  for (const person of ix.people.values()) {
    for (const assignment of person.assignments || []) {
      const when = phase(assignment, at);
      if (when === 'past') continue;
      if (!out.has(assignment.post)) out.set(assignment.post, []);
      out.get(assignment.post).push({ person: person.id, assignment, phase: when });
    }
  }
  return out;
}

/** Per post, the posts it may not be held together with, and the reasons. */
export function separations(ix) {
  const out = new Map();
  for (const rule of ix.doc.separation_of_duties || []) {
    for (const post of rule.posts) {
      if (!out.has(post)) out.set(post, []);
      out.get(post).push({ id: rule.id, others: rule.posts.filter((p) => p !== post), reason: rule.reason });
    }
  }
  return out;
}

/** People who hold, at `at`, two posts that a separation-of-duties entry keeps apart: Set of "person|post". */
export function conflicts(ix, at) {
  const found = new Set();
  for (const rule of ix.doc.separation_of_duties || []) {
    for (const person of ix.people.values()) {
      const held = (person.assignments || []).filter((a) => rule.posts.includes(a.post) && phase(a, at) === 'current');
      if (new Set(held.map((a) => a.post)).size >= 2) held.forEach((a) => found.add(`${person.id}|${a.post}`));
    }
  }
  return found;
}

export function children(ix) {
  const out = new Map([...ix.posts.keys()].map((id) => [id, []]));
  for (const post of ix.posts.values()) {
    if (post.reports_to && out.has(post.reports_to)) out.get(post.reports_to).push(post.id);
  }
  return out;
}

export function roots(ix) {
  return [...ix.posts.values()].filter((p) => !p.reports_to || !ix.posts.has(p.reports_to)).map((p) => p.id);
}

/** The superiors of a post, nearest first (stops at a cycle). */
export function line(ix, postId) {
  const out = [];
  let current = ix.posts.get(postId)?.reports_to;
  while (current && !out.includes(current) && ix.posts.has(current)) {
    out.push(current);
    current = ix.posts.get(current).reports_to;
  }
  return out;
}

/** Departments in tree order, each with its depth. */
export function departmentTree(ix) {
  const kids = new Map();
  for (const d of ix.departments.values()) {
    const parent = d.parent && ix.departments.has(d.parent) ? d.parent : '';
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent).push(d.id);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const id of kids.get(parent) || []) {
      out.push({ id, depth });
      walk(id, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

/** A stable colour slot (0–7) per department, in document order. */
export function colourOf(ix, departmentId) {
  const position = [...ix.departments.keys()].indexOf(departmentId);
  return position < 0 ? 0 : position % 8;
}

export function actionsText(actions) {
  return actions === '*' ? '*' : (actions || []).join(', ');
}

/** Every limit rule of the packs that names this post (or has a default), with its limit for it. */
export function limitsFor(packs, postId) {
  const out = [];
  for (const item of packs || []) {
    for (const rule of item.pack.rules || []) {
      if (rule.kind !== 'limit' || rule.enabled === false) continue;
      const own = rule.limits && Object.prototype.hasOwnProperty.call(rule.limits, postId);
      if (!own && (rule.default === undefined || rule.default === null)) continue;
      out.push({ pack: item.name, rule, limit: own ? rule.limits[postId] : rule.default, isDefault: !own });
    }
  }
  return out;
}

/** Other rules that name this post in `applies_to.posts`, or approve through it. */
export function rulesFor(packs, postId) {
  const out = [];
  for (const item of packs || []) {
    for (const rule of item.pack.rules || []) {
      if (rule.kind === 'limit') continue;
      const posts = (rule.applies_to && rule.applies_to.posts) || [];
      if (posts.includes(postId) || rule.approver === postId || (rule.notify || []).includes(postId) || (rule.posts || []).includes(postId)) {
        out.push({ pack: item.name, rule });
      }
    }
  }
  return out;
}
