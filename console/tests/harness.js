// Starts what the browser tests run against: a counting target and a real `herd up` (binary from
// HERD_BIN) on a free port with a fresh data dir and two tokens (and `upArgs`, e.g. JWT settings); the console is the one embedded
// in that binary, served by it. stop() ends both (only the processes started here).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as target from "./target.js";

export async function startAll({ upArgs = [] } = {}) {
  const bin = process.env.HERD_BIN || "/work/bin/herd";
  if (!existsSync(bin)) throw new Error(`no herd binary at ${bin} (set HERD_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), "herd-console-"));
  const token = (role) => execFileSync(bin, ["token", "create", "--role", role, "--data-dir", dataDir], { encoding: "utf8" }).trim();
  const operator = token("operator");
  const viewer = token("viewer");
  const up = spawn(bin, ["up", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--max-agents", "16", ...upArgs], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const herdUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herd up did not start:\n${log}`)), 30000);
    up.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/API on (http:\/\/[^\s/]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    up.on("exit", (code) => reject(new Error(`herd up exited (${code}):\n${log}`)));
  });
  const tgt = await target.start();
  return {
    herdUrl, consoleUrl: herdUrl, operator, viewer, dataDir,
    targetUrl: `http://127.0.0.1:${tgt.address().port}`, target: tgt,
    log: () => log,
    async stop() {
      tgt.closeAllConnections(); tgt.close();
      up.kill("SIGTERM");
      await new Promise((r) => { const t = setTimeout(() => { up.kill("SIGKILL"); r(); }, 45000); up.on("exit", () => { clearTimeout(t); r(); }); });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
