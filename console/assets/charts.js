// Charts of a run, around uPlot (vendored: ~40 KB gzipped, draws 3,600 points per series in a few
// milliseconds). The live page and the result page use the same charts fed the same per-second
// summaries (SSE `second` events, or GET /runs/{id}/seconds), so what was seen live is what is
// kept. x is the run's elapsed second `t` (0 = the second the load started in).
//
// Marked on every chart: seconds that only k of N agents reported (partial: hatched grey) and
// seconds in which an agent was its own bottleneck (orange). Threshold lines are dashed.

import uPlot from "./vendor/uPlot.esm.js";
import { h } from "./util.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** Per-second arrays for the charts, from SecondSummary objects (sorted by t, one per t). */
export function columns(seconds) {
  const t = [], rps = [], err = [], drop = [], p50 = [], p90 = [], p99 = [], p999 = [], rate = [], rep = [], exp = [], vus = [];
  const cpu = [], lag = [], inflight = [];
  const codes = new Map(), kinds = new Map();
  const count = (map, key, i, n) => {
    if (!map.has(key)) map.set(key, new Array(seconds.length).fill(null));
    map.get(key)[i] = n;
  };
  seconds.forEach((s, i) => {
    t.push(s.t); rps.push(s.requests); err.push(s.errors); drop.push(s.dropped || 0);
    // No latency when nothing completed: a gap, not a misleading zero.
    const any = s.requests > 0;
    p50.push(any ? s.p50_ms : null); p99.push(any ? s.p99_ms : null);
    // p90, p99.9, VUs, status codes, error kinds and agents' health are absent from seconds
    // stored by an older herd: those series are then left out, not drawn as zeros.
    p90.push(any && s.p90_ms !== undefined ? s.p90_ms : null);
    p999.push(any && s.p999_ms !== undefined ? s.p999_ms : null);
    vus.push(s.vus !== undefined ? s.vus : null);
    rate.push(s.requests ? (s.errors / s.requests) * 100 : null);
    rep.push(s.agents_reported); exp.push(s.agents_expected);
    for (const [code, n] of Object.entries(s.status_codes || {})) count(codes, code, i, n);
    for (const [kind, n] of Object.entries(s.error_kinds || {})) count(kinds, kind, i, n);
    const hl = s.health;
    cpu.push(hl ? hl.cpu_max_percent : null); lag.push(hl ? hl.loop_lag_max_ms : null); inflight.push(hl ? hl.in_flight : null);
  });
  return { t, rps, err, drop, p50, p90, p99, p999, rate, rep, exp, vus, codes, kinds, cpu, lag, inflight };
}

const present = (arr) => arr.some((v) => v !== null && v !== undefined);

/** Sample the planned profile ([[t…], [v…]], piecewise linear) at each second's middle. */
function sample(profile, ts) {
  if (!profile) return ts.map(() => null);
  const [xs, ys] = profile.data;
  return ts.map((t) => {
    const x = t + 0.5;
    if (x > xs[xs.length - 1]) return null;
    for (let i = 1; i < xs.length; i++) if (x <= xs[i]) return ys[i - 1] + ((ys[i] - ys[i - 1]) * (x - xs[i - 1])) / (xs[i] - xs[i - 1]);
    return null;
  });
}

/** The seconds a grouped bottleneck entry covers (`t`..`last_t`; older summaries: `t` only). */
function spanOf(b) {
  const last = Math.max(b.t, b.last_t || b.t);
  return Array.from({ length: last - b.t + 1 }, (_, i) => b.t + i);
}

