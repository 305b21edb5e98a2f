"""An OTLP/HTTP metrics receiver for herd's end-to-end tests.

It decodes each POST to /v1/metrics with the OpenTelemetry project's own protobuf classes
(PyPI `opentelemetry-proto`, installed by scripts/test into target/otlp-venv), an independent
decoder of what herd encodes by hand, and adds up what it received. GET /totals answers JSON:
histogram points, their counts and bucket sums by step, the scales and temporalities seen, and
the request counters by step and status. It prints the port it listens on, then serves until
killed.
"""
import json
import sys
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

totals = {
    "requests": 0,
    "histogram_points": 0,
    "count_by_step": defaultdict(int),
    "bucket_sum_by_step": defaultdict(int),
    "requests_by_status": defaultdict(int),
    "scales": set(),
    "temporalities": set(),
    "attribute_keys": set(),
    "resource": {},
    "bad": [],
}


def attrs(kvs):
    return {kv.key: kv.value.string_value for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/metrics" or self.headers.get("Content-Type") != "application/x-protobuf":
            totals["bad"].append(f"{self.path} {self.headers.get('Content-Type')}")
            self.send_response(400)
            self.end_headers()
            return
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        totals["requests"] += 1
        for rm in request.resource_metrics:
            totals["resource"] = attrs(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind == "exponential_histogram":
                        totals["temporalities"].add(m.exponential_histogram.aggregation_temporality)
                        for dp in m.exponential_histogram.data_points:
                            a = attrs(dp.attributes)
                            totals["attribute_keys"].update(a.keys())
                            totals["histogram_points"] += 1
                            totals["scales"].add(dp.scale)
                            totals["count_by_step"][a["step"]] += dp.count
                            totals["bucket_sum_by_step"][a["step"]] += (
                                sum(dp.positive.bucket_counts) + dp.zero_count
                            )
                            if dp.time_unix_nano - dp.start_time_unix_nano != 1_000_000_000:
                                totals["bad"].append("a point is not one second long")
                    elif kind == "sum":
                        totals["temporalities"].add(m.sum.aggregation_temporality)
                        for dp in m.sum.data_points:
                            a = attrs(dp.attributes)
                            totals["requests_by_status"][f'{a["step"]} {a["status"]}'] += dp.as_int
                    else:
                        totals["bad"].append(f"unexpected metric {m.name}: {kind}")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        body = json.dumps(totals, default=lambda v: sorted(v) if isinstance(v, set) else dict(v))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
