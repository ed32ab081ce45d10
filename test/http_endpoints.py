#!/usr/bin/python3
"""Hostile and friendly HTTP health endpoints for central_hub's tests.

Listens on 127.0.0.1 only, on the ports given, and answers by path:

  /ok           200 {"status":"ok"}            (keep-alive)
  /plain        200 "OK" (text)                (keep-alive)
  /degraded     200 {"status":"degraded"}
  /unhealthy    200 {"status":"unhealthy"}
  /429          429
  /500          500
  /close        reads the request, closes without a word
  /hang         reads the request, never answers
  /drip         200 with Content-Length 100, then one byte a second
  /endless      200 without length, an endless body
  /big          200 with Content-Length 1000000
  /redirect     302 to itself, forever
  /garbage      a line that is not HTTP, then closes
  /deep         200 with 100000 nested '[' (a JSON parser's stack test)
  /switch/NAME  answers with the code last set by /_set/NAME/CODE (200 at
                first; CODE 'hang' hangs)
  /_set/NAME/CODE   sets a switch
  /_stats       JSON: accepted connections per port, requests per path

Everything is bounded: a connection lives at most --max-conn-seconds, the
process at most --lifetime seconds.  Python 3 standard library only.
"""
import argparse
import asyncio
import json
import os
import sys
import time

MAX_REQUEST = 8192

accepts = {}
requests = {}
switches = {}


def response(code, body=b"", ctype="application/json", extra=""):
    reason = {200: "OK", 302: "Found", 429: "Too Many Requests",
              500: "Internal Server Error", 404: "Not Found"}.get(code, "X")
    head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
            % (code, reason, ctype, len(body), extra))
    return head.encode() + body


async def read_request(reader):
    """Read one request head; returns the path or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(1024)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_REQUEST:
            return None
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return parts[1] if len(parts) >= 2 else "/"


async def serve(reader, writer, port, max_conn_seconds):
    accepts[port] = accepts.get(port, 0) + 1
    deadline = time.monotonic() + max_conn_seconds
    try:
        while time.monotonic() < deadline:
            path = await read_request(reader)
            if path is None:
                return
            key = path.split("?")[0]
            if key.startswith("/switch/"):
                name = key[len("/switch/"):]
                key = "/switch"
                mode = switches.get(name, "200")
            else:
                mode = None
            requests[key] = requests.get(key, 0) + 1

            if mode is not None:
                if mode == "hang":
                    await asyncio.sleep(max(0, deadline - time.monotonic()))
                    return
                writer.write(response(int(mode), b'{"status":"switch"}'))
            elif key == "/ok":
                writer.write(response(200, b'{"status":"ok"}'))
            elif key == "/plain":
                writer.write(response(200, b"OK", "text/plain"))
            elif key == "/degraded":
                writer.write(response(200, b'{"status":"degraded","checks":{"db":"slow"}}'))
            elif key == "/unhealthy":
                writer.write(response(200, b'{"status":"unhealthy"}'))
            elif key == "/429":
                writer.write(response(429, b'{"error":"slow down"}'))
            elif key == "/500":
                writer.write(response(500, b'{"error":"boom"}'))
            elif key == "/close":
                return
            elif key == "/hang":
                await asyncio.sleep(max(0, deadline - time.monotonic()))
                return
            elif key == "/drip":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    if time.monotonic() > deadline:
                        return
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(1)
                return
            elif key == "/endless":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\n\r\n{\"status\":\"ok\",\"pad\":\"")
                chunk = b"x" * 65536
                while time.monotonic() < deadline:
                    writer.write(chunk)
                    await writer.drain()
                return
            elif key == "/big":
                writer.write(response(200, b" " * 1000000))
            elif key == "/redirect":
                writer.write(response(302, b"", extra="Location: %s\r\n" % path))
            elif key == "/garbage":
                writer.write(b"\x00\xffSSH-2.0-OpenSSH garbage \x07\x1b[31m\r\n\r\n")
                await writer.drain()
                return
            elif key == "/deep":
                writer.write(response(200, b"[" * 15000))
            elif key.startswith("/_set/"):
                _, _, name, code = key.split("/", 3)
                switches[name] = code
                writer.write(response(200, b"{}"))
            elif key == "/_stats":
                body = json.dumps({"accepts": {str(k): v for k, v in accepts.items()},
                                   "requests": requests}).encode()
                writer.write(response(200, body))
            else:
                writer.write(response(404, b'{"error":"no such endpoint"}'))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated ports")
    ap.add_argument("--ready", help="file written once listening")
    ap.add_argument("--lifetime", type=float, default=600)
    ap.add_argument("--max-conn-seconds", type=float, default=60)
    args = ap.parse_args()

    servers = []
    for p in args.ports.split(","):
        port = int(p)
        srv = await asyncio.start_server(
            lambda r, w, port=port: serve(r, w, port, args.max_conn_seconds),
            "127.0.0.1", port, backlog=4096, reuse_address=True)
        servers.append(srv)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready + ".tmp", args.ready)
    await asyncio.sleep(args.lifetime)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
