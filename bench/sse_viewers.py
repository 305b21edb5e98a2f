#!/usr/bin/env python3
"""Does watching a run slow its live data down? 100 concurrent SSE viewers of one run vs none.

Measures the coordinator's frame-to-live lag: for each second of a run, the time from the
second's end (`second_end_ms`, in the live message) to the moment a subscriber of the MQTT topic
`herd/runs/{run}/live` receives it. Runs alternate, in paired rounds (this machine drifts), between
no viewer and 100 viewers each following `GET /api/v1/runs/{id}/live` (Server-Sent Events, with the
replay of the stored seconds on connect). The goal: the p99 lag with viewers within 10 % of the
p99 without. Also prints the viewers' own lag (second's end to SSE event read), for information.

One `herd up` (embedded broker and store, local agents) serves every run; the target is a small
keep-alive HTTP server in this script. Seconds 0 and the last (partial) are left out.

Usage: bench/sse_viewers.py [--rounds 3] [--duration 20] [--viewers 100] [--agents 2] [--vus 8]
Binary: $HERD_BIN, else target/release/herd, else target/debug/herd.
"""
import argparse
import http.server
import json
import os
import re
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def herd_bin():
    for b in (os.environ.get("HERD_BIN"), os.path.join(ROOT, "target/release/herd"), os.path.join(ROOT, "target/debug/herd")):
        if b and os.path.exists(b):
            return b
    sys.exit("no herd binary: cargo build -p herd (or set HERD_BIN)")


class Target(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def mqtt_subscribe(host, port, topic, on_message, stop):
    """A minimal MQTT 3.1.1 subscriber (QoS 0): CONNECT, SUBSCRIBE, then PUBLISH payloads."""
    s = socket.create_connection((host, port))
    s.settimeout(1.0)

    def packet(kind, body):
        n, rem = len(body), b""
        while True:
            d, n = n % 128, n // 128
            rem += bytes([d | (0x80 if n else 0)])
            if not n:
                break
        return bytes([kind]) + rem + body

    cid = f"bench-{os.getpid()}".encode()
    s.sendall(packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack(">H", len(cid)) + cid))
    t = topic.encode()
    s.sendall(packet(0x82, b"\x00\x01" + struct.pack(">H", len(t)) + t + b"\x00"))
    buf = b""
    last_ping = time.time()
    while not stop.is_set():
        if time.time() - last_ping > 20:
            s.sendall(b"\xc0\x00")
            last_ping = time.time()
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 2:
            mult, length, i = 1, 0, 1
            while True:
                if i >= len(buf):
                    break
                b = buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            else:
                break
            if len(buf) < i + length:
                break
            kind, body, buf = buf[0], buf[i:i + length], buf[i + length:]
            if kind >> 4 == 3:
                tl = struct.unpack(">H", body[:2])[0]
                off = 2 + tl + (2 if (kind >> 1) & 3 else 0)
                on_message(body[off:])


