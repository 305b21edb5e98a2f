#!/usr/bin/env python3
"""herd's agent against wrk, oha and h2load: requests per generator CPU-second, and idle-VU memory.

Target: nginx (Debian package, installed if missing), one worker pinned to core 0, answering a
small static body over keep-alive. Generators run pinned to core 1, one at a time, in paired
rounds whose order alternates (this machine drifts ±15 % between runs): herd's agent (one agent,
64 connections = 64 VUs, a one-step scenario, full per-second HdrHistogram recording), wrk, and
oha (`cargo install oha` if missing; skipped with a note if that fails). Requests are counted by
nginx (stub_status), CPU by the kernel (the generator's rusage: user + system). Prints per round
and the medians, and herd's ratio to wrk and to oha (median of per-round ratios).

Modes (`--modes`, default all), each against its own nginx listener, in the same paired rounds:
  http1      plain HTTP/1.1 keep-alive: herd, wrk, oha;
  https      HTTP/1.1 over TLS keep-alive (a test certificate made with openssl): herd, wrk;
  h2         HTTP/2 over TLS (ALPN h2): herd (`http: http2`), h2load (Debian's nghttp2-client),
             like for like: 64 connections, one stream at a time on each (a herd VU sends one
             request at a time; h2load -c64 -m1), one thread (h2load -t1; herd's agent runs its
             VUs on one), the same nginx listener and 12-byte body (so receive windows — h2load
             2^30-1, herd 2 MiB per stream and 5 MiB per connection — never fill);
  h2c        HTTP/2 by prior knowledge on plain TCP: herd, h2load, as for h2;
  handshake  HTTPS where nginx closes every connection after its response (keepalive_timeout 0):
             every request is a new TCP connection and TLS handshake; herd, wrk; reported as
             handshakes (= requests) per generator CPU-second.

Last part: peak RSS of the agent holding 100,000 idle VUs (each thinks for an hour first),
minus the RSS of the same run with 1 VU, per VU.

Usage: bench/engine.py [--rounds 5] [--duration 10] [--modes http1,https,h2,h2c,handshake]
                       [--skip-memory] [--skip-oha]
                       [--compare NAME=PATH ...]   (another herd-bench-agent build, e.g. an older
                                                    commit's, measured in the same rounds)
Builds: cargo build --release -p herd-agent --bin herd-bench-agent
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import nginx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "target", "release", "herd-bench-agent")
PORT = 18089
# One nginx listener per mode (stub_status counts them all; one generator runs at a time).
PORTS = {"http1": PORT, "https": 18443, "h2": 18444, "h2c": 18445, "handshake": 18446}
MODES = list(PORTS)


def ensure_tools(skip_oha):
    tools = (("nginx", "nginx"), ("wrk", "wrk"), ("nghttp2-client", "h2load"), ("openssl", "openssl"))
    missing = [p for p, b in tools if not shutil.which(b)]
    if missing:
        print(f"installing {' '.join(missing)} (apt-get)", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    oha = shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha")
    if skip_oha:
        print("NOTE: oha skipped (--skip-oha)", flush=True)
        oha = None
    elif not os.path.exists(oha):
        print("installing oha (cargo install oha)", flush=True)
        r = subprocess.run(["cargo", "install", "--locked", "oha"])
        if r.returncode != 0:
            print("NOTE: oha could not be installed; it is skipped", flush=True)
            oha = None
    print("building herd-bench-agent (release)", flush=True)
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "herd-agent", "--bin", "herd-bench-agent"],
        cwd=ROOT,
        check=True,
    )
    return oha


def test_certificate(tmp):
    """A self-signed certificate for 127.0.0.1 (the agent runs with insecure_tls, wrk and h2load
    do not verify)."""
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return key, crt


def start_nginx(tmp):
    key, crt = test_certificate(tmp)
    tls = f"ssl_certificate {crt}; ssl_certificate_key {key}; ssl_protocols TLSv1.3;"
    body = nginx.BODY
    servers = f"""
  server {{ listen 127.0.0.1:{PORTS["https"]} ssl; {tls} location / {{ {body} }} }}
  server {{ listen 127.0.0.1:{PORTS["h2"]} ssl http2; {tls} location / {{ {body} }} }}
  server {{ listen 127.0.0.1:{PORTS["h2c"]} http2; location / {{ {body} }} }}
  server {{ listen 127.0.0.1:{PORTS["handshake"]} ssl; {tls} keepalive_timeout 0;
           location / {{ {body} }} }}"""
    return nginx.start(tmp, PORT, servers, pin_core=0)


def nginx_requests():
    return nginx.requests(PORT)


def measure(cmd):
    """Runs cmd pinned to core 1; returns (requests nginx counted, CPU seconds, peak RSS KiB)."""
    before = nginx_requests()
    proc = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err}{out}")
    requests = nginx_requests() - before - 1  # minus the status request itself
    return requests, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out


def herd_plan(tmp, vus, duration, scenario, mode="http1"):
    path = os.path.join(tmp, f"plan-{mode}-{vus}.yaml")
    scheme = "http" if mode in ("http1", "h2c") else "https"
    http = {"h2": "http2", "h2c": "http2"}.get(mode, "http1")
    tls = ", insecure_tls: true" if scheme == "https" else ""
    with open(path, "w") as f:
        f.write(f"""version: 1
