#!/usr/bin/env python3
"""python-http: clusterrun's Python example, a tiny HTTP server meant to run as
N instances that share one listening socket. Standard library only.

Under clusterrun it serves the socket the runner bound, passed as fd 3 (systemd
socket activation: LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), and tells the
runner it is ready with sd_notify READY=1. Run by hand it listens on $PORT
(default 8080). examples/go-http and examples/node-http behave exactly the
same; the end-to-end tests and the reload benchmark rely on it:

    GET /            200 {"lang":"python","app":"web","instance":2,"pid":1234}
    GET /slow?ms=N   the same after N ms (0..60000), to test graceful stops
    GET /healthz     200 ok

Test knobs read at start: BOOT_DELAY_MS=N sleeps N ms before serving and before
READY=1; BOOT_CRASH=1 exits 1 at once.

On SIGTERM or SIGINT it stops accepting, lets in-flight requests finish (for at
most 10s) and exits 0.
"""

import http.server
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

DRAIN_TIMEOUT = 10.0  # seconds to wait for in-flight requests on stop
MAX_SLOW_MS = 60000  # largest wait /slow accepts
TEXT = "text/plain; charset=utf-8"


def parse_uint(s, limit):
    """Accept 1 to 10 ASCII digits and a value up to limit, else None (the same
    rule as the Go and Node examples)."""
    if s is None or not re.fullmatch(r"[0-9]{1,10}", s):
        return None
    n = int(s)
    return n if n <= limit else None


