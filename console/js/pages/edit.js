// Editing departments, posts (with duties), people (with assignments and acting windows), and the catalogue:
// resource types (with their actions), resource groups, and separation-of-duties entries.
// Every save is previewed first (`?preview=true`: the impact), then written with If-Match; a 412 means
// someone else changed the entity meanwhile, and the form offers to reload it.

import { h, clear, add } from '../dom.js';
import { t, nm } from '../i18n.js';
import { api, enc, ApiError } from '../api.js';
import { can, documentOf, changed, go } from '../app.js';
import { pageHeader, field, input, select, button, busy, errorBox, showIssues, clearIssues, toast } from '../ui.js';
import { impactDialog } from '../impact.js';
import { dateInput, dateTimeInput, instantOf } from '../time.js';
import { keepDraft, applyEdit } from '../drafts.js';
import * as ov from '../orgview.js';

const EDITABLE = ['departments', 'posts', 'people', 'resources', 'groups', 'separation_of_duties'];
const ID_PATTERN = '^[a-z][a-z0-9_]*$';
// Where each collection is in the document (for the API's issue paths), and the page that lists it.
const LIST_PAGE = { people: 'people', resources: 'catalogue', groups: 'catalogue', separation_of_duties: 'catalogue' };
const ITEMS = { resources: 'actions', groups: 'members', separation_of_duties: 'posts' };  // a list of ids, a row each

export async function renderEdit(page, { org, args }) {
  const [collection, id] = args;
  if (!EDITABLE.includes(collection) || !id) throw new ApiError(404, { message: t('error.no_page', { page: args.join('/') }) });
  const [{ document: doc }, entity] = await Promise.all([
    documentOf(org, { fresh: true }),
    api(`/admin/orgs/${enc(org)}/${collection}/${enc(id)}`),
  ]);
  editor(page, { org, collection, id, value: entity.data, etag: entity.etag, doc });
}

export async function renderNew(page, { org, args }) {
  const [collection] = args;
  if (!EDITABLE.includes(collection)) throw new ApiError(404, { message: t('error.no_page', { page: args.join('/') }) });
  const { document: doc } = await documentOf(org, { fresh: true });
  const firstDepartment = (doc.departments || [])[0];
  const blank = {
    departments: { id: '', name: { zh: '', en: '' } },
    posts: { id: '', name: { zh: '', en: '' }, department: firstDepartment ? firstDepartment.id : '' },
    people: { id: '', name: { zh: '', en: '' }, assignments: [] },
    resources: { id: '', name: { zh: '', en: '' }, actions: [''] },
    groups: { id: '', name: { zh: '', en: '' }, members: [''] },
    separation_of_duties: { id: '', posts: ['', ''], reason: { zh: '', en: '' } },
  }[collection];
  editor(page, { org, collection, id: null, value: blank, etag: null, doc });
}