/** A uPlot plugin drawing bands (partial/bottleneck seconds) and horizontal threshold lines. */
function marks(getBands, lines) {
  return {
    hooks: {
      drawClear: [(u) => {
        const { ctx, bbox } = u;
        ctx.save();
        for (const band of getBands()) {
          ctx.fillStyle = band.color;
          for (const t of band.ts) {
            const x0 = u.valToPos(t, "x", true), x1 = u.valToPos(t + 1, "x", true);
            ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
          }
        }
        ctx.restore();
      }],
      draw: [(u) => {
        const { ctx, bbox } = u;
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        ctx.textAlign = "left"; // uPlot leaves it as its last axis set it
        ctx.textBaseline = "alphabetic";
        let above = 0;
        for (const l of lines) {
          const y = u.valToPos(l.value, "y", true);
          ctx.strokeStyle = css("--bad");
          ctx.fillStyle = css("--bad");
          if (y < bbox.top) {
            ctx.fillText(`↑ ${l.label} (above)`, bbox.left + 4 * devicePixelRatio, bbox.top + (12 + 13 * above++) * devicePixelRatio);
            continue;
          }
          if (y > bbox.top + bbox.height) continue;
          ctx.beginPath(); ctx.moveTo(bbox.left, y); ctx.lineTo(bbox.left + bbox.width, y); ctx.stroke();
          ctx.fillText(l.label, bbox.left + 4 * devicePixelRatio, y - 4 * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
}

/**
 * The run's charts in `container`. opts: {thresholds (from plan.thresholdLines), planned
 * (plan.profile or null), bottlenecks ([{t}]), baseline (seconds of the baseline run, overlaid
 * by elapsed second)}. Returns {update(seconds), destroy()}.
 */
export function runCharts(container, opts = {}) {
  let seconds = [];
  let plots = [];
  const lines = opts.thresholds || [];
  const wrap = h("div.grid2", { "data-testid": "charts" });
  container.append(wrap);

  const bands = () => {
    const partial = seconds.filter((s) => s.agents_reported < s.agents_expected).map((s) => s.t);
    return [
      { color: "rgba(128,128,128,0.22)", ts: partial },
      { color: "rgba(234,88,12,0.22)", ts: (opts.bottlenecks || []).flatMap((b) => spanOf(b)) },
    ];
  };

  function specs(c) {
    const base = opts.baseline && opts.baseline.length ? columns(opts.baseline) : null;
    // Align the baseline's seconds with this run's by elapsed second t.
    const align = (col) => (base ? c.t.map((t) => { const i = base.t.indexOf(t); return i < 0 ? null : col[i]; }) : null);
    const out = [];
    const thr = [{ label: "requests/s", stroke: css("--c1"), data: c.rps }, { label: "errors/s", stroke: css("--bad"), data: c.err }];
    if (present(c.drop) && c.drop.some((v) => v > 0)) thr.push({ label: "dropped/s", stroke: css("--c3"), data: c.drop });
    if (base) thr.push({ label: "baseline requests/s", stroke: css("--muted"), dash: [4, 4], data: align(base.rps) });
    out.push({ id: "throughput", title: "Requests and errors per second", series: thr, lines: lines.filter((l) => l.chart === "rps") });

    const lat = [{ label: "p50", stroke: css("--c4"), data: c.p50 }];
    if (present(c.p90)) lat.push({ label: "p90", stroke: css("--c1"), data: c.p90 });
    lat.push({ label: "p99", stroke: css("--c2"), data: c.p99 });
    if (present(c.p999)) lat.push({ label: "p99.9", stroke: css("--c5"), data: c.p999 });
    if (base) lat.push({ label: "baseline p99", stroke: css("--muted"), dash: [4, 4], data: align(base.p99) });
    out.push({ id: "latency", title: "Latency per second (ms, merged histograms)", series: lat, lines: lines.filter((l) => l.chart === "latency"), unit: "ms" });

    out.push({ id: "errors", title: "Error rate per second (%)", series: [{ label: "error rate %", stroke: css("--bad"), data: c.rate }], lines: lines.filter((l) => l.chart === "errors") });

    const load = [];
    const planned = sample(opts.planned, c.t);
    if (present(planned)) load.push({ label: `planned ${opts.planned.unit}`, stroke: css("--muted"), dash: [4, 4], data: planned });
    if (present(c.vus)) load.push({ label: "VUs", stroke: css("--c3"), data: c.vus });
    load.push({ label: "agents reporting", stroke: css("--c4"), data: c.rep, step: true });
    load.push({ label: "agents expected", stroke: css("--c1"), data: c.exp, step: true, dash: [2, 3] });
    out.push({ id: "load", title: "Load and agents (k of N per second)", series: load, lines: [] });

    const palette = ["--c1", "--c2", "--c3", "--c4", "--c5"];
    if (c.codes.size) {
      out.push({ id: "codes", title: "Status codes per second", lines: [],
        series: [...c.codes.entries()].map(([code, data], i) => ({ label: code, stroke: css(palette[i % palette.length]), data })) });
    }
    if (c.kinds.size) {
      out.push({ id: "kinds", title: "Errors by kind per second", lines: [],
        series: [...c.kinds.entries()].map(([kind, data], i) => ({ label: kind, stroke: css(palette[(i + 1) % palette.length]), data })) });
    }
    if (present(c.cpu)) {
      out.push({ id: "health", title: "Agents' health (worst agent per second)", lines: [], series: [
        { label: "worst CPU %", stroke: css("--c2"), data: c.cpu },
        { label: "worst loop lag ms", stroke: css("--c5"), data: c.lag },
        { label: "in flight", stroke: css("--c4"), data: c.inflight },
      ] });
    }
    return out;
  }

  function build() {
    for (const p of plots) p.u.destroy();
    wrap.replaceChildren();
    plots = [];
    const c = columns(seconds);
    const axis = { stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 }, ticks: { stroke: css("--grid") } };
    // All boxes first, then the plots: the grid's columns (auto-fit) are only final once every
    // box is in it, and each plot takes its box's width.
    const list = specs(c).map((s) => [s, h("section.chart", { "data-chart": s.id, "aria-label": s.title }, h("h2", {}, s.title))]);
    wrap.append(...list.map(([, box]) => box));
    for (const [s, box] of list) {
      const width = Math.max(260, (box.clientWidth || wrap.clientWidth || 600) - 12);
      const u = new uPlot({
        width, height: 220,
        // y from 0; a threshold line widens the range only when it is near the data (within 2×), so
        // a far-away "p99 < 1s" does not flatten 2 ms latencies — it is then noted at the top.
        scales: { x: { time: false }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max((max ?? 0) * 1.05, ...s.lines.filter((l) => l.value <= 2 * (max ?? 0)).map((l) => l.value * 1.1), 1)] } },
        axes: [{ ...axis, label: "elapsed s", labelSize: 18, size: 36 }, { ...axis, size: 56 }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        plugins: [marks(bands, s.lines)],
        series: [{ label: "t" }, ...s.series.map((x) => ({
          label: x.label, stroke: x.stroke, width: 1.6, dash: x.dash, spanGaps: false,
          paths: x.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (_u, v) => (v === null || v === undefined ? "–" : s.unit === "ms" ? v.toFixed(2) : Number.isInteger(v) ? String(v) : v.toFixed(2)),
        }))],
      }, [c.t, ...s.series.map((x) => x.data)], box);
      plots.push({ u, spec: s, box });
      resize.observe(box);
    }
  }

  const resize = new ResizeObserver(() => {
    for (const p of plots) {
      const w = Math.max(260, p.box.clientWidth - 12);
      if (Math.abs(w - p.u.width) > 4) p.u.setSize({ width: w, height: 220 });
    }
  });
  const onTheme = () => build();
  document.addEventListener("herd:theme", onTheme);

  let shape = "";
  return {
    update(next) {
      seconds = next;
      const c = columns(seconds);
      const specList = specs(c);
      // Rebuild when the set of series changes (first data, a new status code); else just data.
      const now = specList.map((s) => `${s.id}:${s.series.map((x) => x.label).join(",")}`).join("|");
      if (now !== shape || plots.length !== specList.length) { shape = now; build(); return; }
      specList.forEach((s, i) => plots[i].u.setData([c.t, ...s.series.map((x) => x.data)]));
    },
    destroy() {
      resize.disconnect();
      document.removeEventListener("herd:theme", onTheme);
      for (const p of plots) p.u.destroy();
      wrap.remove();
    },
  };
}

/** A small chart of the planned load profile (test editor preview). */
export function profileChart(container, prof) {
  container.replaceChildren();
  if (!prof) {
    container.append(h("p.muted", {}, "No preview: the load could not be read."));
    return null;
  }
  const axis = { stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 }, ticks: { stroke: css("--grid") } };
  return new uPlot({
    width: Math.max(260, (container.clientWidth || 500) - 12), height: 180,
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ ...axis, label: "elapsed s", labelSize: 18, size: 36 }, { ...axis, size: 50 }],
    series: [{ label: "t" }, { label: `planned ${prof.unit}`, stroke: css("--c1"), width: 2, fill: "rgba(80,130,220,0.15)" }],
  }, prof.data, container);
}
