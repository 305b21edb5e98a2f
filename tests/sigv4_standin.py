"""IoT Core's WebSocket door, for the end-to-end tests: checks each connection's SigV4-presigned
URL with an implementation independent of herd's (botocore's SigV4QueryAuth, same timestamp and
credentials), then forwards the connection to Mosquitto's websocket listener, or answers 403.

Usage: python sigv4_standin.py UPSTREAM_PORT ACCESS_KEY_ID SECRET REGION [CLOCK_OFFSET_S]
Prints "PORT <n>" once listening on 127.0.0.1; then one line per connection:
"ACCEPTED <access key>" or "REFUSED <reason>". CLOCK_OFFSET_S moves this stand-in's clock (a
positive offset makes fresh URLs look expired). Needs botocore (the moto venv has it).
"""

import asyncio
import datetime
import sys
import urllib.parse

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UPSTREAM_PORT = int(sys.argv[1])
ACCESS_KEY, SECRET, REGION = sys.argv[2], sys.argv[3], sys.argv[4]
CLOCK_OFFSET = int(sys.argv[5]) if len(sys.argv) > 5 else 0


def check(path, host):
    """None when the URL is signed right and in date, else why not."""
    url = urllib.parse.urlsplit(path)
    params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                 "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if name not in params:
            return f"missing {name}"
    key, date, region, service, _ = params["X-Amz-Credential"].split("/")
    if key != ACCESS_KEY:
        return f"unknown access key {key}"
    if (region, service) != (REGION, "iotdevicegateway"):
        return f"signed for {region}/{service}"
    signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=CLOCK_OFFSET)
    if now > signed_at + datetime.timedelta(seconds=int(params["X-Amz-Expires"])):
        return "expired"
    if abs((now - signed_at).total_seconds()) > 900:
        return "signed too far in the future"
    # botocore signs the same request: the security token, if any, is appended after signing
    # (IoT Core's rule), so it is left out of what botocore signs.
    request = AWSRequest(method="GET", url=f"https://{host}{url.path}")
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "iotdevicegateway", REGION,
                          expires=int(params["X-Amz-Expires"]))
    auth._modify_request_before_signing(request)
    expected_query = urllib.parse.urlsplit(request.url).query
    sent_query = url.query.split("&X-Amz-Signature=")[0]
    if expected_query != sent_query:
        return f"query differs: sent {sent_query!r}, botocore {expected_query!r}"
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    if signature != params["X-Amz-Signature"]:
        return "signature does not match"
    return None


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:] if ":" in line)}
    why = check(path, headers.get("host", "")) if method == "GET" else "not a GET"
    if why is not None:
        print(f"REFUSED {why}", flush=True)
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    print(f"ACCEPTED {ACCESS_KEY}", flush=True)
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM_PORT)
    rest = "\r\n".join(lines[1:])
    up_writer.write(f"{method} {urllib.parse.urlsplit(path).path} {version}\r\n{rest}".encode("latin-1"))
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
