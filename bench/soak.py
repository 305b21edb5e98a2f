#!/usr/bin/env python3
"""Soak: does memory stay flat over a long run? RSS of the coordinator and of each agent, sampled.

Runs `herd run` (embedded broker and store, local agents) for `--minutes` (default 60) with
`--agents` (default 4) at a fixed open-model rate (`--rps`, default 200: enough traffic to
exercise every path, little enough CPU to leave the machine usable) against nginx (Debian
package; one worker, keep-alive), and samples the RSS of `herd run` (the coordinator) and of every
`herd agent` child every `--every` seconds from /proc. Prints a row per sample, then for each
process its RSS at `--settle` minutes (default 5) and at the end, and the growth between them
(goal: < 5 %), and the run's request count against nginx's own.

Usage: bench/soak.py [--minutes 60] [--agents 4] [--rps 200] [--every 30] [--settle 5]
                     [--herd target/release/herd]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import nginx

PORT = 18090


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--rps", type=int, default=200)
    ap.add_argument("--every", type=float, default=30)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--herd", default="target/release/herd")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herd-soak-")
    target = nginx.start(tmp, PORT)
    plan = os.path.join(tmp, "plan.yaml")
    seconds = int(args.minutes * 60)
    with open(plan, "w") as f:
        f.write(f"""version: 1
name: soak
target: http://127.0.0.1:{PORT}
agents: {args.agents}
load:
  arrival:
    - {{ duration: {seconds}s, rps: {args.rps} }}
  start_rps: {args.rps}
scenario:
  - get: /soak
""")
    summary = os.path.join(tmp, "summary.json")
    before = nginx.requests(PORT)
    herd = subprocess.Popen([args.herd, "run", plan, "--json", summary, "-q", "--data-dir",
                             os.path.join(tmp, "data")], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "herd.log"), "w"))
    t0 = time.monotonic()
    samples = []  # (minute, {name: rss})
    try:
        while herd.poll() is None:
            row = {"coordinator": rss_kib(herd.pid)}
            agents = sorted(c for c in children(herd.pid) if " agent" in cmdline(c))
            for i, pid in enumerate(agents):
                row[f"agent{i}"] = rss_kib(pid)
            minute = (time.monotonic() - t0) / 60
            if all(v is not None for v in row.values()) and len(row) > 1:
                samples.append((minute, row))
                print(f"{minute:6.1f} min  " + "  ".join(f"{k} {v / 1024:7.1f} MiB" for k, v in row.items()),
                      flush=True)
            time.sleep(args.every)
        code = herd.wait()
        counted = nginx.requests(PORT) - before - 1
        result = json.load(open(summary))
        print(f"\nherd exited {code}; herd counted {result['requests']:,} requests, nginx {counted:,}")
        settled = [s for s in samples if s[0] >= args.settle]
        if len(settled) < 2:
            sys.exit("too few samples after the settle time: run longer")
        first, last = settled[0], settled[-1]
        print(f"RSS from {first[0]:.1f} min to {last[0]:.1f} min (goal: growth < 5 %):")
        for name in last[1]:
            if name in first[1]:
                a, b = first[1][name], last[1][name]
                print(f"  {name:12} {a / 1024:7.1f} MiB -> {b / 1024:7.1f} MiB  growth {100 * (b - a) / a:+.1f} %")
    finally:
        if herd.poll() is None:
            herd.terminate()
        target.terminate()
        target.wait()


if __name__ == "__main__":
    main()
