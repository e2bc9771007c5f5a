// Talks to the server. Every failure becomes an Error whose message is the server's words
// (MLflow's {"error_code", "message"}), so pages can show it instead of swallowing it.

export class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

async function handle(res, url) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : {}; } catch { body = null; }
  if (res.status === 401 && !url.startsWith('/api/cairn/v1/session')) window.dispatchEvent(new Event('cairn-unauthenticated'));
  if (!res.ok) {
    const msg = body && body.message ? body.message : `HTTP ${res.status} ${res.statusText} from ${url}`;
    throw new ApiError(msg, res.status, body && body.error_code);
  }
  if (body === null) throw new ApiError(`The server answered ${url} with something that is not JSON.`, res.status);
  return body;
}

// Every request says it comes from this UI (the server then asks for no browser password
// dialog on a 401) and carries the CSRF token of a signed-in session with every change.
function headers(extra) {
  const h = {'X-Cairn-UI': '1', ...extra};
  const csrf = document.cookie.split('; ').find((c) => c.startsWith('cairn_csrf='));
  if (csrf) h['X-Cairn-CSRF'] = csrf.slice('cairn_csrf='.length);
  return h;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function get(path, params) {
  const url = path + query(params);
  let res;
  try { res = await fetch(url, {headers: headers({Accept: 'application/json'})}); } catch (e) {
    throw new ApiError(`Cannot reach the server (${e.message}).`, 0);
  }
  return handle(res, url);
}

export async function post(path, body) { return send('POST', path, body); }

/** A request with a JSON body (POST, PATCH, DELETE). */
export async function send(method, path, body) {
  let res;
  try {
    res = await fetch(path, {method, headers: headers({'Content-Type': 'application/json'}), body: JSON.stringify(body || {})});
  } catch (e) { throw new ApiError(`Cannot reach the server (${e.message}).`, 0); }
  return handle(res, path);
}

export async function getText(url, maxBytes) {
  let res;
  try { res = await fetch(url, {headers: headers({})}); } catch (e) { throw new ApiError(`Cannot reach the server (${e.message}).`, 0); }
  if (!res.ok) return handle(res, url);
  const blob = await res.blob();
  const truncated = maxBytes && blob.size > maxBytes;
  const text = await (truncated ? blob.slice(0, maxBytes) : blob).text();
  return {text, truncated, size: blob.size, sha256: res.headers.get('X-Cairn-SHA256')};
}

export const mlflow = (p, params) => get(`/ajax-api/2.0/mlflow/${p}`, params);
export const mlflowPost = (p, body) => post(`/ajax-api/2.0/mlflow/${p}`, body);
export const cairn = (p, params) => get(`/api/cairn/v1/${p}`, params);

/** The proxy URL of a run artifact, from the run's artifact_uri and a path inside it. */
export function artifactURL(artifactURI, path) {
  let root = artifactURI.replace(/^mlflow-artifacts:(\/\/[^/]*)?/, '');
  root = root.replace(/^\/+/, '');
  const parts = `${root}/${path}`.split('/').filter((x) => x).map(encodeURIComponent);
  return `/api/2.0/mlflow-artifacts/artifacts/${parts.join('/')}`;
}

/** Experiment id → name for every experiment (deleted ones too), for breadcrumbs and headings. */
export async function experimentNames() {
  try {
    const reply = await cairn('experiments', {view_type: 'ALL'});
    return new Map((reply.experiments || []).map((e) => [e.experiment_id, e.name]));
  } catch { return new Map(); }
}
