// Time as the organisation keeps it: dates as yyyy-mm-dd and times as yyyy-mm-dd hh:mm, both in the organisation's
// time zone (its document's `timezone`), whatever the browser's zone or locale. The shell sets the zone when it
// opens an organisation (`useZone`); every page shows times in it and says which (`zone()`).
//
// Date and time fields are text in that form, so that they read the same in every browser, with a calendar
// button beside them that opens the browser's own picker (`dateInput`, `dateTimeInput`).

import { h } from './dom.js';

let current;  // the organisation's IANA zone; undefined until one is open (then: the browser's)

export function useZone(timeZone) {
  current = timeZone || undefined;
}

/** The zone times are shown and entered in (IANA name). */
export function zone() {
  return current || Intl.DateTimeFormat().resolvedOptions().timeZone;
}

function fields(ms, timeZone) {
  const format = new Intl.DateTimeFormat('en-GB', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });
  return Object.fromEntries(format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}

function asDate(value) {
  if (value === null || value === undefined || value === '') return null;
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** `yyyy-mm-dd hh:mm` in the zone (an ISO text, epoch seconds or a Date); '' for nothing, the text for junk. */
export function dateTime(value, timeZone = zone()) {
  const date = value instanceof Date ? value : asDate(value);
  if (!date) return value === null || value === undefined ? '' : String(value);
  const f = fields(date.getTime(), timeZone);
  return `${f.year}-${f.month}-${f.day}\u00a0${f.hour}:${f.minute}`;  // never broken across lines
}

/** `yyyy-mm-dd` in the zone. A date alone (`2026-07-01`) is shown as it is: it names a day, not a moment. */
export function day(value, timeZone = zone()) {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const date = value instanceof Date ? value : asDate(value);
  if (!date) return value === null || value === undefined ? '' : String(value);
  const f = fields(date.getTime(), timeZone);
  return `${f.year}-${f.month}-${f.day}`;
}

/** Today in the zone, yyyy-mm-dd. */
export function today(timeZone = zone()) {
  return day(new Date(), timeZone);
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** Is `text` a date or date-time as these fields take it (yyyy-mm-dd, optionally hh:mm)? */
export function isLocal(text) {
  const m = LOCAL.exec(String(text).trim());
  if (!m) return false;
  const [, y, mo, d, hh = '0', mm = '0'] = m.map((x) => x);
  const check = new Date(Date.UTC(+y, +mo - 1, +d, +hh, +mm));
  return check.getUTCMonth() === +mo - 1 && check.getUTCDate() === +d && +hh < 24 && +mm < 60;
}

/** `yyyy-mm-dd[ hh:mm]` as the organisation means it: the naive ISO text the API reads in the organisation's
 * zone (`2026-07-05T10:00`), or null when it is not one. */
export function naive(text) {
  const value = String(text || '').trim();
  if (!isLocal(value)) return null;
  return value.replace(' ', 'T');
}

/** The instant (a Date) of `yyyy-mm-dd[ hh:mm]` in the zone, or null. For the APIs that take UTC. */
export function instantOf(text, timeZone = zone()) {
  const value = naive(text);
  if (value === null) return null;
  const [, y, mo, d, hh = '0', mm = '0'] = LOCAL.exec(value);
  const wall = Date.UTC(+y, +mo - 1, +d, +hh, +mm);
  // The zone's offset at that wall time: guess with the offset at the wall time read as UTC, then correct once
  // (right everywhere except inside a daylight-saving jump, where no such wall time exists).
  const offset = (ms) => {
    const f = fields(ms, timeZone);
    return Date.UTC(+f.year, +f.month - 1, +f.day, +f.hour, +f.minute, +f.second) - ms;
  };
  let ms = wall - offset(wall);
  ms = wall - offset(ms);
  return new Date(ms);
}

/** A date field: text yyyy-mm-dd with a calendar button (the browser's picker). `field()` lays out its box. */
export function dateInput(props = {}, { label = 'calendar' } = {}) {
  return pickerInput('date', props, label);
}

/** A date-and-time field: text yyyy-mm-dd hh:mm (in the organisation's zone) with a calendar button. */
export function dateTimeInput(props = {}, { label = 'calendar' } = {}) {
  return pickerInput('datetime-local', props, label);
}

function pickerInput(type, { class: className, ...props }, label) {
  const dated = type === 'date';
  const text = h('input', {
    type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false',
    placeholder: dated ? 'yyyy-mm-dd' : 'yyyy-mm-dd hh:mm', size: dated ? 10 : 16, maxlength: 25,
    class: ['date-text', className], ...props,
  });
  const native = h('input', { type, tabindex: '-1', 'aria-hidden': 'true', class: 'date-native' });
  const sync = () => {
    const value = naive(text.value);
    native.value = value === null ? '' : (dated ? value.slice(0, 10) : (value.length === 10 ? `${value}T00:00` : value.slice(0, 16)));
  };
  native.addEventListener('change', () => {
    text.value = dated ? native.value : native.value.replace('T', ' ').slice(0, 16);
    text.dispatchEvent(new Event('input', { bubbles: true }));
    text.dispatchEvent(new Event('change', { bubbles: true }));
    text.focus();
  });
  const open = h('button', {
    type: 'button', class: 'button quiet date-pick', 'aria-label': label, title: label,
    onClick: () => {
      sync();
      try {
        native.showPicker();
      } catch {
        native.focus();
      }
    },
  }, h('span', { class: 'calendar-icon', 'aria-hidden': 'true' }));  // drawn in CSS: no emoji font is needed
  text.fieldBody = h('span', { class: 'date-field' }, text, native, open);
  return text;
}

