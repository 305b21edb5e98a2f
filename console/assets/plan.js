// Plans in the console: the simple form's model <-> the plan JSON, the planned load profile,
// and thresholds read into chart lines. The API validates; nothing here second-guesses it
// beyond what is needed to build the JSON.

import { parseDuration } from "./util.js";

export const METHODS = ["get", "post", "put", "patch", "delete", "head"];

/** The form's view of `plan`, or null when the plan uses more than the form can show. */
export function toForm(plan) {
  if (!plan || typeof plan !== "object") return null;
  const steps = plan.scenario || [];
  if (steps.length !== 1) return null;
  const step = steps[0];
  const method = METHODS.find((m) => m in step);
  const known = new Set([method, "name", "headers", "body"]);
  if (!method || Object.keys(step).some((k) => !known.has(k))) return null;
  const load = plan.load || {};
  let model, target, ramp = "0s", hold = "";
  const list = load.stages || load.arrival;
  if (list) {
    model = load.stages ? "vus" : "rps";
    const key = model;
    if ((load.start_rps || 0) !== 0 || list.length < 1 || list.length > 2) return null;
    const last = list[list.length - 1];
    if (list.length === 2 && list[0][key] !== last[key]) return null;
    target = last[key];
    hold = String(last.duration);
    if (list.length === 2) ramp = String(list[0].duration);
    // One stage ramps from 0 over its whole duration: a ramp with no hold after it.
    else { ramp = hold; hold = "0s"; }
    const extra = Object.keys(load).filter((k) => !["stages", "arrival", "max_in_flight"].includes(k));
    if (extra.length) return null;
  } else if (load.vus !== undefined && load.duration !== undefined && Object.keys(load).length === 2) {
    model = "vus"; target = load.vus; hold = String(load.duration);
  } else return null;
  if (plan.vars || plan.feeders) return null;
  const regions = plan.regions || [];
  if (!Array.isArray(regions) || regions.some((r) => !r || typeof r !== "object" || Object.keys(r).some((k) => !["region", "agents"].includes(k)))) return null;
  return {
    url: String(plan.target || "").replace(/\/$/, "") + step[method],
    method: method.toUpperCase(),
    headers: Object.entries(step.headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n"),
    body: step.body === undefined ? "" : String(step.body),
    model, target: target, ramp, hold,
    agents: regions.length ? "" : plan.agents ?? 1,
    regions: regions.map((r) => `${r.region}=${r.agents}`).join(", "),
    thresholds: (plan.thresholds || []).join("\n"),
  };
}

/** `base` (the full plan, kept for the keys the form does not own) with the form's fields set. */
export function fromForm(base, form, name) {
  const plan = { version: 1, ...(base || {}) };
  plan.name = name || plan.name || "test";
  let target = form.url.trim(), path = "/";
  try {
    const u = new URL(target);
    target = u.origin;
    path = u.pathname + u.search;
  } catch { /* not a URL: sent as written, so the API names the problem at plan.target */ }
  plan.target = target;
  // A number when it reads as one; otherwise as typed, so the API names the problem.
  const agents = String(form.agents ?? "").trim();
  plan.agents = agents === "" ? 1 : Number.isFinite(Number(agents)) ? Number(agents) : agents;
  // "eu-west-1=4, us-east-1=2": where the agents run; their sum is the run's agents, so `agents`
  // is left out unless typed too (the API then checks the two agree).
  const regions = String(form.regions ?? "").split(/[,\n]/).map((x) => x.trim()).filter(Boolean).map((item) => {
    const m = item.match(/^([^=:\s]+)\s*[=:\s]\s*(\S+)$/);
    if (!m) return { region: item, agents: 1 };
    return { region: m[1], agents: Number.isFinite(Number(m[2])) ? Number(m[2]) : m[2] };
  });
  if (regions.length) {
    plan.regions = regions;
    if (agents === "") delete plan.agents;
  } else delete plan.regions;
  const value = Number(form.target);
  const key = form.model === "rps" ? "rps" : "vus";
  const stages = [];
  // The ramp stage always comes first: a stage ramps from the previous target, so without it
  // the hold would ramp from 0; "0s" (or nothing) jumps.
  stages.push({ duration: form.ramp.trim() || "0s", [key]: value });
  stages.push({ duration: form.hold.trim(), [key]: value });
  const maxInFlight = base && base.load && base.load.max_in_flight;
  plan.load = key === "rps" ? { arrival: stages, ...(maxInFlight ? { max_in_flight: maxInFlight } : {}) } : { stages };
  const step = { [form.method.toLowerCase()]: path };
  const headers = {};
  for (const line of form.headers.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  if (Object.keys(headers).length) step.headers = headers;
  if (form.body) step.body = form.body;
  plan.scenario = [step];
  const thresholds = form.thresholds.split("\n").map((t) => t.trim()).filter(Boolean);
  if (thresholds.length) plan.thresholds = thresholds; else delete plan.thresholds;
  return plan;
}

/** The planned load over time, [[t…], [value…]], and its unit ("VUs" or "requests/s"). */
export function profile(plan) {
  const load = (plan && plan.load) || {};
  const xs = [0], ys = [];
  let unit = "VUs", t = 0;
  if (load.stages || load.arrival) {
    const key = load.stages ? "vus" : "rps";
    unit = key === "vus" ? "VUs" : "iterations/s";
    ys.push(key === "rps" ? Number(load.start_rps || 0) : 0);
    for (const s of load.stages || load.arrival) {
      const d = parseDuration(s.duration);
      if (d === null) return null;
      if (d === 0) { ys[ys.length - 1] = Number(s[key]); continue; }
      t += d;
      xs.push(t);
      ys.push(Number(s[key]));
    }
  } else if (load.vus !== undefined) {
    const d = parseDuration(load.duration);
    if (d === null) return null;
    ys.push(Number(load.vus));
    xs.push(d);
    ys.push(Number(load.vus));
  } else return null;
  if (ys.some((y) => !Number.isFinite(y))) return null;
  return { data: [xs, ys], unit };
}

/**
 * Threshold expressions ("p99 < 1s", "error_rate < 1%", "rps > 100") as lines for the charts:
 * {chart: "latency" | "errors" | "rps", key, value} with latency values in ms, error rates in
 * percent. Whole-run thresholds drawn on per-second charts show how far each second is from them.
 */
export function thresholdLines(thresholds) {
  const out = [];
  for (const item of thresholds || []) {
    // A threshold is an expression, or an object {expr, abort_on_fail, …} around one.
    const expr = item && typeof item === "object" ? item.expr : item;
    const m = String(expr).match(/^\s*([a-z_0-9().]+)\s*(<=|>=|<|>)\s*(.+?)\s*$/i);
    if (!m) continue;
    const [, metric, op, raw] = m;
    if (/^(min|mean|max|p50|p90|p95|p99|p999|p\([\d.]+\))$/.test(metric)) {
      const s = parseDuration(raw);
      if (s !== null) out.push({ chart: "latency", label: expr, value: s * 1000, op });
    } else if (metric === "error_rate") {
      const v = raw.endsWith("%") ? parseFloat(raw) : parseFloat(raw) * 100;
      if (Number.isFinite(v)) out.push({ chart: "errors", label: expr, value: v, op });
    } else if (metric === "rps") {
      const v = parseFloat(raw);
      if (Number.isFinite(v)) out.push({ chart: "rps", label: expr, value: v, op });
    }
  }
  return out;
}
