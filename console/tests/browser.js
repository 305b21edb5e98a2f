// Browser plumbing shared by the console's test files: Debian's Chromium through playwright-core
// (no browser download), a page that records what must not happen (requests leaving the allowed
// origins, console errors other than expected 4xx answers, page errors), axe-core (vendored) and
// screenshots into screenshots/.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, "screenshots");
mkdirSync(shots, { recursive: true });

export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

/**
 * A new page in its own context. Anything not under one of `origins` (first: the console's), a
 * console error (except a 4xx on a path matching `expected4xx`) or a page error is pushed onto
 * `problems`.
 */
export async function watchedPage(browser, { origins, expected4xx = [], problems, width = 1280, height = 800, colorScheme = "light" }) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const p = await context.newPage();
  p.on("request", (r) => {
    const u = r.url();
    if (!origins.some((o) => u.startsWith(o + "/")) && !u.startsWith("blob:") && !u.startsWith("data:")) problems.push(`request left the origin: ${u}`);
  });
  p.on("console", (m) => {
    if (m.type() !== "error") return;
    const where = m.location().url || "";
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) && expected4xx.some((re) => re.test(new URL(where, origins[0]).pathname))) return;
    problems.push(`console error: ${m.text()} (${where})`);
  });
  p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return p;
}

/** Fails with every problem recorded so far, and empties the list. */
export function checkProblems(problems) {
  const list = problems.splice(0);
  assert.deepEqual(list, [], list.join("\n"));
}

/** axe-core on the page: no serious or critical violation. */
export async function axe(p, name) {
  await p.addScriptTag({ path: join(here, "vendor", "axe.min.js") });
  const violations = await p.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`));
  assert.deepEqual(violations, [], `axe on ${name}:\n${violations.join("\n")}`);
}

export const shot = (p, name) => p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