def sd_notify(message):
    """Send one sd_notify datagram to $NOTIFY_SOCKET; do nothing without it."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):  # abstract socket namespace
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        s.sendall(message.encode())


def listening_socket():
    """Return the socket the runner passed as fd 3 or, when there is none, a
    socket bound to $PORT, and say which one it is for the log."""
    # sd_listen_fds' rule: LISTEN_FDS counts only if LISTEN_PID is our pid,
    # so variables meant for some parent process are never taken by mistake.
    if os.environ.get("LISTEN_FDS") and os.environ.get("LISTEN_PID") == str(os.getpid()):
        name = os.environ.get("LISTEN_FDNAMES", "").split(":")[0] or "unknown"
        for var in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"):
            del os.environ[var]
        os.set_inheritable(3, False)
        sock = socket.socket(fileno=3)  # family and type are read from the fd
        # A shared or reuseport socket comes listening; a listener in proxy
        # mode passes the instance's private socket bound but not yet
        # listening. listen() only when needed: on a shared socket it would
        # replace the backlog the runner chose for every instance.
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen()
        return sock, f"fd 3 ({name})"
    port = os.environ.get("PORT") or "8080"
    return socket.create_server(("", int(port))), f"port {port}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply sets Content-Length
    server_version = "python-http"

    def version_string(self):
        return self.server_version  # the Server header; no Python version

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/":
            self.reply(200, "application/json", self.server.body)
        elif path == "/healthz":
            self.reply(200, TEXT, b"ok\n")
        elif path == "/slow":
            ms = parse_uint(parse_qs(urlsplit(self.path).query).get("ms", [None])[0], MAX_SLOW_MS)
            if ms is None:
                self.reply(400, TEXT, b"ms must be an integer from 0 to 60000\n")
                return
            time.sleep(ms / 1000)
            self.reply(200, "application/json", self.server.body)
        else:
            self.reply(404, TEXT, b"404 page not found\n")

    do_HEAD = do_GET  # reply() leaves the body out

    def not_allowed(self):
        if urlsplit(self.path).path not in ("/", "/slow", "/healthz"):
            self.do_GET()  # 404
            return
        self.reply(405, TEXT, b"Method Not Allowed\n", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = not_allowed

    def reply(self, status, content_type, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.command not in ("GET", "HEAD"):
            # The request body, if any, was not read: it cannot be followed
            # by another request on this connection.
            self.close_connection = True
        if self.server.draining:
            # Stopping: close each connection after its reply, so keep-alive
            # clients do not hold the process open.
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # Connection bookkeeping for a prompt, complete drain (see Server.drain).

    def setup(self):
        super().setup()
        self.server.track(self, FRESH)

    def parse_request(self):
        # Called as soon as a request line has arrived: busy until replied.
        self.server.track(self, BUSY)
        return super().parse_request()

    def handle_one_request(self):
        super().handle_one_request()
        if not self.server.track(self, IDLE):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self)

    def log_message(self, format, *args):
        pass  # no access log: the benchmark would be measuring it


# A connection is FRESH from accept until its first request line arrives,
# BUSY until its reply is sent, then IDLE while it waits for the next one.
FRESH, BUSY, IDLE = "fresh", "busy", "idle"

# IDLE_GRACE is how long a stop leaves FRESH and IDLE connections open for
# their next request, which is answered with Connection: close. Closing them
# at once would race the client: on a socket shared by several instances a
# connection can be accepted right up to the stop, and a keep-alive client
# may be sending its next request just as the server gives up on it.
IDLE_GRACE = 1.0


class Server(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer on an already-listening socket that, on stop,
    closes idle keep-alive connections and waits for busy ones."""

    daemon_threads = False  # a handler thread is never cut off at exit
    block_on_close = True

    def __init__(self, sock, body):
        # bind_and_activate=False: the socket is already bound and listening;
        # the one the constructor made is swapped out unused.
        super().__init__(sock.getsockname(), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        # With one socket shared by several processes, another instance may
        # win the race for a connection after select() said "readable"; a
        # blocking accept() would then hang until the next connection, and
        # with it shutdown(). Non-blocking, the lost race is just skipped.
        self.socket.setblocking(False)
        self.body = body
        self.draining = False
        self.lock = threading.Condition()
        self.conns = {}  # handler -> FRESH, BUSY or IDLE

    def track(self, handler, state):
        """Record a connection's state; return False once draining and idle,
        meaning the connection should close now."""
        with self.lock:
            self.conns[handler] = state
            if state == IDLE and self.draining:
                self._shut_read(handler)
                return False
            return True

    def untrack(self, handler):
        with self.lock:
            self.conns.pop(handler, None)
            self.lock.notify_all()

    def drain(self, timeout):
        """Close idle connections, let busy ones finish their request, and
        return True once all have ended, False if timeout passed first."""
        start = time.monotonic()
        deadline = start + timeout
        with self.lock:
            self.draining = True
            while self.conns:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if now >= start + IDLE_GRACE:
                    for handler, state in self.conns.items():
                        if state != BUSY:  # sent nothing through the grace
                            self._shut_read(handler)
                self.lock.wait(min(deadline - now, 0.05))
        return True

    @staticmethod
    def _shut_read(handler):
        # Wakes the handler thread blocked reading the next request with an
        # end of file; a reply being written is not affected.
        try:
            handler.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # a client hanging up is not news


def main():
    if os.environ.get("BOOT_CRASH") == "1":
        print("crashing on boot (BOOT_CRASH=1)", file=sys.stderr)
        return 1

    instance = parse_uint(os.environ.get("CLUSTERRUN_INSTANCE"), 2**30)
    if instance is None:
        instance = -1  # not started by clusterrun
    who = f"python-http instance {instance} pid {os.getpid()}"

    boot_delay = 0
    if os.environ.get("BOOT_DELAY_MS"):
        boot_delay = parse_uint(os.environ["BOOT_DELAY_MS"], 2**30)
        if boot_delay is None:
            print(f"{who}: BOOT_DELAY_MS must be a number of milliseconds, "
                  f"not {os.environ['BOOT_DELAY_MS']!r}", file=sys.stderr)
            return 1

    try:
        sock, where = listening_socket()
    except (OSError, ValueError) as e:
        print(f"{who}: cannot listen: {e}", file=sys.stderr)
        return 1

    # The answer never changes, so encode it once.
    body = json.dumps(
        {"lang": "python", "app": os.environ.get("CLUSTERRUN_APP", ""),
         "instance": instance, "pid": os.getpid()},
        separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    server = Server(sock, body)

    # Signal handlers run in the main thread, which is the one inside
    # serve_forever(); shutdown() waits for serve_forever() to return, so it
    # must be called from another thread.
    stopped_by = []

    def on_signal(signum, frame):
        if not stopped_by:
            stopped_by.append(signal.Signals(signum).name)
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    deadline = time.monotonic() + boot_delay / 1000
    while not stopped_by and time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    if stopped_by:
        print(f"{who} got {stopped_by[0]} while booting, exiting", flush=True)
        return 0

    print(f"{who} listening on {where}", flush=True)
    try:
        sd_notify("READY=1")
    except OSError as e:
        print(f"{who}: cannot notify READY=1: {e}", file=sys.stderr, flush=True)

    server.serve_forever(poll_interval=0.25)  # returns after shutdown()
    print(f"{who} got {stopped_by[0]}, draining", flush=True)
    server.socket.close()  # our copy only: the runner and the other instances keep theirs
    if not server.drain(DRAIN_TIMEOUT):
        print(f"{who}: in-flight requests did not finish within {DRAIN_TIMEOUT:g}s",
              file=sys.stderr, flush=True)
        os._exit(1)  # sys.exit would wait for the handler threads
    server.server_close()  # joins the (finished) handler threads
    return 0


if __name__ == "__main__":
    sys.exit(main())
