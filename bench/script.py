#!/usr/bin/env python3
"""The script hook's cost: requests per agent CPU-second with and without script steps, the
per-request cost of a script's own requests, and memory per VU.

Target: the benches' counting nginx (bench/nginx.py), one worker pinned to core 0. The agent
(herd-bench-agent, release, one agent, 64 VUs, full per-second recording) runs pinned to core 1,
one plan at a time, in paired rounds whose order alternates (this machine drifts between runs):

  plain         [{get: /}]                       what every plan without scripts runs;
  plain@main    the same plan, with another build (`--main PATH`, e.g. main's release
                herd-bench-agent), to show plain plans pay nothing for the hook;
  script        [{get: /}, {script: touch}]      one script call per iteration (reads the last
                response, bumps a per-VU counter, writes a variable);
  script-req    [{script: fetch}]                the script sends the iteration's request itself
                (request(#{path: "/"})): the blocking-thread bridge per request.

Requests are counted by nginx (stub_status), CPU by the kernel (the agent's rusage: user +
system). Prints each round, the medians, and ratios to `plain` (median of per-round ratios).

Last part: memory per VU. Peak RSS of N VUs that each call the script once (then think for an
hour), minus that of N VUs of the plain plan that also think, per VU: what a VU's script state
(its `this` map, its last response) costs, beside the blocking threads the calls ran on.

Usage: bench/script.py [--rounds 5] [--duration 10] [--main PATH] [--vus-memory 10000]
Builds: cargo build --release -p herd-agent --bin herd-bench-agent
"""
import argparse
import os
import statistics
import subprocess
import tempfile

import nginx
from engine import PORT, measure  # the same counting nginx, the same pinned measurement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "target", "release", "herd-bench-agent")

SCRIPT = """
fn touch() {
    this.state.n = (this.state.n ?? 0) + 1;
    this.vars.last = this.response.status;
    this.response.status == 200
}

fn fetch() {
    let r = request(#{ path: "/" });
    this.state.n = (this.state.n ?? 0) + 1;
    r.status == 200
}
"""


def plan(tmp, name, vus, duration, scenario, scripts=True):
    path = os.path.join(tmp, f"plan-{name}-{vus}.yaml")
    with open(path, "w") as f:
        f.write(f"""version: 1
name: bench-{name}
target: http://127.0.0.1:{PORT}
load:
  stages:
    - {{ duration: 10ms, vus: {vus} }}
    - {{ duration: {duration}s, vus: {vus} }}
vars: {{ last: "" }}
{"scripts: bench.rhai" if scripts else ""}
scenario: {scenario}
options: {{ graceful_stop: 5s, http: http1 }}
""")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--main", help="another herd-bench-agent build for `plain@main`")
    ap.add_argument("--vus-memory", type=int, default=10_000)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "herd-agent", "--bin",
                        "herd-bench-agent"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "bench.rhai"), "w") as f:
            f.write(SCRIPT)
        server = nginx.start(tmp, PORT, pin_core=0)
        try:
            d = args.duration
            gens = {
                "plain": [AGENT, plan(tmp, "plain", 64, d, "[{get: /}]", scripts=False)],
                "script": [AGENT, plan(tmp, "script", 64, d, "[{get: /}, {script: touch}]")],
                "script-req": [AGENT, plan(tmp, "req", 64, d, "[{script: fetch}]")],
            }
            if args.main:
                gens["plain@main"] = [args.main, gens["plain"][1]]
            results = {name: [] for name in gens}
            names = list(gens)
            for r in range(args.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    requests, cpu, _, _ = measure(gens[name])
                    results[name].append((requests, cpu))
                    print(f"round {r + 1} {name:11} {requests:>9,} requests "
                          f"{cpu:6.2f} CPU-s {requests / cpu:>9,.0f} req/CPU-s", flush=True)
            print("\nmedians (req/CPU-s; ratio to plain: median of per-round ratios)")
            plain = [req / cpu for req, cpu in results["plain"]]
            for name in names:
                rates = [req / cpu for req, cpu in results[name]]
                ratios = [a / b for a, b in zip(rates, plain)]
                print(f"  {name:11} {statistics.median(rates):>9,.0f} req/CPU-s  "
                      f"x{statistics.median(ratios):.3f}  (rounds: "
                      f"{', '.join(f'{x:,.0f}' for x in rates)})")
            script = statistics.median(req / cpu for req, cpu in results["script"])
            per_call = (1 / script - 1 / statistics.median(plain)) * 1e6
            print(f"  one script call per iteration costs {per_call:.1f} µs of agent CPU")
            req = statistics.median(req / cpu for req, cpu in results["script-req"])
            per_req = (1 / req - 1 / statistics.median(plain)) * 1e6
            print(f"  a script's own request costs {per_req:.1f} µs of agent CPU more than a "
                  f"plan's (call + bridge)")

            n = args.vus_memory
            think = "{think: 1h}"
            _, _, base, _ = measure([AGENT, plan(tmp, "mem-plain", n, 5,
                                              f"[{{get: /}}, {think}]", scripts=False)])
            _, _, with_script, _ = measure([AGENT, plan(tmp, "mem-script", n, 5,
                                                     f"[{{get: /}}, {{script: touch}}, {think}]")])
            print(f"\nmemory: peak RSS {base / 1024:,.0f} MiB plain, {with_script / 1024:,.0f} MiB "
                  f"with one script call per VU, {n:,} VUs: "
                  f"{(with_script - base) * 1024 / n:,.0f} bytes more per VU")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
