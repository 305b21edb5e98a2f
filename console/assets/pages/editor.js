// Test editor (/tests/new, /tests/{id}): the common case as a form, the full plan as YAML, a
// preview of the planned load, and the schedule. The API validates on save and names each bad
// field by its path (`plan.load.stages[0].vus`); each message is shown at the input it belongs
// to (aria-invalid + aria-describedby), the rest in a box above the YAML. A JMeter, Taurus, HAR
// or DLT file can be uploaded (POST /api/v1/import, which stores nothing): its plan lands in the
// YAML editor and the converter's report of every source element is shown under it.

import { h, clear, when, toast, badge } from "../util.js";
import { api, ApiError } from "../api.js";
import { isOperator } from "../auth.js";
import { navigate } from "../router.js";
import { toForm, fromForm, profile, METHODS } from "../plan.js";
import { scheduleSection } from "./schedule.js";

const EXAMPLE = {
  version: 1, name: "new test", target: "http://127.0.0.1:8080", agents: 1,
  load: { stages: [{ duration: "5s", vus: 10 }, { duration: "30s", vus: 10 }] },
  scenario: [{ get: "/" }], thresholds: ["p99 < 1s", "error_rate < 1%"],
};

let yamlLib = null;
const yaml = async () => (yamlLib ||= await import("../vendor/js-yaml.js"));

/** Which input shows an error at `path` (an API field path), given how the load was built. */
function fieldFor(path, form) {
  const p = path.replace(/^test\./, "");
  if (p === "test_id") return "id";
  if (p === "name" || p === "plan.name") return "name";
  if (p === "tags" || p.startsWith("tags[")) return "tags";
  if (p.startsWith("schedule")) {
    const leaf = p.split(".")[1];
    return { at: "sched-at", start: "sched-start", tz: "sched-tz", expr: "sched-expr", until: "sched-until", every: "sched-every" }[leaf] || "sched-kind";
  }
  if (!form) return null;
  if (p === "plan.target" || p === "plan.scenario" || /^plan\.scenario\[0\]\.(get|post|put|patch|delete|head)$/.test(p) || p === "plan.scenario[0]") return "url";
  if (p.startsWith("plan.scenario[0].headers")) return "headers";
  if (/^plan\.scenario\[0\]\.(body|json)/.test(p)) return "body";
  if (p === "plan.agents") return "agents";
  if (p === "plan.regions" || p.startsWith("plan.regions[")) return "regions";
  if (p.startsWith("plan.thresholds")) return "thresholds";
  const stage = p.match(/^plan\.load\.(stages|arrival)\[(\d+)\]\.(\w+)$/);
  if (stage) {
    if (stage[3] !== "duration") return "target";
    // The form writes the ramp stage first, then the hold.
    return stage[2] === "0" ? "ramp" : "hold";
  }
  if (p.startsWith("plan.load")) return "target";
  return null;
}

