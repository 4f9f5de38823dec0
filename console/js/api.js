// The one way the console talks to the service: same-origin fetch with the session cookie, JSON (or YAML)
// bodies, If-Match for optimistic concurrency, and the session's CSRF token on every state-changing request.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.issues = (body && Array.isArray(body.issues)) ? body.issues : [];
  }
}

let csrfToken = null;
let unauthenticated = () => {};

export function setCsrf(token) {
  csrfToken = token;
}

/** Called when the session has ended (a 401 outside the login form). */
export function onUnauthenticated(callback) {
  unauthenticated = callback;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `api(path, {method, body, yaml, etag, accept, comment, expect401})` → `{status, data, etag, version}`.
 * A non-2xx answer throws an ApiError carrying the API's `message` and `issues`.
 */
export async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { Accept: options.accept || 'application/json' };
  let body;
  if (options.body !== undefined) {
    if (typeof options.body === 'string') {
      body = options.body;
      headers['Content-Type'] = options.yaml ? 'application/yaml' : 'application/json';
    } else {
      body = JSON.stringify(options.body);
      headers['Content-Type'] = 'application/json';
    }
  }
  if (options.etag) headers['If-Match'] = options.etag;
  if (options.comment) headers['X-Change-Comment'] = encodeURIComponent(options.comment);
  if (!SAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch (error) {
    throw new ApiError(0, { error: 'network', message: String(error.message || error) });
  }
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    if (response.status === 401 && !options.expect401) unauthenticated();
    throw new ApiError(response.status, data && typeof data === 'object' ? data : { message: String(data || '') });
  }
  return { status: response.status, data, etag: response.headers.get('etag'), version: response.headers.get('x-policy-version') };
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;
