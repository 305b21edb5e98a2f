// For working on the console without rebuilding herd (the binary embeds the files at build time):
// serves console/ from disk at / the way `herd up` does (MANIFEST's files, index.html for every
// console route — history-API routing — gzip when asked) and proxies the API to a running
// `herd up`, so an edit shows on the next reload. The browser tests do not use it: they run
// against the binary's own serving.
//
//   node devserver.js --herd http://127.0.0.1:8787 [--port 0]   (prints "console on http://…")

import http from "node:http";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The files of MANIFEST, read once: path → {type, body, gz}. */
export function loadManifest() {
  const files = new Map();
  for (const line of readFileSync(join(root, "MANIFEST"), "utf8").split("\n")) {
    const [path, type] = line.trim().split(/\s+/);
    if (!path) continue;
    const body = readFileSync(join(root, path));
    files.set(`/${path}`, { type, body, gz: gzipSync(body, { level: 9 }) });
  }
  return files;
}

const PROXIED = /^\/(api\/|healthz$|readyz$|openapi\.json$|metrics$)/;
const ROUTES = /^\/(login|tests(\/[^/]+)?|runs(\/[^/]+)?)?\/?$/;

export function start({ herd, port = 0 }) {
  const files = loadManifest();
  const upstream = new URL(herd);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (PROXIED.test(path)) {
      const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res); // streams SSE as it comes
      });
      out.on("error", (e) => { res.writeHead(502, { "content-type": "application/json" }); res.end(JSON.stringify({ code: "unavailable", message: e.message })); });
      req.pipe(out);
      res.on("close", () => out.destroy());
      return;
    }
    const file = files.get(path) || (ROUTES.test(path) ? files.get("/index.html") : null);
    if (!file || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" });
      return res.end("not found");
    }
    const gzip = /\bgzip\b/.test(req.headers["accept-encoding"] || "");
    res.writeHead(200, {
      "content-type": file.type,
      "cache-control": path.startsWith("/assets/") ? "no-cache" : "no-store",
      "x-content-type-options": "nosniff",
      ...(gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : gzip ? file.gz : file.body);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
  const server = await start({ herd: arg("herd", "http://127.0.0.1:8787"), port: Number(arg("port", 0)) });
  console.log(`console on http://127.0.0.1:${server.address().port}/`);
}
