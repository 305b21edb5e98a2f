// Browser tests of the console: Debian's Chromium (no browser download) driven by
// playwright-core, the real app as `herd up` embeds and serves it, against that same `herd up`. Every page is checked with axe-core (vendored) for serious/critical
// violations, for requests leaving the origin and for console errors, and screenshotted into
// screenshots/ (look at them: a chart that draws nothing is a failure).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startAll } from "./harness.js";
import { launch, watchedPage, checkProblems as check, axe, shot, here } from "./browser.js";

let env, browser;
const problems = []; // foreign requests, console errors, page errors — checked after each test

before(async () => {
  env = await startAll();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await env?.stop();
});

async function apiCall(method, path, body, tok = env.operator) {
  const res = await fetch(env.herdUrl + path, {
    method, headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// 4xx answers the app provokes on purpose: a bad token at sign-in, a bad field, a compare without
// a baseline, a stream of a run that just ended. Chromium logs each as "Failed to load
// resource"; others fail.
const EXPECTED_4XX = [/\/api\/v1\/whoami$/, /\/api\/v1\/tests$/, /\/compare$/, /\/live$/, /\/schedules\/preview$/];

const page = (view = {}) => watchedPage(browser, { origins: [new URL(env.consoleUrl).origin], expected4xx: EXPECTED_4XX, problems, ...view });
const checkProblems = () => check(problems);

/** How many pixels of the chart's canvas differ from its first pixel: 0 means it drew nothing. */
const inked = (p, selector) => p.$eval(selector, (box) => {
  const c = box.querySelector("canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
  return n;
});

async function signIn(p, tok, path = "/tests") {
  await p.goto(env.consoleUrl + path);
  await p.waitForURL(/\/login/);
  await p.fill('input[name="token"]', tok);
  await p.click('button[type="submit"]');
  await p.waitForURL((u) => !u.pathname.startsWith("/login"));
}

test("sign in: a bad token is refused at the field; a viewer sees no write controls and a write is refused", async () => {
  const made = await apiCall("POST", "/api/v1/tests", {
    id: "api-made", name: "made through the API", tags: ["api"],
    plan: { version: 1, name: "api-made", target: env.targetUrl, agents: 1, load: { vus: 1, duration: "2s" }, scenario: [{ get: "/" }] },
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const p = await page();
  await p.goto(env.consoleUrl + "/tests");
  await p.waitForURL(/\/login\?next=%2Ftests/);
  await p.waitForSelector('input[name="token"]');
  await axe(p, "login");
  await shot(p, "01-login");
  await p.fill('input[name="token"]', "not-a-token");
  await p.click('button[type="submit"]');
  await p.waitForSelector("#token-error:not(:empty)");
  assert.match(await p.textContent("#token-error"), /unknown token/);
  assert.equal(await p.getAttribute('input[name="token"]', "aria-invalid"), "true");

  await p.fill('input[name="token"]', env.viewer);
  await p.click('button[type="submit"]');
  await p.waitForURL(/\/tests$/);
  await p.waitForSelector("text=made through the API");
  assert.equal(await p.locator('[data-testid="new-test"]').count(), 0);
  assert.equal(await p.locator('[data-testid="run-now"]').count(), 0);
  assert.equal(await p.textContent("#who"), "viewer");
  const write = await p.evaluate(async () => (await fetch("/api/v1/tests/api-made/runs", { method: "POST", headers: { authorization: `Bearer ${sessionStorage.getItem("herd.token")}` }, body: "{}" })).status);
  assert.equal(write, 403, "a viewer's write is refused");
  await p.goto(env.consoleUrl + "/tests/api-made");
  await p.waitForSelector("text=Read only");
  assert.equal(await p.locator('[data-testid="save-test"], [data-testid="run-test"]').count(), 0);
  assert.equal(await p.locator("fieldset[disabled]").count() >= 2, true);
  await shot(p, "02-editor-viewer");
  await p.context().close();
  problems.splice(0).forEach((x) => { if (!/status of 403/.test(x)) problems.push(x); }); // the refused write above
  checkProblems();
});

let runId;
const ctx = {};

test("an operator creates a test through the form; a bad field shows the API's message at that field", async () => {
  const p = await page();
  ctx.p = p;
  await signIn(p, env.operator);
  await p.click('[data-testid="new-test"]');
  await p.waitForURL(/\/tests\/new$/);
  await p.fill("#f-id", "form-smoke");
  await p.fill("#f-name", "form smoke");
  await p.fill("#f-tags", "ci, console");
  await p.fill("#f-url", `${env.targetUrl}/hello`);
  await p.selectOption("#f-method", "GET");
  await p.fill("#f-target", "4");
  await p.fill("#f-ramp", "2s");
  await p.fill("#f-hold", "40s");
  await p.fill("#f-agents", "0");
  await p.fill("#f-thresholds", "p99 < 500ms\nerror_rate < 1%");
  const [res] = await Promise.all([p.waitForResponse((r) => r.url().endsWith("/api/v1/tests") && r.request().method() === "POST"), p.click('[data-testid="save-test"]')]);
  assert.equal(res.status(), 400);
  const body = await res.json();
  assert.equal(body.field, "plan.agents");
  await p.waitForSelector("#err-agents:not(:empty)");
  assert.equal(await p.textContent("#err-agents"), body.message.replace("plan.agents: ", ""));
  assert.equal(await p.getAttribute("#f-agents", "aria-invalid"), "true");
  await shot(p, "03-editor-bad-field");

  await p.fill("#f-agents", "2");
  await p.click('[data-testid="save-test"]');
  await p.waitForURL(/\/tests\/form-smoke$/);
  const stored = await apiCall("GET", "/api/v1/tests/form-smoke");
  assert.equal(stored.status, 200);
  assert.deepEqual(stored.body.plan.load, { stages: [{ duration: "2s", vus: 4 }, { duration: "40s", vus: 4 }] });
  assert.deepEqual(stored.body.plan.scenario, [{ get: "/hello" }]);
  assert.equal(stored.body.plan.agents, 2);
  assert.deepEqual(stored.body.tags, ["ci", "console"]);
  await p.waitForSelector(".chart canvas");
  assert.ok((await inked(p, ".chart")) > 500, "the load preview draws");
  await axe(p, "editor");
  await shot(p, "04-editor");
  checkProblems();
});

test("the schedule shows the server's next fire, and a preview of the next five equal to the server's", async () => {
  const p = ctx.p;
  await p.selectOption("#f-sched-kind", "cron");
  await p.fill("#f-sched-expr", "30 9 * * mon-fri");
  await p.fill("#f-sched-tz", "America/New_York");
  await p.waitForFunction(() => document.querySelectorAll('[data-testid="next-fires"] li').length === 5 && document.querySelector("#f-sched-tz").value === "America/New_York");
  await p.waitForTimeout(600); // the preview follows the last edit
  const shown = await p.$$eval('[data-testid="next-fires"] li', (li) => li.map((l) => Number(l.dataset.ms)));
  const server = await apiCall("POST", "/api/v1/schedules/preview", { schedule: { kind: "cron", expr: "30 9 * * mon-fri", tz: "America/New_York" }, count: 5 });
  assert.equal(server.status, 200, JSON.stringify(server.body));
  assert.deepEqual(shown, server.body.next_fires_ms, "the editor shows the server's next five fires");
  for (const t of shown) {
    const wall = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hourCycle: "h23", hour: "2-digit", minute: "2-digit", weekday: "short" }).format(new Date(t));
    assert.match(wall, /^(Mon|Tue|Wed|Thu|Fri) 09:30$/, `a fire at ${wall} New York time`);
  }
  await shot(p, "05a-editor-schedule-preview");
  await p.fill("#f-sched-tz", "Mars/Olympus");
  await p.waitForSelector("#err-sched-tz:not(:empty)");
  assert.match(await p.textContent("#err-sched-tz"), /unknown time zone/);
  assert.equal(await p.locator('[data-testid="next-fires"] li').count(), 0);
  await p.selectOption("#f-sched-kind", "at");
  await p.fill("#f-sched-at", "2031-01-01T09:00");
  await p.fill("#f-sched-tz", "Europe/Paris");
  await p.click('[data-testid="save-test"]');
  await p.waitForSelector('[data-testid="next-fire"]:has-text("computed by the server")');
  const stored = (await apiCall("GET", "/api/v1/tests/form-smoke")).body;
  assert.equal(stored.next_fire_ms, Date.parse("2031-01-01T08:00:00Z"));
  assert.match(await p.textContent('[data-testid="next-fire"]'), new RegExp(new Date(stored.next_fire_ms).toISOString()));
  await shot(p, "05-editor-schedule");
  checkProblems();
});

test("run: live seconds within 1.5 s of their end; a reload shows every second so far; stop ends the run; the result equals the API", async () => {
  const p = ctx.p;
  env.target.reset();
  await p.click('[data-testid="run-test"]');
  await p.waitForURL(/\/runs\/[^/]+$/);
  runId = decodeURIComponent(new URL(p.url()).pathname.split("/").pop());
  await p.waitForFunction(() => Number(document.querySelector('[data-testid="live-seconds"]')?.textContent) >= 5, null, { timeout: 60000 });
  const live = await p.evaluate(() => window.herdLive);
  // Replayed seconds say nothing about delay; the first live event of a connection is the second
  // current at connect time, not a fresh one.
  const fresh = live.filter((e) => !e.replayed).slice(1).filter((e) => e.second_end_ms);
  assert.ok(fresh.length >= 3, JSON.stringify(live));
  for (const e of fresh) assert.ok(e.received_ms - e.second_end_ms <= 1500, `second ${e.t} arrived ${e.received_ms - e.second_end_ms} ms after its end`);
  await p.waitForSelector('[data-chart="throughput"] canvas');
  assert.ok((await inked(p, '[data-chart="throughput"]')) > 500, "the live throughput chart draws");
  assert.ok((await inked(p, '[data-chart="latency"]')) > 500, "the live latency chart draws");
  const chartIds = (q) => q.$$eval("[data-chart]", (els) => els.map((e) => e.dataset.chart));
  const liveCharts = await chartIds(p);
  for (const c of ["codes", "health"]) assert.ok(liveCharts.includes(c), `live has the ${c} chart: ${liveCharts}`);
  const liveLegend = await p.textContent('[data-chart="latency"] .u-legend');
  for (const label of ["p90", "p99.9"]) assert.ok(liveLegend.includes(label), `live latency legend has ${label}`);
  assert.match(await p.textContent('[data-chart="load"] .u-legend'), /VUs/);
  // Each agent's own health in the last live second: the run's agents, each with its figures.
  await p.waitForSelector('[data-testid="agents-health"] tbody tr');
  const rows = await p.$$eval('[data-testid="agents-health"] tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const expected = (await apiCall("GET", `/api/v1/runs/${encodeURIComponent(runId)}`)).body.agents;
  assert.equal(rows.length, expected, JSON.stringify(rows));
  for (const [agent, cpu, lag] of rows) {
    assert.match(agent, /^agent-\d+/);
    assert.match(cpu, /^\d[\d,]* %$/);
    assert.match(lag, /ms$/);
  }
  await axe(p, "live run");
  await shot(p, "06-run-live");

  const secondsReads = [];
  p.on("request", (r) => { if (/\/seconds$/.test(r.url())) secondsReads.push(r.url()); });
  await p.reload();
  await p.waitForFunction(() => Number(document.querySelector('[data-testid="live-seconds"]')?.textContent) >= 7, null, { timeout: 30000 });
  const replayed = await p.evaluate(() => window.herdLive.filter((e) => e.replayed).map((e) => e.t));
  assert.ok(replayed.length >= 5 && replayed[0] === 0, `the stream replays from second 0 after a reload: ${replayed}`);
  assert.deepEqual(secondsReads, [], "the live page needs no /seconds read: the stream replays");
  const { count, maxT } = await p.$eval('[data-testid="live-seconds"]', (e) => ({ count: Number(e.textContent), maxT: Number(e.dataset.maxT) }));
  assert.equal(count, maxT + 1, "after a reload every second from 0 is shown");
  const stored = (await apiCall("GET", `/api/v1/runs/${runId}/seconds`)).body.seconds;
  assert.ok(count >= stored.length - 1, `shown ${count}, stored ${stored.length}`);
  await shot(p, "07-run-live-after-reload");

  await p.click('[data-testid="stop-run"]');
  await p.waitForSelector('[data-testid="run-status"]', { timeout: 60000 });
  const run = (await apiCall("GET", `/api/v1/runs/${runId}`)).body;
  assert.equal(run.state, "cancelled");
  assert.equal(await p.getAttribute('[data-testid="run-state"]', "data-state"), run.state);
  assert.equal(Number(await p.textContent('[data-testid="run-requests"]')), run.summary.requests);
  assert.equal(Number(await p.textContent('[data-testid="run-errors"]')), run.summary.errors);
  assert.equal(await p.textContent('[data-testid="run-rps"]'), run.summary.rps.toLocaleString("en-US", { maximumFractionDigits: 1 }));
  assert.equal(env.target.count(), run.summary.requests, "the target counted what herd reports");
  await p.waitForSelector('[data-chart="latency"] canvas');
  assert.ok((await inked(p, '[data-chart="latency"]')) > 500, "the result latency chart draws");
  // The stored seconds carry what the live page drew: the result page draws the same charts.
  const resultCharts = await chartIds(p);
  assert.deepEqual(resultCharts, liveCharts, "the result page draws the charts the live page drew");
  for (const c of resultCharts) assert.ok((await inked(p, `[data-chart="${c}"]`)) > 300, `the result's ${c} chart draws`);
  const stored0 = (await apiCall("GET", `/api/v1/runs/${runId}/seconds`)).body.seconds.find((x) => x.requests > 0);
  for (const k of ["p90_ms", "p999_ms", "vus", "status_codes", "health"]) assert.ok(stored0[k] !== undefined, `a stored second has ${k}: ${JSON.stringify(stored0)}`);
  assert.equal(Object.values(stored0.status_codes).reduce((a, b) => a + b, 0), stored0.requests, "a second's status codes add up to its requests");
  await axe(p, "run result");
  await shot(p, "08-run-result");
  checkProblems();
});

test("baseline: a second run is compared with the first, overlaid by elapsed second", async () => {
  const p = ctx.p;
  await p.click('[data-testid="set-baseline"]');
  await p.waitForSelector('.tag:has-text("baseline")');
  assert.equal((await apiCall("GET", "/api/v1/tests/form-smoke")).body.baseline_run, runId);
  const second = await apiCall("POST", "/api/v1/tests/form-smoke/runs?wait=true", { duration: "5s" });
  assert.ok([200, 422].includes(second.status), JSON.stringify(second.body));
  await p.goto(`${env.consoleUrl}/runs/${encodeURIComponent(second.body.run_id)}`);
  await p.waitForSelector('[data-testid="compare-verdict"]');
  const legend = await p.textContent('[data-chart="throughput"] .u-legend');
  assert.match(legend, /baseline requests\/s/);
  assert.ok((await inked(p, '[data-chart="throughput"]')) > 500);
  await shot(p, "09-run-compare");
  await axe(p, "compare");
  checkProblems();
});

test("HTML report: downloaded from the run page, it opens from file:// with no network, draws its charts and shows the API's numbers", async () => {
  const p = ctx.p;
  await p.goto(`${env.consoleUrl}/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector('[data-testid="download-report"]');
  assert.match(await p.textContent('[data-testid="verdict-note"]'), /stopped before its planned end/, "the cancelled run's \"error\" verdict is explained");
  const file = join(tmpdir(), `herd-report-${process.pid}.html`);
  const [dl] = await Promise.all([p.waitForEvent("download"), p.click('[data-testid="download-report"]')]);
  await dl.saveAs(file);
  const fromApi = await (await fetch(`${env.herdUrl}/api/v1/runs/${encodeURIComponent(runId)}/report.html`, { headers: { authorization: `Bearer ${env.viewer}` } })).text();
  const saved = readFileSync(file, "utf8");
  const withoutClock = (t) => t.replace(/"written_at_ms":\d+/, "");
  assert.equal(withoutClock(saved), withoutClock(fromApi), "the console saves what the API serves");
  // `herd report RUN_ID --html FILE` writes the same document from the same store.
  const cliFile = join(tmpdir(), `herd-report-cli-${process.pid}.html`);
  // It exits with the run's verdict, as `herd run` does: 3 for this stopped run.
  const cli = spawnSync(process.env.HERD_BIN, ["report", runId, "--html", cliFile, "--data-dir", env.dataDir]);
  assert.equal(cli.status, 3, `herd report exits with the stopped run's code: ${cli.stderr}`);
  assert.equal(withoutClock(readFileSync(cliFile, "utf8")), withoutClock(fromApi), "herd report --html writes the API's report");

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const requests = [], errors = [];
  await context.route(/.*/, (route) => { requests.push(route.request().url()); return route.request().url().startsWith("file:") ? route.continue() : route.abort(); });
  const r = await context.newPage();
  r.on("request", (q) => { if (!q.url().startsWith("file:")) requests.push(q.url()); });
  r.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  r.on("pageerror", (e) => errors.push(e.message));
  await r.goto(pathToFileURL(file).href);
  await r.waitForSelector('html[data-ready="true"]', { state: "attached" });
  const run = (await apiCall("GET", `/api/v1/runs/${runId}`)).body;
  assert.equal(Number(await r.textContent('[data-testid="run-requests"]')), run.summary.requests);
  assert.equal(Number(await r.textContent('[data-testid="run-errors"]')), run.summary.errors);
  assert.equal(await r.textContent('[data-testid="run-rps"]'), run.summary.rps.toLocaleString("en-US", { maximumFractionDigits: 1 }));
  assert.equal(await r.getAttribute('[data-testid="run-state"]', "data-state"), run.state);
  assert.equal(await r.locator('[data-testid="agents"] tbody tr').count(), run.summary.agents.length);
  const charts = await r.$$eval("[data-chart]", (els) => els.map((e) => e.dataset.chart));
  for (const c of ["throughput", "latency", "errors", "load"]) assert.ok(charts.includes(c), `the report has the ${c} chart: ${charts}`);
  for (const c of charts) assert.ok((await inked(r, `[data-chart="${c}"]`)) > 300, `the report's ${c} chart draws`);
  const legend = await r.textContent('[data-chart="latency"] .u-legend');
  for (const label of ["p50", "p99"]) assert.ok(legend.includes(label), `latency legend has ${label}: ${legend}`);
  await shot(r, "15-report-file");
  assert.deepEqual(requests.filter((u) => !u.startsWith("file:")), [], "the report makes no network request");
  assert.deepEqual(errors, [], "no console errors in the report");
  await context.close();
  rmSync(file); rmSync(cliFile);
  checkProblems();
});

test("tests list and runs history (filters, paging) render and pass axe", async () => {
  const p = ctx.p;
  await p.goto(env.consoleUrl + "/tests");
  await p.waitForSelector("text=form smoke");
  await p.waitForFunction(() => !document.querySelector("tbody")?.textContent.includes("…"));
  await axe(p, "tests");
  await shot(p, "10-tests");
  const inline = await apiCall("POST", "/api/v1/runs?wait=true", { plan: { version: 1, name: "inline-one", target: env.targetUrl, agents: 1, load: { vus: 1, duration: "2s" }, scenario: [{ get: "/" }] } });
  assert.ok([200, 422].includes(inline.status), JSON.stringify(inline.body));
  await p.goto(env.consoleUrl + "/runs");
  await p.waitForSelector("tbody tr");
  assert.ok((await p.locator("tbody tr").count()) >= 3);
  await p.waitForSelector("text=inline-one (inline plan)"); // GET /api/v1/runs lists inline plans too
  await p.selectOption("#f-test", "form-smoke");
  await p.waitForURL(/test=form-smoke/);
  await p.selectOption("#f-state", "cancelled");
  await p.waitForURL(/state=cancelled/);
  // The URL changes before the filtered page replaces the table: wait for the one row it lists.
  await p.waitForFunction(() => document.querySelectorAll("tbody tr").length === 1 && !document.querySelector("tbody")?.textContent.includes("inline-one"));
  assert.equal(await p.locator("tbody tr").count(), 1);
  await axe(p, "runs");
  await shot(p, "11-runs");
  checkProblems();
});

test("phone width and the dark theme", async () => {
  const p = await page({ width: 390, height: 844, colorScheme: "dark" });
  await signIn(p, env.operator, `/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector('[data-chart="latency"] canvas');
  assert.ok((await inked(p, '[data-chart="latency"]')) > 300);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  await axe(p, "run result, phone, dark");
  await shot(p, "12-run-phone-dark");
  await p.click("#theme");
  assert.equal(await p.getAttribute("html", "data-theme"), "light");
  await p.goto(env.consoleUrl + "/tests/form-smoke");
  await p.waitForSelector(".chart canvas");
  await shot(p, "13-editor-phone-light");
  await axe(p, "editor, phone");
  await p.context().close();
  checkProblems();
});

test("import: a JMeter file uploaded in the editor becomes its plan, with the converter's report", async () => {
  const fixture = join(here, "..", "..", "tests", "fixtures", "import", "jmeter", "SteppingThreadGroup.jmx");
  const api = await fetch(`${env.herdUrl}/api/v1/import`, { method: "POST", headers: { authorization: `Bearer ${env.operator}` }, body: readFileSync(fixture) });
  assert.equal(api.status, 200);
  const expected = await api.json();
  assert.ok(expected.report.items.length > 0, JSON.stringify(expected));
  const p = await page();
  await signIn(p, env.operator, "/tests/new");
  await p.setInputFiles("#f-import", fixture);
  await p.waitForSelector('[data-testid="import-report"] tbody tr');
  assert.equal(await p.inputValue("#f-yaml"), expected.plan, "the editor holds the API's plan");
  assert.equal(await p.locator('[data-testid="import-report"] tbody tr').count(), expected.report.items.length);
  const first = await p.$$eval('[data-testid="import-report"] tbody tr:first-child td', (td) => td.map((c) => c.textContent));
  assert.deepEqual(first.slice(0, 3), [expected.report.items[0].path, expected.report.items[0].element, expected.report.items[0].outcome]);
  assert.ok(await p.isVisible("#f-yaml"), "the editor switched to YAML");
  await axe(p, "editor after import");
  await shot(p, "16-editor-import");
  await p.fill("#f-name", "imported stepping");
  await p.fill("#f-id", "imported-stepping");
  await p.click('[data-testid="save-test"]');
  await p.waitForURL(/\/tests\/imported-stepping$/);
  const stored = await apiCall("GET", "/api/v1/tests/imported-stepping");
  assert.equal(stored.status, 200, "the imported plan saves as a test");
  await p.context().close();
  checkProblems();
});

test("keyboard: sign in and reach the tests with the keyboard alone", async () => {
  const p = await page();
  await p.goto(env.consoleUrl + "/login");
  await p.waitForSelector('input[name="token"]:focus');
  await p.keyboard.type(env.viewer);
  await p.keyboard.press("Enter");
  await p.waitForURL(/\/tests$/);
  await p.waitForSelector("text=form smoke");
  // Tab from the top: the skip link first, then the header's links.
  await p.keyboard.press("Tab");
  assert.equal(await p.evaluate(() => document.activeElement.textContent), "Skip to content");
  await p.context().close();
  checkProblems();
});

test("regions in the form: a bad one is named at its field; a run's per-region table adds up to the target's count", async () => {
  const p = await page();
  await signIn(p, env.operator, "/tests/new");
  await p.waitForSelector("#f-regions");
  // Local agents: any names, as labels.
  assert.deepEqual((await apiCall("GET", "/api/v1/regions")).body, { regions: null });
  await p.fill("#f-id", "regions-form");
  await p.fill("#f-name", "regions form");
  await p.fill("#f-url", `${env.targetUrl}/regions`);
  await p.fill("#f-target", "2");
  await p.fill("#f-ramp", "0s");
  await p.fill("#f-hold", "3s");
  await p.fill("#f-agents", "");
  await p.fill("#f-regions", "eu-west-1=1, us-east-1=none");
  const [res] = await Promise.all([p.waitForResponse((r) => r.url().endsWith("/api/v1/tests") && r.request().method() === "POST"), p.click('[data-testid="save-test"]')]);
  assert.equal(res.status(), 400);
  const body = await res.json();
  assert.match(body.field, /^plan\.regions\[1\]/);
  await p.waitForSelector("#err-regions:not(:empty)");
  assert.equal(await p.getAttribute("#f-regions", "aria-invalid"), "true");

  await p.fill("#f-regions", "eu-west-1=1, us-east-1=1");
  await p.click('[data-testid="save-test"]');
  await p.waitForURL(/\/tests\/regions-form$/);
  const stored = (await apiCall("GET", "/api/v1/tests/regions-form")).body.plan;
  assert.deepEqual(stored.load, { stages: [{ duration: "0s", vus: 2 }, { duration: "3s", vus: 2 }] }, "0s jumps");
  assert.deepEqual(stored.regions, [{ region: "eu-west-1", agents: 1 }, { region: "us-east-1", agents: 1 }]);
  assert.equal(await p.inputValue("#f-regions"), "eu-west-1=1, us-east-1=1", "the form reads the stored regions back");

  env.target.reset();
  await p.click('[data-testid="run-test"]');
  await p.waitForURL(/\/runs\/[^/]+$/);
  const id = decodeURIComponent(new URL(p.url()).pathname.split("/").pop());
  await p.waitForSelector('[data-testid="regions"] tbody tr', { timeout: 60000 });
  const rows = await p.$$eval('[data-testid="regions"] tbody tr', (trs) => trs.map((tr) => [tr.cells[0].textContent, Number(tr.cells[1].textContent.replace(/[^\d]/g, ""))]));
  assert.deepEqual(rows.map(([name]) => name).sort(), ["eu-west-1", "us-east-1"]);
  assert.ok(rows.every(([, n]) => n > 0), `a ramp of 0s starts both VUs at once: ${JSON.stringify(rows)}`);
  const run = (await apiCall("GET", `/api/v1/runs/${encodeURIComponent(id)}`)).body;
  const sum = rows.reduce((a, [, n]) => a + n, 0);
  assert.equal(sum, run.summary.requests);
  assert.equal(run.summary.requests, env.target.count(), "herd's count is the target's");
  await shot(p, "19-run-regions");
  await p.context().close();
  checkProblems();
});

test("first load ≤ 200 KB transferred; a 3,600-second result draws every chart", async () => {
  const p = await page();
  const cdp = await p.context().newCDPSession(p);
  await cdp.send("Network.enable");
  let bytes = 0;
  cdp.on("Network.loadingFinished", (e) => { bytes += e.encodedDataLength; });
  await signIn(p, env.operator, `/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector('[data-chart="latency"] canvas');
  console.log(`first load (sign-in + run result page, all files and API answers): ${(bytes / 1024).toFixed(1)} KB transferred`);
  assert.ok(bytes <= 200 * 1024, `first load ${bytes} bytes`);

  // A 1-hour run: the stored seconds of the real run, stretched to 3,600 by the test (the render
  // cost depends on the number of seconds, not on where they came from).
  const real = (await apiCall("GET", `/api/v1/runs/${runId}/seconds`)).body.seconds;
  await p.route(/\/api\/v1\/runs\/[^/]+\/seconds$/, (route) => route.fulfill({
    contentType: "application/json",
    body: JSON.stringify({ run_id: runId, seconds: Array.from({ length: 3600 }, (_, t) => ({ ...real[t % real.length], t })) }),
  }));
  // Its render time is measured by bench/console_render.sh (a timed assertion here would only
  // measure how busy the CI machine is).
  await p.goto(`${env.consoleUrl}/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector('[data-chart="load"] canvas');
  for (const chart of await p.$$eval("[data-chart]", (boxes) => boxes.map((b) => b.dataset.chart))) {
    assert.ok((await inked(p, `[data-chart="${chart}"]`)) > 300, `chart ${chart} of 3,600 seconds draws`);
  }
  await shot(p, "14-run-3600s");
  await p.context().close();
  checkProblems();
});
