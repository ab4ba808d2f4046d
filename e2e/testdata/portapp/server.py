"""An HTTP server that knows nothing of clusterrun: it binds $PORT itself,
as Flask, Django, Rails or `python3 -m http.server` do.

GET / answers JSON with the instance and pid; GET /healthz answers 500
while a file "sick-<pid>" exists in the working directory. BOOT_DELAY_MS
delays the bind (a slow release). On SIGTERM it stops accepting, finishes
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
    delay = int(os.environ.get("BOOT_DELAY_MS", "0"))
    if delay:
        time.sleep(delay / 1000)
    port = int(os.environ["PORT"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = False  # server_close waits for requests under way
    print("listening on port %d" % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    stop.wait()
    server.shutdown()
    server.server_close()
    print("stopped", flush=True)
    sys.exit(0)


main()
