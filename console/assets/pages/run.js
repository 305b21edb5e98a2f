// A run (/runs/{id}): live while it is active, its results once it has ended — the same charts
// fed the same per-second summaries.
//
// Live: the SSE stream GET /api/v1/runs/{id}/live sends one `second` event per aggregated second
// (`id:` its t), then `end`. A connection first replays the stored seconds (all of them, or those
// after `Last-Event-ID` on a reconnect), so a reload mid-run shows the whole run so far from the
// stream alone. Seconds are kept by `t`, so a repeated one replaces, never doubles.

import { h, clear, num, ms, pct, when, badge, toast, download, parseDuration } from "../util.js";
import { card, summaryCards, summaryTables, verdictNote, section, table, csv } from "../results.js";
import { api, isActive, ApiError } from "../api.js";
import { isOperator } from "../auth.js";
import { follow } from "../sse.js";
import { runCharts } from "../charts.js";
import { profile, thresholdLines } from "../plan.js";

// For tests and the curious: when each live second arrived vs when it ended (ms since epoch).
window.herdLive = window.herdLive || [];

export async function render(main, { id }) {
  document.title = `Run ${id} · herd`;
  let run;
  try {
    run = await api.getRun(id);
  } catch (err) {
    main.append(h("h1", {}, `Run ${id}`), h("p.error-box", { role: "alert" }, err.message));
    return;
  }
  const test = run.test_id ? await api.getTest(run.test_id).catch(() => null) : null;
  const plan = test ? test.plan : null;
  const ctx = { id, run, test, plan, main, stopped: false, cleanups: [] };

  const stateEl = h("span", { "data-testid": "run-state" });
  const requestsEl = h("span.v", { "data-testid": "run-requests" });
  ctx.setState = (state) => { clear(stateEl, badge(state)); stateEl.dataset.state = state; };
  ctx.setRequests = (n) => { requestsEl.textContent = String(n ?? 0); requestsEl.dataset.value = String(n ?? 0); };
  ctx.setState(run.state);
  ctx.setRequests(run.summary ? run.summary.requests : run.live ? run.live.requests : 0);
  ctx.cards = h("div.cards", { "aria-label": "Figures" });
  ctx.requestsEl = requestsEl;
  ctx.controls = h("div");
  ctx.charts = h("div");
  ctx.tables = h("div");
  main.append(
    h("div.toolbar", {}, h("h1", {}, run.name || id), stateEl,
      test ? h("a", { href: `/tests/${encodeURIComponent(test.id)}` }, "test: ", test.name) : null),
    h("p.note", {}, `${id} · created ${when(run.created_at_ms)} · ${run.agents ?? "?"} agents`,
      run.reason ? ` · ${run.reason}` : ""),
    ctx.cards, ctx.controls, ctx.charts, ctx.tables);

  if (isActive(run.state)) live(ctx);
  else await result(ctx);
  return () => { ctx.stopped = true; for (const c of ctx.cleanups) c(); };
}

// ---- live --------------------------------------------------------------------------------------

