#!/usr/bin/env python3
"""Time from `herd run` to the first request, and the agents' start skew.

Starts a counting HTTP target (Python, threaded) on loopback, runs `herd run` with N agents
(default 8) several times, and prints per round: milliseconds from spawning `herd run` to the
first request the target received, and `start_skew_ms` from herd's summary; then the medians.

Usage: bench/startup.py [--agents 8] [--rounds 5] [--herd target/release/herd]
Build first: cargo build --release --bin herd
"""
import argparse
import http.server
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time


class Target(http.server.BaseHTTPRequestHandler):
    first = None
    count = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with Target.lock:
            if Target.first is None:
                Target.first = time.monotonic()
            Target.count += 1
        body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--herd", default="target/release/herd")
    args = ap.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    first_ms, skews = [], []
    with tempfile.TemporaryDirectory() as tmp:
        plan = os.path.join(tmp, "plan.yaml")
        with open(plan, "w") as f:
            f.write(f"""version: 1
name: startup
target: http://127.0.0.1:{port}
agents: {args.agents}
load:
  stages:
    - {{ duration: 2s, vus: {args.agents * 2} }}
scenario:
  - get: /
  - think: 100ms
""")
        for r in range(args.rounds):
            Target.first = None
            Target.count = 0
            out = os.path.join(tmp, f"summary-{r}.json")
            t0 = time.monotonic()
            proc = subprocess.run(
                [args.herd, "run", plan, "--json", out, "-q", "--data-dir", os.path.join(tmp, "data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            if proc.returncode != 0 or Target.first is None:
                raise SystemExit(f"round {r}: herd exited {proc.returncode}: {proc.stderr}")
            summary = json.load(open(out))
            ms = (Target.first - t0) * 1000
            first_ms.append(ms)
            skews.append(summary["start_skew_ms"])
            assert summary["requests"] == Target.count, (summary["requests"], Target.count)
            print(f"round {r}: first request after {ms:7.1f} ms   start skew {summary['start_skew_ms']:6.2f} ms   "
                  f"requests {summary['requests']} (target counted {Target.count})")
    print(f"median over {args.rounds} rounds with {args.agents} agents: time to first request "
          f"{statistics.median(first_ms):.1f} ms, start skew {statistics.median(skews):.2f} ms")


if __name__ == "__main__":
    main()
