#!/usr/bin/env python3
"""pymetrics: a small non-Go HTTP service judged through Prometheus metrics.

It has no pprof and no expvar: only /metrics in the Prometheus text
exposition format, written by prometheus_client. Its default collectors give
process_open_fds and process_resident_memory_bytes (from /proc/self); the
service adds the gauge app_tracked_sessions and, to give label matchers
something to match, app_session_bytes{kind="notes"} (512 bytes of notes per
tracked session) and app_session_bytes{kind="header"} (a nominal 64 bytes
per tracked session).

GET /visit has a planted leak, the Python shape of LEAKS.md mechanism 1 and
of a socket never closed: each request appends a session record to a global
list that nothing trims (app_tracked_sessions is its length) and opens a
UDP socket that stays open with it. With --fixed the record is dropped and
the socket closed when the request ends.

Loopback only: the server binds 127.0.0.1. SIGTERM stops it cleanly.
"""

import argparse
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client

TRACKED = prometheus_client.Gauge(
    "app_tracked_sessions", "Session records held by the session tracker."
)
SESSION_BYTES = prometheus_client.Gauge(
    "app_session_bytes", "Bytes held by tracked sessions, by kind.", ["kind"]
)
VISITS = prometheus_client.Counter("app_visits", "Requests served on /visit.")

NOTES_BYTES = 512
HEADER_BYTES = 64


class Tracker:
    """Keeps a record of each session; with leak=True it never forgets one."""

    def __init__(self, leak):
        self.leak = leak
        self.lock = threading.Lock()
        self.sessions = []
        TRACKED.set_function(self.count)
        SESSION_BYTES.labels(kind="notes").set_function(lambda: NOTES_BYTES * self.count())
        SESSION_BYTES.labels(kind="header").set_function(lambda: HEADER_BYTES * self.count())

    def count(self):
        with self.lock:
            return len(self.sessions)

    def begin(self, peer):
        record = {
            "peer": peer,
            "at": time.time(),
            "sock": socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            "notes": bytearray(NOTES_BYTES),
        }
        with self.lock:
            self.sessions.append(record)
        return record

    def end(self, record):
        if self.leak:
            return  # the release was "left for the cleanup job"
        with self.lock:
            self.sessions.remove(record)
        record["sock"].close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tracker = None  # set in main

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = prometheus_client.generate_latest()
            self.reply(200, prometheus_client.CONTENT_TYPE_LATEST, body)
        elif path == "/visit":
            record = self.tracker.begin(self.client_address[0])
            VISITS.inc()
            try:
                self.reply(200, "text/plain", b"visit recorded\n")
            finally:
                self.tracker.end(record)
        elif path == "/healthz":
            self.reply(200, "text/plain", b"ok\n")
        else:
            self.reply(404, "text/plain", b"not found\n")

    def reply(self, code, content_type, body):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per request would only fill the log


class Server(ThreadingHTTPServer):
    # socketserver's default listen backlog of 5 drops connection attempts
    # under a burst of sessions (the client retries after a second).
    request_queue_size = 1024
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixed", action="store_true", help="release each session")
    args = parser.parse_args()

    Handler.tracker = Tracker(leak=not args.fixed)
    server = Server(("127.0.0.1", args.port), Handler)

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mode = "fixed" if args.fixed else "leaky"
    # The socket listens from here on: this line tells a watcher it is ready.
    print(f"pymetrics ({mode}) on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
