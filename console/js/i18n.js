// Chinese and English: one dictionary per language in /console/i18n/<lang>.json; the choice is remembered.

export const LANGUAGES = ['zh', 'en'];
const STORE = 'dutyline.lang';
let current = 'en';
let dictionary = {};

export function language() {
  return current;
}

export function preferred() {
  const stored = localStorage.getItem(STORE);
  if (LANGUAGES.includes(stored)) return stored;
  return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export async function useLanguage(lang) {
  const response = await fetch(`/console/i18n/${lang}.json`, { credentials: 'same-origin' });
  dictionary = await response.json();
  current = lang;
  localStorage.setItem(STORE, lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

/** The text for `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars) {
  let text = dictionary[key];
  if (text === undefined) text = key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (vars[name] === undefined ? m : String(vars[name])));
  return text;
}

/** A `{zh, en}` name in the current language (falling back to the other). */
export function nm(names, fallback = '') {
  if (!names) return fallback;
  if (typeof names === 'string') return names;
  return names[current] || names.en || names.zh || fallback;
}

export function when(value) {
  if (value === null || value === undefined || value === '') return '';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(current === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' });
}

export function number(value) {
  if (value === null || value === undefined || value === '') return '';
  return Number(value).toLocaleString(current === 'zh' ? 'zh-CN' : 'en-GB');
}
