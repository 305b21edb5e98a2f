// Tests: every stored test with its tags, its last run (state and verdict) and its next
// scheduled fire; a tag filter (the API's ?tag=), and for operators "Run now" and "New test".

import { h, clear, when, badge, toast } from "../util.js";
import { api, isActive } from "../api.js";
import { isOperator } from "../auth.js";
import { navigate } from "../router.js";

export async function render(main, _params, query) {
  document.title = "Tests · herd";
  const tag = query.get("tag") || "";
  const tagInput = h("input", { name: "tag", id: "tag", value: tag, placeholder: "e.g. ci", size: 14 });
  const filter = h("form.row", {
    role: "search",
    onsubmit: (e) => { e.preventDefault(); navigate(tagInput.value ? `/tests?tag=${encodeURIComponent(tagInput.value)}` : "/tests"); },
  }, h("label", { for: "tag" }, "Tag", tagInput), h("button.ghost", { type: "submit" }, "Filter"),
    tag ? h("a.button.ghost", { href: "/tests" }, "Clear") : null);
  const body = h("div", {}, h("p.muted", {}, "Loading…"));
  main.append(
    h("div.toolbar", {}, h("h1", {}, "Tests"), h("span.spacer"),
      isOperator() ? h("a.button", { href: "/tests/new", "data-testid": "new-test" }, "New test") : null),
    filter, body);

  let tests;
  try {
    ({ tests } = await api.listTests(tag));
  } catch (err) {
    return clear(body, h("p.error-box", { role: "alert" }, err.message));
  }
  if (!tests.length) {
    return clear(body, h("p.muted", {}, tag ? `No test has the tag “${tag}”.` : "No tests yet.",
      isOperator() && !tag ? [" ", h("a", { href: "/tests/new" }, "Create the first one.")] : null));
  }
  const rows = tests.map((t) => {
    const last = h("td", {}, "…");
    const actions = h("td", {});
    if (isOperator()) {
      const b = h("button", {
        type: "button", "data-testid": "run-now", "aria-label": `Run now: ${t.name}`,
        onclick: async () => {
          b.disabled = true;
          try {
            const run = await api.runTest(t.id);
            navigate(`/runs/${encodeURIComponent(run.id)}`);
          } catch (err) {
            toast(`${t.name}: ${err.message}`);
            b.disabled = false;
          }
        },
      }, "Run now");
      actions.append(b);
    }
    // The last run: its state from the test's run list, and its verdict from the run itself.
    api.testRuns(t.id, 1, 0).then(async ({ runs }) => {
      if (!runs.length) return clear(last, h("span.muted", {}, "never run"));
      const r = runs[0];
      const link = h("a", { href: `/runs/${encodeURIComponent(r.id)}` }, when(r.created_at_ms));
      clear(last, badge(r.state), " ", link);
      if (!isActive(r.state)) {
        const full = await api.getRun(r.id).catch(() => null);
        if (full && full.summary) clear(last, badge(full.summary.status), " ", badge(r.state), " ", link);
      }
    }, () => clear(last, "–"));
    return h("tr", {},
      h("td", {}, h("a", { href: `/tests/${encodeURIComponent(t.id)}` }, t.name), h("div.note", {}, t.id)),
      h("td", {}, h("span.tags", {}, t.tags.map((g) => h("a.tag", { href: `/tests?tag=${encodeURIComponent(g)}` }, g)))),
      last,
      h("td", {}, t.next_fire_ms ? when(t.next_fire_ms) : h("span.muted", {}, t.schedule ? "no more fires" : "not scheduled")),
      actions);
  });
  clear(body, h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": "Tests" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Test", "Tags", "Last run", "Next scheduled fire", h("span.sr-only", {}, "Actions")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows))));
}