function editor(page, { org, collection, id, value, etag, doc }) {
  const ix = ov.index(doc);
  const model = structuredClone(value);
  const writer = can('org_chart:write', org);
  const isNew = id === null;
  const titleKey = isNew ? `edit.new.${collection}` : `edit.edit.${collection}`;
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const forms = { departments: departmentForm, posts: postForm, people: personForm, resources: resourceForm, groups: groupForm, separation_of_duties: separationForm };
  const body = forms[collection](model, ix, isNew);
  const comment = input({ id: 'change-comment', maxlength: 4000 });
  const effective = dateTimeInput({ id: 'effective-at' }, { label: t('date.pick') });
  const listPage = `#/${enc(org)}/${LIST_PAGE[collection] || 'chart'}`;
  const back = () => go(collection === 'posts' && !isNew ? `#/${enc(org)}/post/${enc(id)}` : listPage);
  const form = h('form', { class: 'editor', novalidate: true, onSubmit: (e) => { e.preventDefault(); review(saveButton); } },
    h('div', { class: 'form-issues', 'aria-live': 'assertive' }),
    h('fieldset', { class: 'plain', disabled: !writer }, body,
      h('div', { class: 'grid' },
        field(t('edit.comment'), comment, { hint: t('edit.comment_hint') }),
        field(t('edit.effective_at'), effective, { hint: t('edit.effective_hint') }))),
    status);
  const saveButton = h('button', { type: 'submit', class: 'button primary', id: 'review-save' }, t('edit.review'));
  const deleteButton = !isNew && writer ? button(t('common.delete'), () => review(deleteButton, true), { kind: 'danger', id: 'delete' }) : null;
  form.append(h('div', { class: 'actions' }, writer ? saveButton : null, deleteButton, button(t('common.cancel'), back, { id: 'cancel' })));

  add(page, 
    pageHeader(isNew ? t(titleKey) : t(titleKey, { name: nm(value.name, id) })),
    writer ? null : h('p', { class: 'notice', role: 'status', id: 'read-only' }, t('edit.read_only')),
    form);

  const entityId = () => (isNew ? model.id : id);
  const path = () => (isNew ? `/admin/orgs/${enc(org)}/${collection}` : `/admin/orgs/${enc(org)}/${collection}/${enc(id)}`);
  const payload = () => {
    const out = structuredClone(model);
    const key = ITEMS[collection];
    if (key && Array.isArray(out[key])) out[key] = out[key].map((x) => x.trim()).filter(Boolean);  // rows left empty
    if (!isNew) delete out.id;
    // typed in the organisation's zone; one that is not a time goes as typed, for the API to refuse by name
    if (effective.value.trim()) out.effective_at = instantOf(effective.value)?.toISOString() || effective.value.trim();
    return out;
  };

  async function review(trigger, deleting = false) {
    clearIssues(form);
    clear(status);
    const method = deleting ? 'DELETE' : isNew ? 'POST' : 'PUT';
    const sent = deleting ? undefined : payload();
    const place = { entity: deleting ? null : '' };  // the API names an entity's fields relative to it
    await busy(trigger, async () => {
      let preview;
      try {
        preview = (await api(`${path()}?preview=true`, { method, body: sent })).data;
      } catch (error) {
        if (error.issues.length) showIssues(form, error.issues, place);
        status.append(errorBox(error));
        return;
      }
      if (!preview.valid) showIssues(form, preview.issues || [], place);
      const choice = await impactDialog(ix, preview, {
        title: t(deleting ? 'impact.title_delete' : 'impact.title'),
        saveLabel: t(deleting ? 'common.delete' : 'common.save'),
      });
      if (choice === 'draft') {
        const { document: current, version } = await documentOf(org, { fresh: true });
        const value_ = sent ? { ...sent } : undefined;
        if (value_) delete value_.effective_at;
        keepDraft(org, {
          description: `${method} ${collection}/${entityId()}`,
          base_version: version,
          created_at: new Date().toISOString(),
          document: applyEdit(current, collection, method, entityId(), value_),
        });
        status.append(h('p', { class: 'notice', role: 'status' }, t('edit.draft_kept'), ' ',
          h('a', { href: `#/${enc(org)}/simulator` }, t('edit.open_simulator'))));
        return;
      }
      if (choice !== 'save') return;
      try {
        const done = await api(path(), { method, body: sent, etag: isNew ? undefined : etag, comment: comment.value || undefined });
        changed(org);
        if (done.status === 202) toast(t('edit.scheduled', { when: done.data.effective_at || '' }));
        else toast(t(deleting ? 'edit.deleted' : 'edit.saved', { version: done.data.policy_version, revision: done.data.revision }));
        if (collection === 'posts' && !deleting) go(`#/${enc(org)}/post/${enc(entityId())}`);
        else go(listPage);
      } catch (error) {
        if (error.issues.length) showIssues(form, error.issues, place);
        status.append(errorBox(error, { onReload: () => go(location.hash) }));
      }
    });
  }
}

// --- field builders bound to a model object -------------------------------------------------------------

