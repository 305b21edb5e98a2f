// Small DOM and formatting helpers shared by the pages. No framework: pages build DOM with h()
// and re-render their own parts; text always goes through textContent (never innerHTML), so
// names and messages from the API cannot inject markup.

/** h("button.ghost", {onclick, type: "button"}, "text", child…) → an element. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" || k === "checked") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Integers with thousands separators; other numbers with `digits` decimals. */
export function num(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return `${num(v / 1000, 2)} s`;
  return `${num(v, v < 10 ? 2 : 1)} ms`;
}

export function pct(v, digits = 2) {
  return v === null || v === undefined ? "–" : `${num(v, digits)} %`;
}

export function when(msSinceEpoch) {
  if (!msSinceEpoch) return "–";
  const d = new Date(msSinceEpoch);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function badge(state) {
  return h(`span.badge.s-${String(state || "unknown").replace(/[^a-z_]/g, "")}`, {}, state || "–");
}

/** Shows a short message in the polite live region (screen readers announce it). */
export function toast(text, ms_ = 4000) {
  const box = document.getElementById("toast");
  const m = h("div.msg", {}, text);
  box.append(m);
  setTimeout(() => m.remove(), ms_);
}

/** Saves `text` as a file named `name` (a blob: URL, so nothing leaves the page). */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Durations as plans write them ("1m30s", "1.5s", "500ms") → seconds; null if unreadable. */
export function parseDuration(text) {
  if (typeof text === "number") return text;
  const s = String(text || "").trim();
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(us|ms|s|m|h)/gy;
  let total = 0, m, pos = 0;
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  while ((m = re.exec(s))) { total += parseFloat(m[1]) * unit[m[2]]; pos = re.lastIndex; }
  return pos === s.length && pos > 0 ? total : null;
}
