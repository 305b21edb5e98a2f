"""The counting target the benches share: Debian's nginx, one worker, answering a small static
body on keep-alive, and counting requests itself (stub_status), so a bench checks herd's count
against the target's own.

start(tmp, port, servers=..., pin_core=...) runs it in the foreground under `tmp` with the
status server on `port` (plus any extra `server { … }` blocks); requests(port) reads its count.
"""
import re
import subprocess
import sys
import time
import urllib.request

BODY = 'return 200 "hello, herd\\n";'


def start(tmp, port, servers="", pin_core=None):
    conf = f"{tmp}/nginx.conf"
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {tmp};
  proxy_temp_path {tmp};
  fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp};
  scgi_temp_path {tmp};
  server {{
    listen 127.0.0.1:{port};
    location = /status {{ stub_status; }}
    location / {{ {BODY} }}
  }}
{servers}
}}
""")
    pin = [] if pin_core is None else ["taskset", "-c", str(pin_core)]
    proc = subprocess.Popen([*pin, "nginx", "-c", conf, "-p", tmp])
    for _ in range(100):
        try:
            requests(port)
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start")


def requests(port):
    """Requests nginx has answered so far (the status request reading it included)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
        text = r.read().decode()
    # "server accepts handled requests\n A B C"
    return int(re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", text).group(3))