function text(obj, key, label, path, { optional = false, numeric = false, date = false, hint, ...props } = {}) {
  const value = obj[key] === undefined || obj[key] === null ? '' : String(obj[key]);
  const el = date ? dateInput({ ...props, value }, { label: t('date.pick') }) : input({ ...props, value });
  el.addEventListener('input', () => {
    const raw = el.value;
    if (raw.trim() === '' && optional) delete obj[key];
    else obj[key] = numeric && raw.trim() !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  });
  return field(label, el, { path, hint });
}

function choice(obj, key, label, options, path, { optional = false } = {}) {
  const el = select(optional ? [['', t('common.none_choice')], ...options] : options, { value: obj[key] || '' });
  el.value = obj[key] || '';
  el.addEventListener('change', () => {
    if (!el.value && optional) delete obj[key];
    else obj[key] = el.value;
  });
  return field(label, el, { path });
}

function names(obj, key, label, path, { optional = false } = {}) {
  const value = obj[key] || { zh: '', en: '' };
  if (!optional) obj[key] = value;
  const sync = () => {
    if (optional && !value.zh && !value.en) delete obj[key];
    else obj[key] = value;
  };
  const one = (lang) => {
    const el = input({ value: value[lang] || '', lang: lang === 'zh' ? 'zh-CN' : 'en' });
    el.addEventListener('input', () => { value[lang] = el.value; sync(); });
    return field(`${label} (${t(`lang.${lang}`)})`, el, { path: `${path}.${lang}` });
  };
  return h('div', { class: 'names', dataset: { path } }, one('zh'), one('en'), h('p', { class: 'field-error', hidden: true }));
}

function checks(obj, key, legend, options, path) {
  const chosen = new Set(obj[key] || []);
  const boxes = options.map(([value, label]) => {
    const box = h('input', { type: 'checkbox', value, checked: chosen.has(value) });
    box.addEventListener('change', () => {
      if (box.checked) chosen.add(value); else chosen.delete(value);
      const list = options.map(([v]) => v).filter((v) => chosen.has(v));
      if (list.length) obj[key] = list; else delete obj[key];
    });
    return h('label', { class: 'check' }, box, ' ', label);
  });
  return h('fieldset', { class: 'checks', dataset: { path } }, h('legend', {}, legend),
    boxes.length ? boxes : h('p', { class: 'muted' }, t('common.none')), h('p', { class: 'field-error', hidden: true }));
}

const postOptions = (ix, except) => [...ix.posts.values()].filter((p) => p.id !== except).map((p) => [p.id, `${nm(p.name, p.id)} (${p.id})`]);
const departmentOptions = (ix, except) => [...ix.departments.values()].filter((d) => d.id !== except).map((d) => [d.id, `${nm(d.name, d.id)} (${d.id})`]);
const peopleOptions = (ix, except) => [...ix.people.values()].filter((p) => p.id !== except).map((p) => [p.id, `${nm(p.name, p.id)} (${p.id})`]);
const resourceOptions = (ix) => [
  ...[...ix.resources.values()].map((r) => [r.id, `${nm(r.name, r.id)} (${r.id})`]),
  ...[...ix.groups.values()].map((g) => [g.id, `${t('edit.group')}: ${nm(g.name, g.id)} (${g.id})`]),
];

function idField(model, isNew) {
  if (!isNew) return field(t('edit.id'), input({ value: model.id, readOnly: true }), { path: 'id' });
  return text(model, 'id', t('edit.id'), 'id', { required: true, pattern: ID_PATTERN, hint: t('edit.id_hint'), autocomplete: 'off' });
}

// --- the three forms ----------------------------------------------------------------------------------

function departmentForm(model, ix, isNew) {
  return h('div', {},
    h('div', { class: 'grid' },
      idField(model, isNew),
      names(model, 'name', t('edit.name'), 'name'),
      choice(model, 'parent', t('dept.parent'), departmentOptions(ix, model.id), 'parent', { optional: true }),
      choice(model, 'head', t('dept.head'), postOptions(ix), 'head', { optional: true }),
      names(model, 'mission', t('dept.mission'), 'mission', { optional: true })),
    checks(model, 'jurisdiction', t('dept.jurisdiction'), resourceOptions(ix), 'jurisdiction'),
    dutiesEditor(model, ix));
}