function live(ctx) {
  const { id, plan } = ctx;
  const seconds = new Map();
  let totals = { requests: ctx.run.live ? ctx.run.live.requests : 0, errors: ctx.run.live ? ctx.run.live.errors : 0 };
  let view = ctx.run.live || {};
  const charts = runCharts(ctx.charts, { thresholds: thresholdLines(plan && plan.thresholds), planned: plan && profile(plan) });
  ctx.cleanups.push(() => charts.destroy());

  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const list = [...seconds.values()].sort((a, b) => a.t - b.t);
      charts.update(list);
      cards(list);
    });
  };
  function cards(list) {
    const last = list[list.length - 1];
    ctx.setRequests(totals.requests);
    clear(ctx.cards,
      card("Requests", ctx.requestsEl),
      card("Errors", num(totals.errors)),
      card("Error rate", pct(totals.requests ? (totals.errors / totals.requests) * 100 : 0)),
      card("Requests/s (last second)", last ? num(last.requests) : "–"),
      card("p50 / p99 (last second)", last ? `${ms(last.p50_ms)} / ${ms(last.p99_ms)}` : "–"),
      last && last.vus !== undefined ? card("VUs (last second)", num(last.vus)) : null,
      last && last.health ? card("Worst agent CPU / loop lag", `${num(last.health.cpu_max_percent, 0)} % / ${ms(last.health.loop_lag_max_ms)}`, { title: last.health.cpu_max_agent }) : null,
      card("Agents reporting", last ? `${last.agents_reported} of ${last.agents_expected}` : `${view.agents_ready ?? 0} of ${view.agents_expected ?? "?"} ready`, { "data-testid": "run-agents" }),
      card("Elapsed", `${num(view.elapsed_s ?? (last ? last.t + 1 : 0), 0)} of ${view.planned_s ? num(view.planned_s, 0) : "?"} s`),
      card("Seconds shown", h("div.v", { "data-testid": "live-seconds", "data-max-t": last ? String(last.t) : "-1" }, String(list.length))),
      // A plan with regions: each region's last second (its agents' frames merged).
      ...Object.entries((last && last.regions) || {}).map(([name, r]) =>
        card(`${name}: req/s, p50 / p99 (last second)`, `${num(r.requests)}, ${ms(r.p50_ms)} / ${ms(r.p99_ms)}`, { "data-testid": `live-region-${name}` })));
    // Each agent's own health in the last live second (the worst 32, highest CPU first).
    clear(agentsBox, agents.list.length ? section(`Agents in second ${agents.t} (${last ? last.agents_reported : agents.list.length} of ${last ? last.agents_expected : "?"} reported${agents.list.length < (last ? last.agents_reported : 0) ? `; the ${agents.list.length} busiest shown` : ""})`,
      table(["Agent", "CPU", "Loop lag", "In flight"], agents.list.map((a) => [a.agent, `${num(a.cpu_percent, 0)} %`, ms(a.loop_lag_ms), num(a.in_flight)]), "agents-health")) : null);
  }
  const agentsBox = h("div");
  let agents = { t: -1, list: [] };
  ctx.tables.append(agentsBox);

  // Operator controls: stop, and a live ramp from where the load is.
  if (isOperator()) ctx.controls.append(controls(ctx, plan));

  let ended = false;
  const finish = async () => {
    if (ended || ctx.stopped) return;
    ended = true;
    stream.stop();
    clearInterval(poll);
    // The summary appears once the run has its final state (GET /runs/{id} hides it while the
    // run finalizes): wait for it, then show the results.
    for (let i = 0; i < 60 && !ctx.stopped; i++) {
      const r = await api.getRun(id).catch(() => null);
      if (r && r.summary) { ctx.run = r; break; }
      await new Promise((res) => setTimeout(res, 500));
    }
    if (ctx.stopped) return;
    // Messages about the live run ("Stopping…") are stale once it has ended.
    document.getElementById("toast")?.replaceChildren();
    charts.destroy();
    ctx.cleanups = [];
    clear(ctx.controls); clear(ctx.charts); clear(ctx.tables);
    await result(ctx);
  };

  const stream = follow(`/api/v1/runs/${encodeURIComponent(id)}/live`, {
    onEvent(name, data) {
      let msg;
      try { msg = JSON.parse(data); } catch { return; }
      if (name === "second") {
        const s = msg.second;
        window.herdLive.push({ run: id, t: s.t, received_ms: Date.now(), second_end_ms: msg.second_end_ms, replayed: Boolean(msg.replayed) });
        const maxT = seconds.size ? Math.max(...seconds.keys()) : -1;
        if (s.t >= maxT) totals = { requests: msg.total_requests, errors: msg.total_errors };
        if (msg.agents && msg.agents.length && s.t >= agents.t) agents = { t: s.t, list: msg.agents };
        seconds.set(s.t, s);
        redraw();
      } else if (name === "end") {
        ctx.setState(msg.run_state || "ended");
        ctx.setRequests(msg.requests);
        finish();
      }
    },
    onError(err) {
      // 409: the run is no longer active (it ended between the page load and the stream).
      if (err.status === 409 || err.status === 404) { finish(); return false; }
      return true;
    },
  });
  // The run's state and agents (k of N ready, live) between seconds, and while it launches.
  const poll = setInterval(async () => {
    const r = await api.getRun(id).catch(() => null);
    if (!r || ctx.stopped) return;
    if (r.live) view = r.live;
    ctx.setState(r.state);
    if (!isActive(r.state)) finish();
    else redraw();
  }, 2000);
  ctx.cleanups.push(() => { stream.stop(); clearInterval(poll); });
  cards([]);
}

