// The schedule part of the test editor: once ("at"), recurring (daily/weekly/biweekly/monthly
// from a start, keeping its wall-clock time in a zone) or cron, with a time zone.
//
// Times are typed as wall-clock times in the chosen zone (a datetime-local input) and sent as
// RFC 3339 with that zone's offset at that time, so "09:00 Europe/Paris" means 09:00 in Paris
// whatever the browser's zone. The server computes the fires: it returns `next_fire_ms` with
// the saved test, shown here, and — as the schedule is edited, before it is saved — the next five
// fires from POST /api/v1/schedules/preview (the scheduler's own calendar code; operators only,
// as it is a POST). A bad field is shown at its input, as saving would.

import { h, when } from "../util.js";
import { api, ApiError } from "../api.js";
import { isOperator } from "../auth.js";

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** The zone's offset from UTC (ms) at the instant `utcMs`. */
function offsetAt(utcMs, zone) {
  // An unknown zone: no offset here; the server names the bad `tz` at its field.
  try { new Intl.DateTimeFormat("en-US", { timeZone: zone }); } catch { return 0; }
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** "2026-03-01T09:00" in `zone` → "2026-03-01T09:00:00+01:00". */
export function wallToRfc3339(local, zone) {
  if (!local) return "";
  const m = local.match(/^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/);
  if (!m) return local;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let off = offsetAt(wall, zone);
  off = offsetAt(wall - off, zone); // the offset at the actual instant (differs around DST changes)
  const sign = off < 0 ? "-" : "+";
  const a = Math.abs(off) / 60000;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

/** RFC 3339 → the datetime-local value of that instant's wall clock in `zone`. */
export function rfc3339ToWall(text, zone) {
  const t = Date.parse(text || "");
  if (Number.isNaN(t)) return "";
  const d = new Date(t + offsetAt(t, zone));
  return d.toISOString().slice(0, 16);
}

export function scheduleSection(test, input, errs) {
  const s = (test && test.schedule) || null;
  const zone = (s && s.tz) || browserZone;
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const el = {
    kind: h("select", {}, h("option", { value: "" }, "not scheduled"), h("option", { value: "at" }, "once"),
      h("option", { value: "recurring" }, "recurring"), h("option", { value: "cron" }, "cron")),
    tz: h("input", { list: "zones", value: zone, size: 22 }),
    at: h("input", { type: "datetime-local", value: s && s.kind === "at" ? rfc3339ToWall(s.at, zone) : "" }),
    every: h("select", {}, ["daily", "weekly", "biweekly", "monthly"].map((e) => h("option", { value: e }, e))),
    start: h("input", { type: "datetime-local", value: s && s.kind === "recurring" ? rfc3339ToWall(s.start, zone) : "" }),
    expr: h("input", { value: s && s.kind === "cron" ? s.expr : "", placeholder: "*/15 9-17 * * mon-fri", size: 24 }),
    until: h("input", { type: "datetime-local", value: s && s.until ? rfc3339ToWall(s.until, zone) : "" }),
  };
  el.kind.value = s ? s.kind : "";
  if (s && s.every) el.every.value = s.every;
  const groups = {
    at: input("sched-at", "At", el.at),
    every: input("sched-every", "Every", el.every),
    start: input("sched-start", "First run", el.start),
    expr: input("sched-expr", "Cron (minute hour day month weekday)", el.expr),
    tz: input("sched-tz", "Time zone", el.tz),
    until: input("sched-until", "Until (optional)", el.until),
  };
  const next = h("p", { "data-testid": "next-fire", role: "status" });
  const show = () => {
    const k = el.kind.value;
    groups.at.hidden = k !== "at";
    groups.every.hidden = groups.start.hidden = k !== "recurring";
    groups.expr.hidden = k !== "cron";
    groups.tz.hidden = !k;
    groups.until.hidden = !(k === "recurring" || k === "cron");
  };
  el.kind.addEventListener("change", show);
  show();
  const showNext = (t) => {
    next.textContent = t && t.next_fire_ms
      ? `Next fire (computed by the server): ${when(t.next_fire_ms)} — ${new Date(t.next_fire_ms).toISOString()}`
      : t && t.schedule ? "The schedule has no further fire." : "";
  };
  showNext(test);
  const fires = h("ol", { "data-testid": "next-fires", "aria-label": "Next five fires" });
  const firesNote = h("p.note", { "data-testid": "next-fires-note", role: "status" });
  let seq = 0, timer = null;
  const field = { at: "sched-at", start: "sched-start", tz: "sched-tz", expr: "sched-expr", until: "sched-until", every: "sched-every" };
  async function refreshFires() {
    const mine = ++seq;
    const value = scheduleValue();
    for (const k of Object.values(field)) if (errs[k]) { errs[k].textContent = ""; document.getElementById(`f-${k}`)?.removeAttribute("aria-invalid"); }
    if (!value) { fires.replaceChildren(); firesNote.textContent = ""; return; }
    if (!(value.at ?? value.start ?? value.expr)) { fires.replaceChildren(); firesNote.textContent = "Fill in the schedule to see its next fires."; return; }
    try {
      const r = await api.previewSchedule(value);
      if (mine !== seq) return;
      fires.replaceChildren(...r.next_fires_ms.map((t) => h("li", { "data-ms": String(t) }, `${when(t)} — ${new Date(t).toISOString()}`)));
      firesNote.textContent = r.next_fires_ms.length ? `Next ${r.next_fires_ms.length} fires, computed by the server (not saved yet).` : "This schedule does not fire again.";
    } catch (err) {
      if (mine !== seq) return;
      fires.replaceChildren();
      firesNote.textContent = err.message;
      const name = err instanceof ApiError && err.field ? field[String(err.field).split(".")[1]] : null;
      if (name && errs[name]) {
        errs[name].textContent = err.message.replace(`${err.field}: `, "");
        document.getElementById(`f-${name}`)?.setAttribute("aria-invalid", "true");
      }
    }
  }
  const schedulePreview = () => { clearTimeout(timer); timer = setTimeout(refreshFires, 250); };
  if (isOperator()) {
    for (const e of Object.values(el)) { e.addEventListener("change", schedulePreview); e.addEventListener("input", schedulePreview); }
    schedulePreview();
  }
  const element = h("div", {},
    h("div.row", {}, input("sched-kind", "Runs", el.kind), groups.at, groups.every, groups.start, groups.expr, groups.tz, groups.until),
    h("datalist", { id: "zones" }, zones.map((z) => h("option", { value: z }))),
    next, firesNote, fires,
    h("p.note", {}, "Fires are computed by the server: the next one of the saved schedule, and a preview of the next five as you edit."));
  function scheduleValue() {
    const k = el.kind.value, tz = el.tz.value.trim() || "UTC";
    if (!k) return null;
    const until = el.until.value ? wallToRfc3339(el.until.value, tz) : undefined;
    if (k === "at") return { kind: "at", at: wallToRfc3339(el.at.value, tz) };
    if (k === "recurring") return { kind: "recurring", every: el.every.value, start: wallToRfc3339(el.start.value, tz), tz, ...(until ? { until } : {}) };
    return { kind: "cron", expr: el.expr.value.trim(), tz, ...(until ? { until } : {}) };
  }
  return { element, showNext, value: scheduleValue, refreshFires };
}
