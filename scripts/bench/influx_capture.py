#!/usr/bin/env python3
"""A stand-in InfluxDB 1.x write endpoint that keeps what it is sent.

scripts/bench/influxdb.sh points the InfluxDB sink at it once to get the exact
line protocol the sink writes (the reference loader then posts the same lines
to the real server):

    influx_capture.py PORT OUT_FILE

Every `POST /write` body is decompressed (`Content-Encoding: gzip`) and appended
to OUT_FILE (requests are serialised, so lines of one request stay together);
the answer is 204 as InfluxDB gives. `GET /ping` answers 204 too. Stops on
SIGTERM/SIGINT after printing "lines=N requests=M" to stderr.
"""

import gzip
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture:
    def __init__(self, path):
        self.out = open(path, "wb")
        self.lock = threading.Lock()
        self.lines = 0
        self.requests = 0

    def add(self, body):
        with self.lock:
            self.out.write(body)
            self.lines += body.count(b"\n")
            self.requests += 1


def handler_for(capture):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.send_header("X-Influxdb-Version", "capture")
            self.end_headers()

        def do_GET(self):
            self.answer(204 if self.path.startswith("/ping") else 404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if not self.path.startswith("/write"):
                self.answer(404)
                return
            if self.headers.get("Content-Encoding", "") == "gzip":
                body = gzip.decompress(body)
            capture.add(body)
            self.answer(204)

    return Handler


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: influx_capture.py PORT OUT_FILE")
    capture = Capture(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler_for(capture))
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    capture.out.close()
    print(f"lines={capture.lines} requests={capture.requests}", file=sys.stderr)


if __name__ == "__main__":
    main()
