// Building the page from data without innerHTML: every text goes in as a text node, so nothing the API
// returns can become markup. `h('a', {href, class, onClick}, 'text', child, [more children])`.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (key === 'value') value = v;
    else if (key.startsWith('on') && typeof v === 'function') el.addEventListener(key.slice(2).toLowerCase(), v);
    else if (key === 'dataset') Object.assign(el.dataset, v);
    else if (key === 'checked' || key === 'disabled' || key === 'readOnly' || key === 'selected' || key === 'open') el[key] = Boolean(v);
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  append(el, children);
  if (value !== undefined) el.value = value;  // after the options of a <select> exist
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false || child === '') continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let uid = 0;
export function newId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** `el.append` that skips null, false and empty children (pages build with `cond ? x : null`). */
export function add(el, ...children) {
  return append(el, children);
}