export async function render(main, { id }) {
  const isNew = id === "new";
  const canWrite = isOperator();
  let test = null;
  if (!isNew) {
    try {
      test = await api.getTest(id);
    } catch (err) {
      main.append(h("h1", {}, "Test"), h("p.error-box", { role: "alert" }, err.message));
      return;
    }
  }
  document.title = `${isNew ? "New test" : test.name} · herd`;
  let plan = test ? test.plan : structuredClone(EXAMPLE);
  let mode = toForm(plan) ? "form" : "yaml";

  // --- inputs -------------------------------------------------------------------------------
  const errs = {};
  const input = (name, label, el, help) => {
    errs[name] = h("p.field-error", { id: `err-${name}` });
    el.id = `f-${name}`;
    el.name = name;
    el.setAttribute("aria-describedby", `err-${name}${help ? ` help-${name}` : ""}`);
    return h("label", { for: el.id }, label, el, help ? h("span.note", { id: `help-${name}` }, help) : null, errs[name]);
  };
  const f = {
    id: h("input", { value: "", placeholder: "checkout-smoke", size: 20, pattern: "[A-Za-z0-9_.-]+" }),
    name: h("input", { value: test ? test.name : "", required: true, size: 28 }),
    tags: h("input", { value: test ? test.tags.join(", ") : "", placeholder: "ci, nightly", size: 24 }),
    url: h("input", { type: "text", size: 44, placeholder: "http://127.0.0.1:8080/path", inputmode: "url" }),
    method: h("select", {}, METHODS.map((m) => h("option", { value: m.toUpperCase() }, m.toUpperCase()))),
    headers: h("textarea", { rows: 3, placeholder: "content-type: application/json" }),
    body: h("textarea", { rows: 3 }),
    model: h("select", {}, h("option", { value: "vus" }, "virtual users (closed model)"), h("option", { value: "rps" }, "requests/s (open model, arrival rate)")),
    target: h("input", { type: "number", min: 0, step: "any", size: 8 }),
    ramp: h("input", { size: 8, placeholder: "10s" }),
    hold: h("input", { size: 8, placeholder: "1m" }),
    agents: h("input", { type: "number", min: 1, step: 1, size: 5 }),
    regions: h("input", { size: 28, placeholder: "eu-west-1=4, us-east-1=2", list: "configured-regions" }),
    thresholds: h("textarea", { rows: 3, placeholder: "p99 < 1s\nerror_rate < 1%" }),
  };
  // The regions herd.toml configures, offered as suggestions; none listed: any name is a label.
  const configured = await api.regions().catch(() => null);
  const regionList = h("datalist", { id: "configured-regions" }, (configured || []).map((r) => h("option", { value: `${r}=1` })));
  const regionsHelp = configured && configured.length
    ? `where the agents run, NAME=agents each: ${configured.join(", ")}`
    : "NAME=agents each; here any names, as labels of local agents";
  const yamlBox = h("textarea", { id: "f-yaml", name: "yaml", rows: 22, spellcheck: "false", "aria-describedby": "err-yaml" });
  errs.yaml = h("div.field-error", { id: "err-yaml" });
  const general = h("div", { role: "alert" });

  const fillForm = (form) => {
    for (const k of ["url", "method", "headers", "body", "model", "target", "ramp", "hold", "agents", "regions", "thresholds"]) f[k].value = form[k] ?? "";
  };
  const readForm = () => Object.fromEntries(["url", "method", "headers", "body", "model", "target", "ramp", "hold", "agents", "regions", "thresholds"].map((k) => [k, f[k].value]));
  if (mode === "form") fillForm(toForm(plan));

  const preview = h("div.chart", { "aria-label": "Planned load profile" });
  let previewChart = null;
  const { profileChart } = await import("../charts.js");
  async function currentPlan() {
    if (mode === "form") return fromForm(plan, readForm(), f.name.value.trim());
    const y = await yaml();
    return y.load(yamlBox.value);
  }
  async function refreshPreview() {
    let p = null;
    try { p = profile(await currentPlan()); } catch { p = null; }
    if (previewChart) previewChart.destroy();
    previewChart = profileChart(preview, p);
  }

  // --- form / YAML switch --------------------------------------------------------------------
  const formBox = h("div");
  const yamlSection = h("div", {}, input("yaml", "Plan (YAML, the whole plan: scenarios, feeders, options…)", yamlBox), errs.yaml);
  const tabForm = h("button.ghost", { type: "button", "aria-pressed": "true" }, "Form");
  const tabYaml = h("button.ghost", { type: "button", "aria-pressed": "false" }, "YAML");
  const simpleNote = h("p.note", { role: "status" });
  async function setMode(next) {
    if (next === mode) return;
    try {
      if (next === "yaml") {
        plan = fromForm(plan, readForm(), f.name.value.trim());
        yamlBox.value = (await yaml()).dump(plan);
      } else {
        const parsed = (await yaml()).load(yamlBox.value);
        const form = toForm(parsed);
        if (!form) { simpleNote.textContent = "This plan uses more than the form shows (several steps, variables, feeders…): edit it as YAML."; return; }
        plan = parsed;
        fillForm(form);
      }
    } catch (err) {
      errs.yaml.textContent = `Not valid YAML: ${err.message.split("\n")[0]}`;
      return;
    }
    simpleNote.textContent = "";
    mode = next;
    sync();
  }
  function sync() {
    tabForm.setAttribute("aria-pressed", String(mode === "form"));
    tabYaml.setAttribute("aria-pressed", String(mode === "yaml"));
    formBox.hidden = mode !== "form";
    yamlSection.hidden = mode !== "yaml";
    refreshPreview();
  }
  // --- import -------------------------------------------------------------------------------
  const importFile = h("input", { type: "file", accept: ".jmx,.yml,.yaml,.json,.har,.xml" });
  const importBox = h("div", { "data-testid": "import-result" });
  importFile.addEventListener("change", async () => {
    const file = importFile.files && importFile.files[0];
    if (!file) return;
    clear(importBox, h("p.note", { role: "status" }, `Converting ${file.name}…`));
    errs.import.textContent = "";
    try {
      const r = await api.importFile(file);
      yamlBox.value = r.plan;
      mode = "yaml";
      sync();
      if (!f.name.value.trim()) {
        try { f.name.value = (await yaml()).load(r.plan).name || file.name; } catch { f.name.value = file.name; }
      }
      const items = r.report.items || [];
      clear(importBox,
        h("p", { role: "status" }, `Imported ${file.name} (${r.format}): ${items.length} elements — `,
          `${items.filter((i) => i.outcome === "converted").length} converted, ${items.filter((i) => i.outcome === "approximated").length} approximated, ${items.filter((i) => i.outcome === "skipped").length} skipped. Review the plan, then save.`),
        (r.report.warnings || []).length ? h("ul.note", {}, r.report.warnings.map((w) => h("li", {}, w))) : null,
        h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": "Import report" }, h("table", { "data-testid": "import-report" },
          h("thead", {}, h("tr", {}, ["Source element", "Kind", "Outcome", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, items.map((i) => h("tr", {}, h("td", {}, i.path), h("td", {}, i.element), h("td", {}, badge(i.outcome)), h("td", {}, i.detail || "")))))));
    } catch (err) {
      clear(importBox);
      errs.import.textContent = err.message;
    }
  });
  const importSection = h("div", {}, input("import", "Import a JMeter, Taurus, HAR or DLT file", importFile), importBox);

  tabForm.addEventListener("click", () => setMode("form"));
  tabYaml.addEventListener("click", () => setMode("yaml"));
  if (mode === "yaml") yamlBox.value = (await yaml()).dump(plan);

  clear(formBox,
    h("div.row", {}, input("url", "URL", f.url), input("method", "Method", f.method)),
    h("div.grid2", {}, input("headers", "Headers (one “name: value” a line)", f.headers), input("body", "Body", f.body)),
    h("div.row", {}, input("model", "Load", f.model), input("target", "VUs or requests/s", f.target),
      input("ramp", "Ramp", f.ramp, "e.g. 10s; 0s jumps"), input("hold", "Hold", f.hold, "e.g. 1m"), input("agents", "Agents", f.agents)),
    h("div.row", {}, input("regions", "Regions (optional)", f.regions, regionsHelp), regionList),
    input("thresholds", "Thresholds (one a line)", f.thresholds, "p50…p999, mean, max: durations; error_rate: %; rps, requests, errors"));
  for (const el of Object.values(f)) el.addEventListener("change", refreshPreview);
  yamlBox.addEventListener("change", refreshPreview);

  // --- schedule ------------------------------------------------------------------------------
  const schedule = scheduleSection(test, input, errs);

  // --- save, run, delete ---------------------------------------------------------------------
  function clearErrors() {
    general.replaceChildren();
    for (const [k, e] of Object.entries(errs)) {
      e.textContent = "";
      const el = document.getElementById(`f-${k}`);
      if (el) el.removeAttribute("aria-invalid");
    }
  }
  function showErrors(err) {
    const fields = err instanceof ApiError ? err.fieldErrors() : {};
    const left = [];
    let first = null;
    for (const [path, message] of Object.entries(fields)) {
      const name = mode === "form" || !path.startsWith("plan") ? fieldFor(path, mode === "form" ? readForm() : null) : null;
      const target = name && errs[name] && document.getElementById(`f-${name}`);
      if (target && !target.closest("[hidden]")) {
        errs[name].textContent = errs[name].textContent ? `${errs[name].textContent}; ${message}` : message;
        target.setAttribute("aria-invalid", "true");
        first ||= target;
      } else left.push(`${path}: ${message}`);
    }
    if (!Object.keys(fields).length) left.push(err.message);
    if (left.length) {
      const box = mode === "yaml" ? errs.yaml : general;
      box.append(h("ul.error-box", {}, left.map((l) => h("li", {}, l))));
      if (mode === "yaml") { yamlBox.setAttribute("aria-invalid", "true"); first ||= yamlBox; }
    }
    (first || general).scrollIntoView({ block: "center" });
    if (first) first.focus();
  }

  async function save() {
    clearErrors();
    let spec;
    try {
      spec = { name: f.name.value.trim(), tags: f.tags.value.split(",").map((t) => t.trim()).filter(Boolean), plan: await currentPlan() };
    } catch (err) {
      errs.yaml.textContent = `Not valid YAML: ${err.message.split("\n")[0]}`;
      yamlBox.setAttribute("aria-invalid", "true");
      return null;
    }
    const sched = schedule.value();
    if (sched) spec.schedule = sched;
    if (isNew && f.id.value.trim()) spec.id = f.id.value.trim();
    try {
      const saved = isNew ? await api.createTest(spec) : await api.updateTest(id, spec);
      toast(`Saved ${saved.name}`);
      if (isNew) await navigate(`/tests/${encodeURIComponent(saved.id)}`, { replace: true });
      else schedule.showNext(saved);
      return saved;
    } catch (err) {
      showErrors(err);
      return null;
    }
  }

  const saveBtn = h("button", { type: "submit", "data-testid": "save-test" }, isNew ? "Create test" : "Save");
  const actions = canWrite ? h("div.toolbar", {}, saveBtn,
    !isNew ? h("button.ghost", { type: "button", "data-testid": "run-test", onclick: async (e) => {
      e.target.disabled = true;
      try {
        const run = await api.runTest(id);
        navigate(`/runs/${encodeURIComponent(run.id)}`);
      } catch (err) { toast(err.message); e.target.disabled = false; }
    } }, "Run now") : null,
    !isNew ? h("button.danger", { type: "button", onclick: async () => {
      if (!confirm(`Delete the test ${test.name}? Its runs stay.`)) return;
      try { await api.deleteTest(id); toast("Deleted"); navigate("/tests"); } catch (err) { toast(err.message); }
    } }, "Delete") : null) : h("p.note", {}, "Read only: your credential is a viewer.");

  const form = h("form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); save(); } },
    h("fieldset", { disabled: !canWrite },
      h("legend", {}, "Test"),
      h("div.row", {}, isNew ? input("id", "Id (optional)", f.id) : null, input("name", "Name", f.name), input("tags", "Tags (comma separated)", f.tags))),
    h("fieldset", { disabled: !canWrite },
      h("legend", {}, "Plan"),
      h("div.toolbar", { role: "group", "aria-label": "Edit the plan as" }, tabForm, tabYaml, simpleNote),
      canWrite ? importSection : null,
      general, formBox, yamlSection),
    h("section", {}, h("h2", {}, "Planned load"), preview),
    h("fieldset", { disabled: !canWrite }, h("legend", {}, "Schedule"), schedule.element),
    actions);
  main.append(
    h("div.toolbar", {}, h("h1", {}, isNew ? "New test" : test.name), test ? h("span.note", {}, test.id) : null),
    form);
  if (test) main.append(await recentRuns(test));
  sync();
  const onTheme = () => refreshPreview();
  document.addEventListener("herd:theme", onTheme);
  return () => { document.removeEventListener("herd:theme", onTheme); if (previewChart) previewChart.destroy(); };
}

async function recentRuns(test) {
  const box = h("section", {}, h("h2", {}, "Recent runs"));
  try {
    const { runs } = await api.testRuns(test.id, 5, 0);
    if (!runs.length) box.append(h("p.muted", {}, "No runs yet."));
    else box.append(h("div.table-wrap", { tabindex: "0", role: "region", "aria-label": "Runs of this test" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Run", "State", "Created", "Agents", "Baseline"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, runs.map((r) => h("tr", {},
        h("td", {}, h("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.id)), h("td", {}, badge(r.state)),
        h("td", {}, when(r.created_at_ms)), h("td.num", {}, r.agents),
        h("td", {}, test.baseline_run === r.id ? h("span.tag", {}, "baseline") : "")))))),
      h("p", {}, h("a", { href: `/runs?test=${encodeURIComponent(test.id)}` }, "All runs of this test")));
  } catch (err) {
    box.append(h("p.error-box", {}, err.message));
  }
  return box;
}
