// A draft: an org-chart or rule-pack change previewed but not saved, kept (per organisation, for this browser tab)
// as the whole proposed document (and, for a rule change, `rules`: the draft pack by name), so that the simulator
// can decide requests "under the draft", business rules included, and replay the decision log against it
// through the admin preview endpoint.

const key = (org) => `dutyline.draft.${org}`;

export function draftOf(org) {
  try {
    return JSON.parse(sessionStorage.getItem(key(org)) || 'null');
  } catch {
    return null;
  }
}

export function keepDraft(org, draft) {
  sessionStorage.setItem(key(org), JSON.stringify(draft));
}

export function dropDraft(org) {
  sessionStorage.removeItem(key(org));
}

const COLLECTIONS = {
  resources: (doc) => ((doc.catalogue ||= {}).resources ||= []),
  groups: (doc) => ((doc.catalogue ||= {}).groups ||= []),
};

/** The document after one entity write (`PUT`/`POST`/`DELETE` of `collection/id` with `value`). */
export function applyEdit(document, collection, method, id, value) {
  const doc = structuredClone(document);
  const list = COLLECTIONS[collection] ? COLLECTIONS[collection](doc) : (doc[collection] ||= []);
  const at = list.findIndex((item) => item.id === id);
  if (method === 'DELETE') {
    if (at >= 0) list.splice(at, 1);
  } else if (at >= 0) {
    list[at] = { ...value, id };
  } else {
    list.push({ ...value, id });
  }
  return doc;
}