function postForm(model, ix, isNew) {
  const q = model.qualifications || {};
  const syncQ = () => {
    const empty = !q.education && q.experience_years === undefined && !(q.skills || []).length;
    if (empty) delete model.qualifications; else model.qualifications = q;
  };
  const skills = h('textarea', { rows: 3, value: (q.skills || []).map((s) => `${s.zh} | ${s.en}`).join('\n') });
  skills.addEventListener('input', () => {
    const list = skills.value.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
      const [zh, en] = line.split('|').map((x) => x.trim());
      return { zh, en: en || zh };
    });
    if (list.length) q.skills = list; else delete q.skills;
    syncQ();
  });
  const years = input({ type: 'number', min: 0, max: 60, value: q.experience_years === undefined ? '' : String(q.experience_years) });
  years.addEventListener('input', () => {
    if (years.value === '') delete q.experience_years; else q.experience_years = Number(years.value);
    syncQ();
  });
  const education = q.education || { zh: '', en: '' };
  const eduInput = (lang) => {
    const el = input({ value: education[lang] || '' });
    el.addEventListener('input', () => {
      education[lang] = el.value;
      if (education.zh || education.en) q.education = education; else delete q.education;
      syncQ();
    });
    return field(`${t('post.education')} (${t(`lang.${lang}`)})`, el, { path: `qualifications.education.${lang}` });
  };
  return h('div', {},
    h('div', { class: 'grid' },
      idField(model, isNew),
      names(model, 'name', t('edit.name'), 'name'),
      choice(model, 'department', t('post.department'), departmentOptions(ix), 'department'),
      choice(model, 'reports_to', t('post.reports_to'), postOptions(ix, model.id), 'reports_to', { optional: true }),
      text(model, 'headcount', t('post.headcount'), 'headcount', { optional: true, numeric: true, type: 'number', min: 0 })),
    checks(model, 'inherits', t('post.inherits'), postOptions(ix, model.id), 'inherits'),
    h('fieldset', { class: 'group' }, h('legend', {}, t('post.qualifications')),
      h('div', { class: 'grid' }, eduInput('zh'), eduInput('en'),
        field(t('post.experience_years'), years, { path: 'qualifications.experience_years' }),
        field(t('post.skills'), skills, { path: 'qualifications.skills', hint: t('edit.skills_hint'), wide: true }))),
    dutiesEditor(model, ix));
}

function personForm(model, ix, isNew) {
  model.assignments ||= [];
  const list = h('div', { class: 'rows' });
  const draw = () => clear(list, model.assignments.map((a, i) => assignmentRow(model, a, i, ix, draw)),
    model.assignments.length ? null : h('p', { class: 'muted' }, t('edit.no_assignments')));
  draw();
  return h('div', {},
    h('div', { class: 'grid' }, idField(model, isNew), names(model, 'name', t('edit.name'), 'name')),
    h('fieldset', { class: 'group', dataset: { path: 'assignments' } }, h('legend', {}, t('people.assignments')), list,
      h('p', { class: 'field-error', hidden: true }),
      button(t('edit.add_assignment'), () => { model.assignments.push({ post: '' }); draw(); list.querySelector('.row:last-child select')?.focus(); }, { id: 'add-assignment' })));
}

// --- the catalogue and separation of duties ----------------------------------------------------------------

function resourceForm(model, ix, isNew) {
  model.actions ||= [];
  const instances = (model.instances || []).length;
  return h('div', {},
    h('div', { class: 'grid' }, idField(model, isNew), names(model, 'name', t('edit.name'), 'name')),
    itemsEditor(model.actions, {
      legend: t('catalogue.actions'), path: 'actions', hint: t('catalogue.actions_hint'), addId: 'add-action',
      control: (value) => input({ value, autocomplete: 'off', spellcheck: 'false' }),
      label: (n) => t('catalogue.action_n', { n }), add: t('catalogue.add_action'), remove: (n) => t('catalogue.remove_action', { n }),
    }),
    instances ? h('p', { class: 'muted' }, t('catalogue.instances_kept', { n: instances })) : null);
}

