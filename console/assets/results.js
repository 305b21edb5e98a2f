// A finished run's figures as DOM: the summary cards, the thresholds, per-step, per-agent,
// status-code and bottleneck tables, and the per-second CSV. Shared by the result page
// (pages/run.js) and the single-file HTML report (console/report/report.js, which the
// coordinator inlines with this file), so the two show the same numbers the same way.
// Imports only util.js: the report bundles modules by concatenation.

import { h, num, ms, pct, badge } from "./util.js";

export function card(label, value, attrs = {}) {
  return h("div.card", {}, h("div.k", {}, label), value instanceof Node ? value : h("div.v", attrs, value));
}

/** The summary cards of `s` (a Summary); `requestsEl` holds the request count (a contract). */
export function summaryCards(s, requestsEl) {
  const lat = s.latency_ms || {};
  return [
    card("Verdict", h("div.v", { "data-testid": "run-status" }, badge(s.status))),
    card("Requests", requestsEl),
    card("Errors", h("div.v", { "data-testid": "run-errors" }, String(s.errors))),
    card("Error rate", pct(s.error_rate)),
    card("Requests/s", h("div.v", { "data-testid": "run-rps" }, num(s.rps, 1))),
    card("p50", ms(lat.p50)), card("p90", ms(lat.p90)), card("p99", h("div.v", { "data-testid": "run-p99" }, ms(lat.p99))),
    card("p99.9", ms(lat.p999)), card("max", ms(lat.max)),
    card("Duration", `${num(s.duration_s, 1)} s`),
    card("Agents", `${s.agents.length - s.lost_agents.length} of ${s.agents.length}`),
    s.dropped ? card("Dropped arrivals", num(s.dropped)) : null,
  ];
}

/**
 * Why the verdict is what it is, in a sentence, when the badge alone would puzzle: a run stopped
 * on request ends "cancelled" and its verdict is "error" — not because a request failed, but
 * because the run did not finish its plan, so its thresholds cannot pass it.
 */
export function verdictNote(s) {
  if (s.status === "error" && s.run_state === "cancelled") {
    return "Verdict \"error\": the run was stopped before its planned end, so it did not finish its plan and cannot pass; the figures cover the seconds it ran.";
  }
  if (s.status === "error") return `Verdict "error": the run ended ${s.run_state}${s.reason ? ` (${s.reason})` : ""}.`;
  if (s.status === "failed") return "Verdict \"failed\": a threshold did not hold (see Thresholds).";
  return null;
}

export function section(title, content) { return h("section", {}, h("h2", {}, title), content); }

export function table(headers, rows, testid) {
  return h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": `${headers[0]} table` }, h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, headers.map((c, i) => h(i ? "th.num" : "th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h(i ? "td.num" : "td", {}, c)))))));
}

function codes(map) { return Object.entries(map || {}).map(([c, n]) => `${c}: ${num(n)}`).join(", "); }

/** A table of step-shaped figures by name (steps, regions, scenarios). */
function stepTable(head, map, id) {
  return table([head, "Requests", "Errors", "Requests/s", "p50", "p90", "p99", "max", "Status codes"],
    Object.entries(map).map(([name, st]) => [name, num(st.requests), num(st.errors), num(st.rps, 1), ms(st.latency_ms.p50), ms(st.latency_ms.p90), ms(st.latency_ms.p99), ms(st.latency_ms.max), codes(st.status_codes)]), id);
}

/** A section of step-shaped figures by name, or null when there are none. */
function breakdown(title, head, map, id) {
  if (!map || !Object.keys(map).length) return null;
  return section(title, stepTable(head, map, id));
}

/** The result tables of `s`: thresholds, per step, per agent, status codes and errors, bottlenecks. */
export function summaryTables(s) {
  return [
    s.thresholds.length ? section("Thresholds", table(["Threshold", "Actual", "Result"], s.thresholds.map((t) => [t.expr, num(t.actual, 3), badge(t.passed ? "passed" : "failed")]), "thresholds")) : null,
    section("Per step", stepTable("Step", s.steps, "steps")),
    breakdown("Per region", "Region", s.regions, "regions"),
    breakdown("Per scenario", "Scenario", s.scenarios, "scenarios"),
    section("Per agent", table(["Agent", "pid", "Requests", "Errors", "Lost"],
      s.agents.map((a) => [a.id, a.pid ?? "–", num(a.requests), num(a.errors), a.lost ? badge("lost") : "no"]), "agents")),
    section("Status codes and errors", table(["Kind", "Count"],
      [...Object.entries(s.status_codes).map(([c, n]) => [`HTTP ${c}`, num(n)]), ...Object.entries(s.error_kinds).map(([k, n]) => [k, num(n)])])),
    s.bottlenecks && s.bottlenecks.length ? section("Agents that were their own bottleneck", table(["Agent", "Seconds", "From t", "To t", "Worst CPU %", "Worst loop lag"],
      s.bottlenecks.map((b) => [b.agent, b.seconds || 1, b.t, b.last_t || b.t, num(b.cpu_percent, 1), ms(b.loop_lag_ms)]))) : null,
    h("p.note", {}, `Start skew between agents: ${ms(s.start_skew_ms)}. Grey bands: seconds only some agents reported; orange: an agent's own bottleneck.`),
  ].filter(Boolean); // a section without content is left out, not written as "null"
}

/** The seconds as CSV, one row a second, columns as the API names them (maps flattened: status_codes.200). */
export function csv(seconds) {
  const cols = ["t", "requests", "errors", "dropped", "p50_ms", "p99_ms", "agents_reported", "agents_expected"];
  const flat = seconds.map((s) => {
    const row = {};
    for (const [k, v] of Object.entries(s)) {
      if (v && typeof v === "object" && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) { if (typeof v2 !== "object") row[`${k}.${k2}`] = v2; }
      else if (typeof v !== "object") row[k] = v;
    }
    return row;
  });
  const extra = [...new Set(flat.flatMap((r) => Object.keys(r)))].filter((k) => !cols.includes(k)).sort();
  const all = [...cols, ...extra];
  return [all.join(","), ...flat.map((r) => all.map((c) => r[c] ?? "").join(","))].join("\n") + "\n";
}
