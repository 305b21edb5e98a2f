// The API client: every call to /api/v1 goes through here, with the credential from auth.js.
// Same origin as the console, so relative URLs and no CORS. Errors become ApiError carrying the
// API's {code, message, field, errors}; each entry of `errors` is "path: message", which
// fieldErrors() turns into a map the forms use to show each message at its field.

import { token, signOut } from "./auth.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    this.errors = (body && body.errors) || [];
    this.body = body;
  }
  /** {path: message} for every problem the API named (the first one when only `field` is set). */
  fieldErrors() {
    const out = {};
    const list = this.errors.length ? this.errors : this.field ? [this.message] : [];
    for (const e of list) {
      const i = e.indexOf(": ");
      if (i > 0) out[e.slice(0, i)] = e.slice(i + 2);
    }
    if (this.field && !(this.field in out)) out[this.field] = this.message.replace(`${this.field}: `, "");
    return out;
  }
}

export async function call(method, path, body, { auth = true, signal } = {}) {
  const headers = { accept: "application/json" };
  if (auth && token()) headers.authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (!res.ok) {
    // A credential that stopped working (expired JWT, deleted token): back to the sign-in page.
    if (res.status === 401 && auth && token()) signOut("Your credential was refused; sign in again.");
    throw new ApiError(res.status, data);
  }
  return data;
}

const enc = encodeURIComponent;
export const api = {
  listTests: (tag) => call("GET", `/api/v1/tests${tag ? `?tag=${enc(tag)}` : ""}`),
  getTest: (id) => call("GET", `/api/v1/tests/${enc(id)}`),
  createTest: (test) => call("POST", "/api/v1/tests", test),
  updateTest: (id, test) => call("PUT", `/api/v1/tests/${enc(id)}`, test),
  deleteTest: (id) => call("DELETE", `/api/v1/tests/${enc(id)}`),
  runTest: (id, body = {}) => call("POST", `/api/v1/tests/${enc(id)}/runs`, body),
  testRuns: (id, limit = 20, offset = 0) => call("GET", `/api/v1/tests/${enc(id)}/runs?limit=${limit}&offset=${offset}`),
  setBaseline: (id, runId) => call("PUT", `/api/v1/tests/${enc(id)}/baseline`, { run_id: runId }),
  getRun: (id) => call("GET", `/api/v1/runs/${enc(id)}`),
  runs: (q) => call("GET", `/api/v1/runs?${new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined && v !== ""))}`),
  whoami: () => call("GET", "/api/v1/whoami"),
  /** The regions a plan may name, or null when any name will do. */
  regions: () => call("GET", "/api/v1/regions").then((r) => r.regions),
  seconds: (id) => call("GET", `/api/v1/runs/${enc(id)}/seconds`),
  stop: (id) => call("POST", `/api/v1/runs/${enc(id)}/stop`, {}),
  ramp: (id, stages) => call("POST", `/api/v1/runs/${enc(id)}/ramp`, { stages }),
  /** Converts a JMeter/Taurus/HAR/DLT file (a File or Blob) into a plan: {format, plan (YAML), report}. */
  async importFile(file, query = {}) {
    const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== ""));
    const res = await fetch(`/api/v1/import${q.size ? `?${q}` : ""}`, { method: "POST", headers: { authorization: `Bearer ${token()}`, "content-type": "application/octet-stream" }, body: file });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  },
  previewSchedule: (schedule, count = 5) => call("POST", "/api/v1/schedules/preview", { schedule, count }),
  compare: (id) => call("GET", `/api/v1/runs/${enc(id)}/compare`),
  /** The run's single-file HTML report, as text (saved with util.download). */
  async reportHtml(id) {
    const res = await fetch(`/api/v1/runs/${enc(id)}/report.html`, { headers: { authorization: `Bearer ${token()}` } });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    return res.text();
  },
};

const ACTIVE = new Set(["launching", "waiting_ready", "running", "stopping", "finalizing"]);
export const isActive = (state) => ACTIVE.has(state);

/** Runs, newest first, one page: `{runs, more}`; `test` and `state` (a state or "active") filter. */
export async function listRuns({ test, state, limit, offset }) {
  const r = await api.runs({ test, state, limit, offset });
  return { runs: r.runs, more: r.more };
}
