// A counting HTTP target: answers every request 200 after 0–4 ms (so percentiles differ), counts
// them, and tells its count at GET /__count (not counted). herd's request count must equal it.
import http from "node:http";

export function start(port = 0) {
  let count = 0;
  const server = http.createServer((req, res) => {
    if (req.url === "/__count") return res.end(JSON.stringify({ count }));
    count++;
    req.resume();
    setTimeout(() => { res.writeHead(req.url.startsWith("/missing") ? 404 : 200, { "content-type": "text/plain" }); res.end("ok\n"); }, Math.random() * 4);
  });
  server.count = () => count;
  server.reset = () => { count = 0; };
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}
