// A small history-API router. The server answers every console path with index.html, so deep
// links and reloads work; here each path maps to a page module, loaded on first use (so the
// first load carries only the page being opened, and uPlot only when a chart is shown).
//
// A page module exports `render(main, params, query)` and may return a cleanup function (live
// pages close their SSE stream with it).

const routes = [
  [/^\/login$/, () => import("./pages/login.js"), {}],
  [/^\/(?:tests)?$/, () => import("./pages/tests.js"), {}],
  [/^\/tests\/([^/]+)$/, () => import("./pages/editor.js"), { names: ["id"] }],
  [/^\/runs$/, () => import("./pages/runs.js"), {}],
  [/^\/runs\/([^/]+)$/, () => import("./pages/run.js"), { names: ["id"] }],
];

let cleanup = null;
let seq = 0;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  return route();
}

export async function route(guard) {
  const mine = ++seq;
  if (cleanup) { try { cleanup(); } catch { /* a page's cleanup must not block the next */ } cleanup = null; }
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const main = document.getElementById("main");
  const redirect = guard && guard(path);
  if (redirect) return navigate(redirect, { replace: true });
  for (const [re, load, { names = [] }] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
    const page = await load();
    if (mine !== seq) return; // a newer navigation won the race
    main.replaceChildren();
    const result = await page.render(main, params, new URLSearchParams(location.search));
    if (mine === seq && typeof result === "function") cleanup = result;
    else if (typeof result === "function") result();
    document.dispatchEvent(new CustomEvent("herd:routed", { detail: { path } }));
    return;
  }
  main.replaceChildren(Object.assign(document.createElement("h1"), { textContent: "Not found" }));
}
