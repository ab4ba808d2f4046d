"""An HTTP server that serves one request at a time with Python's default
listen backlog of 5, as `python3 -m http.server` and many development
servers do: it binds $PORT itself and takes WORK_MS (default 20) per
request. Behind a proxy that sent it more connections than its backlog
holds, the kernel would drop their SYNs. GET / answers JSON with the
instance and pid. On SIGTERM it stops after the request under way.
"""
import http.server
import json
import os
import signal
import sys
import threading
import time

WORK = int(os.environ.get("WORK_MS", "20")) / 1000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(WORK)
        body = (json.dumps({"lang": "python-onebyone", "app": os.environ.get("CLUSTERRUN_APP", ""),
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
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    assert server.request_queue_size == 5

    def on_term(*_):
        # shutdown() waits for serve_forever(), which runs this handler on
        # the main thread: ask from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print("listening on port %s, one request at a time" % os.environ["PORT"], flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    sys.exit(0)


main()