name: bench
target: {scheme}://127.0.0.1:{PORTS[mode]}
load:
  stages:
    - {{ duration: 10ms, vus: {vus} }}
    - {{ duration: {duration}s, vus: {vus} }}
scenario: {scenario}
options: {{ graceful_stop: 5s, http: {http}{tls} }}
""")
    return path


def generators(mode, tmp, d, oha, compare):
    """The commands measured in `mode`, herd first."""
    scheme = "http" if mode in ("http1", "h2c") else "https"
    url = f"{scheme}://127.0.0.1:{PORTS[mode]}/"
    gens = {"herd": [AGENT, herd_plan(tmp, 64, d, "[{get: /}]", mode)]}
    if mode in ("http1", "https", "handshake"):
        gens["wrk"] = ["wrk", "-t1", "-c64", f"-d{d}s", url]
    if mode == "http1" and oha:
        gens["oha"] = [oha, "-z", f"{d}s", "-c", "64", "--no-tui", url]
    if mode in ("h2", "h2c"):
        gens["h2load"] = ["h2load", "-t1", "-c64", "-m1", "-D", str(d), url]
    for spec in compare:
        name, _, path = spec.partition("=")
        gens[name] = [path, herd_plan(tmp, 64, d, "[{get: /}]", mode)]
    return gens


def run_mode(mode, gens, rounds):
    """Paired alternating rounds; prints per round, the medians and herd's ratios."""
    unit = "handshakes" if mode == "handshake" else "req"
    print(f"== {mode}", flush=True)
    per = {g: [] for g in gens}
    names = list(gens)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        line = []
        for g in order:
            n, cpu, _, _ = measure(gens[g])
            per[g].append(n / cpu)
            line.append(f"{g} {n / cpu:,.0f} {unit}/CPU-s ({n} req, {cpu:.2f} CPU-s)")
        print(f"round {r + 1}: " + "; ".join(line), flush=True)
    for g in names:
        print(f"{mode} median {g}: {statistics.median(per[g]):,.0f} {unit} per generator CPU-second")
    for other in names[1:]:
        ratios = [h / o for h, o in zip(per["herd"], per[other])]
        print(f"{mode} herd / {other}: median {statistics.median(ratios):.2f} "
              f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    print(flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-oha", action="store_true")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PATH")
    args = ap.parse_args()
    oha = ensure_tools(args.skip_oha)
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in PORTS]
    if unknown:
        sys.exit(f"--modes: unknown {', '.join(unknown)} (known: {', '.join(MODES)})")
    tmp = tempfile.mkdtemp(prefix="herd-bench-")
    target = start_nginx(tmp)
    try:
        for mode in modes:
            run_mode(mode, generators(mode, tmp, args.duration, oha, args.compare), args.rounds)
        if not args.skip_memory:
            think = "[{think: 1h}, {get: /}]"
            _, _, base, _ = measure([AGENT, herd_plan(tmp, 1, 5, think)])
            _, _, peak, _ = measure([AGENT, herd_plan(tmp, 100_000, 5, think)])
            print(f"idle VUs: RSS {base / 1024:.1f} MiB with 1 VU, {peak / 1024:.1f} MiB with "
                  f"100,000: {(peak - base) * 1024 / 100_000:,.0f} bytes per idle VU")
    finally:
        target.terminate()
        target.wait()


if __name__ == "__main__":
    main()
