"""An HTTP server that knows nothing of clusterrun: it binds $PORT itself,
as Flask, Django, Rails or `python3 -m http.server` do.

GET / answers JSON with the instance and pid; GET /healthz answers 500
while a file "sick-<pid>" exists in the working directory. BOOT_DELAY_MS
delays the bind (a slow release); NOTIFY_READY=1 writes READY=1 to
CLUSTERRUN_READY_FD once the port is bound. On SIGTERM it stops accepting, finishes
the requests under way, and exits 0.
"""
import http.server
import json
import os
import signal
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            sick = os.path.exists("sick-%d" % os.getpid())
            self.send_response(500 if sick else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (json.dumps({"lang": "python-port", "app": os.environ.get("CLUSTERRUN_APP", ""),
                            "instance": int(os.environ.get("CLUSTERRUN_INSTANCE", "-1")),
                            "pid": os.getpid()}) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    # Python runs signal handlers on the main thread only, and only when it
    # runs Python code: a SIGTERM that the kernel hands to another thread
    # (one starting a handler thread, under load) never wakes a main thread
    # parked in an untimed wait, and the process would hang until SIGKILL
    # (python/cpython#85300). So the main thread never parks: it sleeps in
    # short steps while booting and then runs serve_forever(), which wakes
    # every poll_interval.
    stopping = threading.Event()
    server = None

    def on_term(*_):
        stopping.set()
        if server is not None:
            # shutdown() waits for serve_forever() to return, and this
            # handler runs inside it, on the main thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    delay = int(os.environ.get("BOOT_DELAY_MS", "0"))
    deadline = time.monotonic() + delay / 1000
    while not stopping.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    if stopping.is_set():
        sys.exit(0)
    port = int(os.environ["PORT"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = False  # server_close waits for requests under way
    if stopping.is_set():  # the signal came while the server was being made
        server.server_close()
        sys.exit(0)
    print("listening on port %d" % port, flush=True)
    if os.environ.get("NOTIFY_READY") == "1":
        # READY=1 on the runner's ready pipe, once the port is bound.
        os.write(int(os.environ["CLUSTERRUN_READY_FD"]), b"READY=1\n")
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    print("stopped", flush=True)
    sys.exit(0)


main()