def api(base, token, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def viewer(host, port, token, run, lags, stop):
    s = socket.create_connection((host, port))
    s.settimeout(1.0)
    s.sendall(f"GET /api/v1/runs/{run}/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
    buf = b""
    while not stop.is_set():
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"data: {"):
                m = json.loads(line[6:])
                if "second" in m and not m.get("replayed") and m.get("second_end_ms"):
                    lags.append(time.time() * 1000 - m["second_end_ms"])
            elif line.startswith(b"event: end"):
                stop_local = True  # the run ended
    s.close()


def p(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def one_run(base, host, port, token, target_url, args, viewers):
    plan = {"version": 1, "name": f"sse-bench-{viewers}", "target": target_url, "agents": args.agents,
            "load": {"stages": [{"duration": f"{args.duration}s", "vus": args.vus}]},
            "scenario": [{"get": "/"}, {"think": "20ms"}]}
    live = {}
    stop = threading.Event()

    def on_live(payload):
        m = json.loads(payload)
        if m.get("second_end_ms"):
            live.setdefault(m["run"], []).append((m["second"]["t"], time.time() * 1000 - m["second_end_ms"]))

    sub = threading.Thread(target=mqtt_subscribe, args=(host, broker_port[0], "herd/runs/+/live", on_live, stop), daemon=True)
    sub.start()
    time.sleep(0.5)
    started = api(base, token, "POST", "/api/v1/runs", {"plan": plan})
    run = started["id"]
    viewer_lags, threads = [], []
    for _ in range(viewers):
        th = threading.Thread(target=viewer, args=(host, port, token, run, viewer_lags, stop), daemon=True)
        th.start()
        threads.append(th)
    while api(base, token, "GET", f"/api/v1/runs/{run}")["state"] not in ("completed", "degraded", "failed", "cancelled"):
        time.sleep(0.5)
    time.sleep(0.5)
    stop.set()
    seconds = sorted(live.get(run, []))
    lags = [lag for t, lag in seconds[1:-1]]
    return lags, viewer_lags


broker_port = [None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--viewers", type=int, default=100)
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--vus", type=int, default=8)
    args = ap.parse_args()
    binary = herd_bin()
    srv = ThreadingServer(("127.0.0.1", 0), Target)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    target_url = f"http://127.0.0.1:{srv.server_address[1]}"
    data = tempfile.mkdtemp(prefix="herd-sse-bench-")
    token = subprocess.run([binary, "token", "create", "--role", "operator", "--data-dir", data], capture_output=True, text=True, check=True).stdout.strip()
    up = subprocess.Popen([binary, "-v", "up", "--listen", "127.0.0.1:0", "--data-dir", data], stderr=subprocess.PIPE, text=True)
    base = None
    log = []
    deadline = time.time() + 60
    while time.time() < deadline and (base is None or broker_port[0] is None):
        line = up.stderr.readline()
        log.append(line)
        m = re.search(r"API on (http://[^\s/]+)", line)
        if m:
            base = m.group(1)
        m = re.search(r"mqtt://127\.0\.0\.1:(\d+)", line)
        if m:
            broker_port[0] = int(m.group(1))
    if base is None or broker_port[0] is None:
        up.kill()
        sys.exit("herd up did not announce its API and broker:\n" + "".join(log))
    threading.Thread(target=lambda: [None for _ in up.stderr], daemon=True).start()
    host, port = base.replace("http://", "").rsplit(":", 1)
    port = int(port)
    print(f"herd {binary}; {args.agents} agents, {args.vus} VUs, {args.duration} s per run; {args.viewers} viewers vs none; {args.rounds} paired rounds", flush=True)
    results = {0: [], args.viewers: []}
    viewer_all = []
    try:
        for r in range(args.rounds):
            order = [0, args.viewers] if r % 2 == 0 else [args.viewers, 0]
            for n in order:
                lags, vl = one_run(base, host, port, token, target_url, args, n)
                results[n].append(lags)
                viewer_all += vl
                print(f"round {r + 1} viewers {n:>3}: {len(lags)} seconds, live lag p50 {p(lags, .5):.0f} ms, p99 {p(lags, .99):.0f} ms, max {max(lags, default=float('nan')):.0f} ms"
                      + (f"; viewers' SSE lag p50 {p(vl, .5):.0f} ms p99 {p(vl, .99):.0f} ms ({len(vl)} events)" if n else ""), flush=True)
    finally:
        up.terminate()
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
    none = [x for run in results[0] for x in run]
    many = [x for run in results[args.viewers] for x in run]
    ratios = [p(b, .99) / p(a, .99) for a, b in zip(results[0], results[args.viewers]) if a and b]
    print(f"frame-to-live lag p99: none {p(none, .99):.0f} ms, {args.viewers} viewers {p(many, .99):.0f} ms "
          f"(p50 {p(none, .5):.0f} vs {p(many, .5):.0f} ms); median per-round p99 ratio {statistics.median(ratios):.3f} (goal <= 1.10)")
    print(f"viewers' own lag (second end to SSE event read): p50 {p(viewer_all, .5):.0f} ms, p99 {p(viewer_all, .99):.0f} ms over {len(viewer_all)} events")


if __name__ == "__main__":
    main()
