# The Go example as 4 instances sharing one socket. From the repo root:
#
#   go run . up -f examples/go-http/cluster.hcl
#   curl -s 127.0.0.1:8080/        # run it a few times: "instance" changes
#
# Relative paths (commands, dir) resolve against this file's folder.

# The runner binds 127.0.0.1:8080 once and hands it to every instance as fd 3.
listener "http" {
  address = "127.0.0.1:8080"
}

# Builds bin/go-http, then exits. check = "exit" makes it a one-shot step:
# it is done (and "web", which depends on it, starts) once it exits 0,
# which it must do within the timeout.
app "build" {
  command = ["go", "build", "-o", "bin/go-http", "."]

  ready {
    check   = "exit"
    timeout = "5m"
  }
  restart { policy = "never" }
}

app "web" {
  command    = ["./bin/go-http"]
  instances  = 4
  listeners  = ["http"]
  depends_on = ["build"]

  # Ready when the instance sends READY=1 to NOTIFY_SOCKET.
  ready { check = "notify" }

  # SIGTERM, then up to 10s to finish in-flight requests, then SIGKILL.
  stop { timeout = "10s" }
}