function controls(ctx, plan) {
  const rps = Boolean(plan && plan.load && plan.load.arrival);
  const key = rps ? "rps" : "vus";
  const stop = h("button.danger", { type: "button", "data-testid": "stop-run", onclick: async () => {
    stop.disabled = true;
    try { await api.stop(ctx.id); toast("Stopping: agents finish their in-flight requests"); ctx.setState("stopping"); }
    catch (err) { toast(err.message); stop.disabled = false; }
  } }, "Stop run");
  const value = h("input", { id: "ramp-value", name: "ramp-value", type: "number", min: 0, step: "any", size: 7, required: true });
  const over = h("input", { id: "ramp-over", name: "ramp-over", value: "10s", size: 6 });
  const hold = h("input", { id: "ramp-hold", name: "ramp-hold", value: "1m", size: 6 });
  const error = h("p.field-error", { id: "ramp-error", role: "alert" });
  const form = h("form.row", {
    "aria-label": "Live ramp",
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const stages = [];
      if (parseDuration(over.value) > 0) stages.push({ duration: over.value.trim(), [key]: Number(value.value) });
      stages.push({ duration: hold.value.trim(), [key]: Number(value.value) });
      try {
        const r = await api.ramp(ctx.id, stages);
        toast(`Ramping at ${new Date(r.ramp_at_ms).toLocaleTimeString()}; load ends ${new Date(r.ends_at_ms).toLocaleTimeString()}`);
      } catch (err) {
        error.textContent = err instanceof ApiError ? err.message : String(err);
      }
    },
  },
    h("label", { for: "ramp-value" }, rps ? "Iterations/s" : "VUs", value),
    h("label", { for: "ramp-over" }, "over", over),
    h("label", { for: "ramp-hold" }, "then hold", hold),
    h("button.ghost", { type: "submit" }, "Ramp"), error);
  return h("section", { "aria-label": "Operator controls" }, h("div.toolbar", {}, stop, h("span.note", {}, "Live ramp (replaces the rest of the plan's stages):")), form);
}

// ---- result ------------------------------------------------------------------------------------

async function result(ctx) {
  const { id, run, test, plan } = ctx;
  const s = run.summary;
  ctx.setState(run.state);
  if (!s) {
    ctx.setRequests(0);
    clear(ctx.cards, h("p.muted", {}, run.reason || "This run has no summary."));
    return;
  }
  ctx.setRequests(s.requests);
  clear(ctx.cards, summaryCards(s, ctx.requestsEl));
  const why = verdictNote(s);
  if (why) ctx.controls.append(h("p.note", { "data-testid": "verdict-note" }, why));

  // Seconds: the stored ones (the summary carries them too, but the API route is the source).
  let seconds = s.seconds;
  try { seconds = (await api.seconds(id)).seconds; } catch { /* keep the summary's */ }
  let baseline = null, compare = null;
  const baselineId = test && test.baseline_run;
  if (baselineId && baselineId !== id) {
    [compare, baseline] = await Promise.all([
      api.compare(id).catch(() => null),
      api.seconds(baselineId).then((r) => r.seconds, () => null),
    ]);
  }
  const charts = runCharts(ctx.charts, {
    thresholds: thresholdLines(plan && plan.thresholds), planned: plan && profile(plan),
    bottlenecks: s.bottlenecks, baseline,
  });
  charts.update(seconds);
  ctx.cleanups.push(() => charts.destroy());

  // Operator: baseline. Everyone: downloads.
  const actions = h("div.toolbar", {});
  if (isOperator() && test && baselineId !== id) {
    const b = h("button.ghost", { type: "button", "data-testid": "set-baseline", onclick: async () => {
      b.disabled = true;
      try { await api.setBaseline(test.id, id); toast("This run is now the test's baseline"); b.replaceWith(h("span.tag", {}, "baseline")); }
      catch (err) { toast(err.message); b.disabled = false; }
    } }, "Set as baseline");
    actions.append(b);
  } else if (baselineId === id) actions.append(h("span.tag", { "data-testid": "is-baseline" }, "baseline of its test"));
  const report = h("button.ghost", { type: "button", "data-testid": "download-report", onclick: async () => {
    report.disabled = true;
    try { download(`${id}.report.html`, await api.reportHtml(id), "text/html"); }
    catch (err) { toast(err.message); }
    report.disabled = false;
  } }, "Download HTML report");
  actions.append(report,
    h("button.ghost", { type: "button", "data-testid": "download-summary", onclick: () => download(`${id}.summary.json`, JSON.stringify(s, null, 2), "application/json") }, "Download summary JSON"),
    h("button.ghost", { type: "button", "data-testid": "download-csv", onclick: () => download(`${id}.seconds.csv`, csv(seconds), "text/csv") }, "Download per-second CSV"));
  ctx.controls.append(actions);

  clear(ctx.tables, compare ? compareTable(compare) : null, summaryTables(s));
}

function compareTable(c) {
  const fmt = (k, v) => (k.endsWith("_ms") ? ms(v) : k === "error_rate" ? pct(v) : num(v, 1));
  return section("Compared with the baseline", h("div", {},
    h("p", {}, "Verdict: ", h("span", { "data-testid": "compare-verdict" }, badge(c.verdict)), ` against ${c.baseline_run_id}`,
      c.regressions.length ? ` — regressions: ${c.regressions.join(", ")}` : ""),
    table(["Metric", "This run", "Baseline", "Δ", "Δ %"], Object.entries(c.metrics).map(([k, m]) =>
      [k, fmt(k, m.run), fmt(k, m.baseline), fmt(k, m.delta), pct(m.delta_pct, 1)]), "compare"),
    h("p.note", {}, "The charts overlay the baseline (dashed grey) by elapsed second.")));
}
