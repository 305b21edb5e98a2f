// Bench (not a test): how long the run result page of a 1-hour run (3,600 stored seconds) takes
// to draw all its charts in headless Chromium, over several rounds, and how many bytes the first
// load of the console transfers. Run by bench/console_render.sh; prints figures, asserts nothing.
import { startAll } from "./harness.js";
import { launch } from "./browser.js";

const rounds = Number(process.argv[2] || 7);
const env = await startAll();
const browser = await launch();
try {
  const api = (method, path, body) => fetch(env.herdUrl + path, {
    method, headers: { authorization: `Bearer ${env.operator}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  }).then((r) => r.json());
  const plan = { version: 1, name: "render-bench", target: env.targetUrl, agents: 1, load: { vus: 2, duration: "5s" }, scenario: [{ get: "/" }] };
  const run = await api("POST", "/api/v1/runs?wait=true", { plan });
  const runId = run.run_id || run.id;
  const real = (await api("GET", `/api/v1/runs/${runId}/seconds`)).seconds;
  const hour = JSON.stringify({ run_id: runId, seconds: Array.from({ length: 3600 }, (_, t) => ({ ...real[t % real.length], t })) });

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await context.newPage();
  const cdp = await context.newCDPSession(p);
  await cdp.send("Network.enable");
  let bytes = 0;
  cdp.on("Network.loadingFinished", (e) => { bytes += e.encodedDataLength; });
  await p.goto(`${env.consoleUrl}/login`);
  await p.fill('input[name="token"]', env.operator);
  await p.click('button[type="submit"]');
  await p.waitForURL((u) => !u.pathname.startsWith("/login"));
  await p.goto(`${env.consoleUrl}/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector('[data-chart="latency"] canvas');
  console.log(`first load (sign-in + tests + run result page, everything): ${(bytes / 1024).toFixed(1)} KB transferred (goal ≤ 200 KB)`);

  await p.route(/\/api\/v1\/runs\/[^/]+\/seconds$/, (route) => route.fulfill({ contentType: "application/json", body: hour }));
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await p.goto(`${env.consoleUrl}/runs/${encodeURIComponent(runId)}`);
    await p.waitForFunction(() => {
      const boxes = [...document.querySelectorAll("[data-chart]")];
      return boxes.length > 0 && boxes.every((b) => b.querySelector("canvas"));
    });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(0);
  console.log(`3,600-second result page, navigation to every chart drawn, ${rounds} rounds: median ${at(0.5)} ms, max ${at(1)} ms (goal < 1000 ms)`);
} finally {
  await browser.close();
  await env.stop();
}
