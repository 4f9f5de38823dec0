// Chinese and English: one dictionary per language in /console/i18n/<lang>.json; the choice is remembered.

import { dateTime } from './time.js';

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

const PLACEHOLDER = /\{(\w+)\}/g;

/**
 * An API issue's sentence from a dictionary (`issue.<code>.<case>` or `issue.<code>`, its `params` quoted, tokens
 * worded through `issue.param.<name>.<token>`, a `suggestion` appended), or null when the dictionary has none or the
 * issue lacks a parameter the sentence quotes. service/dutyline/messages.py renders the same way (for the CLI).
 */
export function renderIssue(words, code, params = {}) {
  const sentence = (params.case !== undefined && words[`issue.${code}.${params.case}`] !== undefined)
    ? words[`issue.${code}.${params.case}`] : words[`issue.${code}`];
  if (sentence === undefined) return null;
  const names = [...sentence.matchAll(PLACEHOLDER)].map((m) => m[1]);
  if (names.some((name) => params[name] === undefined)) return null;
  const word = (name, value) => {
    const parts = String(value).split('|');
    if (!parts.some((part) => words[`issue.param.${name}.${part}`] !== undefined)) return String(value);
    const or = words['issue.or'] === undefined ? ' or ' : words['issue.or'];
    return parts.map((part) => (words[`issue.param.${name}.${part}`] === undefined ? part : words[`issue.param.${name}.${part}`])).join(or);
  };
  let text = sentence.replace(PLACEHOLDER, (m, name) => word(name, params[name])).trimEnd();
  if (params.suggestion) text += (words['issue.suggestion'] || '').replace('{suggestion}', params.suggestion);
  return text;
}

/** What an API issue says, in the current language: from its code and parameters, else its (English) message. */
export function issueWords(issue) {
  if (!issue) return '';
  return (issue.code && renderIssue(dictionary, issue.code, issue.params || {})) || issue.message || '';
}

/** A `{zh, en}` name in the current language (falling back to the other). */
export function nm(names, fallback = '') {
  if (!names) return fallback;
  if (typeof names === 'string') return names;
  return names[current] || names.en || names.zh || fallback;
}

/** A moment as yyyy-mm-dd hh:mm in the organisation's time zone (time.js), in either language. */
export function when(value) {
  return dateTime(value);
}

export function number(value) {
  if (value === null || value === undefined || value === '') return '';
  return Number(value).toLocaleString(current === 'zh' ? 'zh-CN' : 'en-GB');
}
