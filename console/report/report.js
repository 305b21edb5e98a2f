// The single-file HTML report: the page a run's report opens as, from a file:// URL with no
// network. The coordinator (coordinator/src/report/html.rs) inlines this file after util.js,
// plan.js, charts.js and results.js (their import/export lines removed, each module in its own
// scope) and the run's data as JSON in <script id="herd-report-data">: {summary, seconds, plan,
// run}. It draws the same charts and tables as the console's result page, with the same code.

import { h, num, when, badge } from "../assets/util.js";
import { profile, thresholdLines } from "../assets/plan.js";
import { runCharts } from "../assets/charts.js";
import { summaryCards, summaryTables, verdictNote } from "../assets/results.js";

const data = JSON.parse(document.getElementById("herd-report-data").textContent);
const { summary: s, seconds, plan, run } = data;
const main = document.getElementById("main");
document.title = `herd report · ${s.name} · ${s.run_id}`;

const requestsEl = h("span.v", { "data-testid": "run-requests", "data-value": String(s.requests) }, String(s.requests));
const why = verdictNote(s);
const charts = h("div");
main.append(
  h("div.toolbar", {}, h("h1", {}, s.name), h("span", { "data-testid": "run-state", "data-state": s.run_state }, badge(s.run_state))),
  h("p.note", {}, `Run ${s.run_id}`, run && run.created_at_ms ? ` · created ${when(run.created_at_ms)}` : "",
    run && run.test_id ? ` · test ${run.test_id}` : "", ` · ${num(s.agents.length)} agents · ${num(seconds.length)} seconds`,
    s.reason ? ` · ${s.reason}` : ""),
  h("div.cards", { "aria-label": "Figures" }, summaryCards(s, requestsEl)),
  why ? h("p.note", { "data-testid": "verdict-note" }, why) : null,
  charts,
  ...summaryTables(s),
  h("p.note", {}, `Single-file report written by herd ${data.herd_version || ""} on ${when(data.written_at_ms)}; it needs no network. `,
    "Per-second figures come from each second's merged histogram, across agents."));

runCharts(charts, {
  thresholds: thresholdLines(plan && plan.thresholds),
  planned: plan ? profile(plan) : null,
  bottlenecks: s.bottlenecks,
}).update(seconds);
document.documentElement.dataset.ready = "true";