function groupForm(model, ix, isNew) {
  model.members ||= [];
  const options = [['', '—'], ...resourceOptions(ix).filter(([id]) => id !== model.id)];
  return h('div', {},
    h('div', { class: 'grid' }, idField(model, isNew), names(model, 'name', t('edit.name'), 'name')),
    itemsEditor(model.members, {
      legend: t('catalogue.members'), path: 'members', hint: t('catalogue.members_hint'), addId: 'add-member',
      control: (value) => select(options, { value }),
      label: (n) => t('catalogue.member_n', { n }), add: t('catalogue.add_member'), remove: (n) => t('catalogue.remove_member', { n }),
    }));
}

function separationForm(model, ix, isNew) {
  model.posts ||= [];
  const options = [['', '—'], ...postOptions(ix)];
  return h('div', {},
    h('div', { class: 'grid' }, idField(model, isNew)),
    itemsEditor(model.posts, {
      legend: t('catalogue.posts'), path: 'posts', hint: t('catalogue.posts_hint'), addId: 'add-post',
      control: (value) => select(options, { value }),
      label: (n) => t('catalogue.post_n', { n }), add: t('catalogue.add_post'), remove: (n) => t('catalogue.remove_post', { n }),
    }),
    h('div', { class: 'grid' }, names(model, 'reason', t('catalogue.reason'), 'reason')));
}

/** A list of ids (a resource's actions, a group's members, an entry's posts): a labelled control a row, add, remove. */
function itemsEditor(list, { legend, path, hint, addId, control, label, add, remove }) {
  const box = h('div', { class: 'rows items' });
  const focusRow = (i) => box.querySelector(`.row[data-index="${i}"] :is(input, select)`)?.focus();
  const draw = () => clear(box, list.map((value, i) => {
    const el = control(value);
    el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', () => { list[i] = el.value; });
    return h('div', { class: 'row item', dataset: { index: i, path: `${path}[${i}]` } },
      field(label(i + 1), el),
      button(t('common.remove'), () => {
        list.splice(i, 1);
        draw();
        if (list.length) focusRow(Math.min(i, list.length - 1)); else addButton.focus();
      }, { kind: 'small', 'aria-label': remove(i + 1) }),
      h('p', { class: 'field-error wide', hidden: true }));
  }), list.length ? null : h('p', { class: 'muted' }, t('common.none')));
  const addButton = button(add, () => { list.push(''); draw(); focusRow(list.length - 1); }, { id: addId });
  draw();
  return h('fieldset', { class: 'group', dataset: { path } }, h('legend', {}, legend),
    hint ? h('p', { class: 'hint' }, hint) : null, box, h('p', { class: 'field-error', hidden: true }), addButton);
}

function assignmentRow(model, a, i, ix, redraw) {
  const base = `assignments[${i}]`;
  const kind = a.kind || 'primary';
  const row = h('div', { class: ['row', kind === 'acting' && 'acting'], dataset: { index: i, path: base } },
    choice(a, 'post', t('post.title'), [['', '—'], ...postOptions(ix)], `${base}.post`),
    choice(a, 'kind', t('post.kind'), ['primary', 'concurrent', 'acting'].map((k) => [k, t(`kind.${k}`)]), `${base}.kind`),
    text(a, 'valid_from', t('edit.valid_from'), `${base}.valid_from`, { optional: true, date: true }),
    text(a, 'valid_to', t('edit.valid_to'), `${base}.valid_to`, { optional: true, date: true }),
    choice(a, 'stands_in_for', t('post.stands_in_for'), peopleOptions(ix, model.id), `${base}.stands_in_for`, { optional: true }),
    text(a, 'note', t('edit.note'), `${base}.note`, { optional: true }),
    button(t('common.remove'), () => { model.assignments.splice(i, 1); redraw(); }, { kind: 'small', 'aria-label': t('edit.remove_assignment', { n: i + 1 }) }),
    h('p', { class: 'field-error wide', hidden: true }));
  const kindSelect = row.querySelectorAll('select')[1];
  kindSelect.value = kind;
  kindSelect.addEventListener('change', () => {
    if (kindSelect.value === 'primary') delete a.kind;
    row.classList.toggle('acting', kindSelect.value === 'acting');
  });
  return row;
}

