// Runs history: newest first, filtered by test and state, 20 a page (?test=&state=&page=).

import { h, clear, when, badge } from "../util.js";
import { api, listRuns } from "../api.js";
import { navigate } from "../router.js";

const STATES = ["", "active", "completed", "failed", "cancelled", "degraded"];
const PAGE = 20;

export async function render(main, _params, query) {
  document.title = "Runs · herd";
  const test = query.get("test") || "";
  const state = query.get("state") || "";
  const page = Math.max(0, parseInt(query.get("page") || "0", 10) || 0);
  const go = (changes) => {
    const q = new URLSearchParams({ test, state, page: String(page), ...changes });
    for (const [k, v] of [...q]) if (!v || (k === "page" && v === "0")) q.delete(k);
    navigate(`/runs${q.toString() ? `?${q}` : ""}`);
  };
  const testSel = h("select", { id: "f-test", name: "test", onchange: (e) => go({ test: e.target.value, page: "0" }) }, h("option", { value: "" }, "all tests"));
  const stateSel = h("select", { id: "f-state", name: "state", onchange: (e) => go({ state: e.target.value, page: "0" }) },
    STATES.map((s) => h("option", { value: s }, s || "any state")));
  stateSel.value = state;
  const body = h("div", {}, h("p.muted", {}, "Loading…"));
  main.append(h("h1", {}, "Runs"),
    h("div.row", { role: "search" }, h("label", { for: "f-test" }, "Test", testSel), h("label", { for: "f-state" }, "State", stateSel)),
    body);

  try {
    const { tests } = await api.listTests();
    for (const t of tests) testSel.append(h("option", { value: t.id }, t.name));
    testSel.value = test;
    const names = Object.fromEntries(tests.map((t) => [t.id, t.name]));
    const { runs, more } = await listRuns({ test, state, limit: PAGE, offset: page * PAGE });
    if (!runs.length) return clear(body, h("p.muted", {}, page ? "No more runs." : "No runs match."));
    clear(body,
      h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": "Runs" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Run", "Test", "State", "Created", "Agents", "Reason"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, runs.map((r) => h("tr", {},
          h("td", {}, h("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.id)),
          h("td", {}, r.test_id ? h("a", { href: `/tests/${encodeURIComponent(r.test_id)}` }, names[r.test_id] || r.name) : `${r.name} (inline plan)`),
          h("td", {}, badge(r.state)), h("td", {}, when(r.created_at_ms)), h("td.num", {}, r.agents),
          h("td.note", {}, r.reason || "")))))),
      h("nav.pager", { "aria-label": "Pages" },
        h("button.ghost", { type: "button", disabled: page === 0, onclick: () => go({ page: String(page - 1) }) }, "← Newer"),
        h("span", {}, `Page ${page + 1}`),
        h("button.ghost", { type: "button", disabled: !more, onclick: () => go({ page: String(page + 1) }) }, "Older →")));
  } catch (err) {
    clear(body, h("p.error-box", { role: "alert" }, err.message));
  }
}
