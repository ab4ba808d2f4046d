# The Python example as 4 instances sharing one socket. From the repo root:
#
#   go run . up -f examples/python-http/cluster.hcl
#   curl -s 127.0.0.1:8081/        # run it a few times: "instance" changes
#
# Relative paths (commands, dir) resolve against this file's folder.

# The runner binds 127.0.0.1:8081 once and hands it to every instance as fd 3;
# server.py wraps it with socket.socket(fileno=3).
listener "http" {
  address = "127.0.0.1:8081"
}

app "web" {
  command   = ["python3", "server.py"]
  instances = 4
  listeners = ["http"]

  # Ready when the instance sends READY=1 to NOTIFY_SOCKET.
  ready { check = "notify" }

  # SIGTERM, then up to 10s to finish in-flight requests, then SIGKILL.
  stop { timeout = "10s" }
}