function dutiesEditor(model, ix, key = 'duties', path = 'duties') {
  model[key] ||= [];
  const list = model[key];
  const box = h('div', { class: 'rows' });
  const draw = () => clear(box, list.map((duty, i) => dutyRow(list, duty, i, ix, `${path}[${i}]`, draw)),
    list.length ? null : h('p', { class: 'muted' }, t('post.no_duties')));
  draw();
  return h('fieldset', { class: 'group', dataset: { path } }, h('legend', {}, t('post.duties')), box,
    h('p', { class: 'field-error', hidden: true }),
    button(t('edit.add_duty'), () => { list.push({ number: String(list.length + 1), text: '', permissions: [] }); draw(); }, { id: 'add-duty' }));
}

function dutyRow(list, duty, i, ix, base, redraw) {
  duty.permissions ||= [];
  const perms = h('div', { class: 'perm-rows' });
  const drawPerms = () => clear(perms, duty.permissions.map((p, j) => permissionRow(duty, p, j, ix, `${base}.permissions[${j}]`, drawPerms)));
  drawPerms();
  const textArea = h('textarea', { rows: 2, lang: 'zh-CN', value: duty.text || '' });
  textArea.addEventListener('input', () => { duty.text = textArea.value; });
  return h('fieldset', { class: 'duty' }, h('legend', {}, t('edit.duty_n', { n: duty.number || i + 1 })),
    h('div', { class: 'grid' },
      text(duty, 'number', t('edit.duty_number'), `${base}.number`),
      field(t('edit.duty_text'), textArea, { path: `${base}.text`, wide: true }),
      text(duty, 'en', t('edit.duty_en'), `${base}.en`, { optional: true })),
    h('div', { class: 'sub' }, h('h4', {}, t('edit.permissions')), perms,
      button(t('edit.add_permission'), () => { duty.permissions.push({ resource: '', actions: [] }); drawPerms(); }, { kind: 'small' })),
    (duty.duties || []).length ? h('p', { class: 'muted' }, t('edit.nested_kept', { n: duty.duties.length })) : null,
    button(t('edit.remove_duty'), () => { list.splice(i, 1); redraw(); }, { kind: 'small danger' }));
}

function permissionRow(duty, p, j, ix, base, redraw) {
  const actions = input({ value: p.actions === '*' ? '*' : (p.actions || []).join(', '), placeholder: 'view, edit | *' });
  actions.addEventListener('input', () => {
    const raw = actions.value.trim();
    p.actions = raw === '*' ? '*' : raw.split(/[,，\s]+/).filter(Boolean);
  });
  const effect = select([['allow', t('perm.allow')], ['deny', t('perm.deny')]], { value: p.effect || 'allow' });
  effect.addEventListener('change', () => { if (effect.value === 'allow') delete p.effect; else p.effect = effect.value; });
  return h('div', { class: 'row perm' },
    choice(p, 'resource', t('edit.resource'), [['', '—'], ...resourceOptions(ix)], `${base}.resource`),
    field(t('edit.actions'), actions, { path: `${base}.actions` }),
    field(t('edit.effect'), effect, { path: `${base}.effect` }),
    text(p, 'condition', t('edit.condition'), `${base}.condition`, { optional: true }),
    button(t('common.remove'), () => { duty.permissions.splice(j, 1); redraw(); }, { kind: 'small', 'aria-label': t('edit.remove_permission', { n: j + 1 }) }));
}
