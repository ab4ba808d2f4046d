# The Node example as 4 instances sharing one socket. From the repo root:
#
#   go run . up -f examples/node-http/cluster.hcl
#   curl -s 127.0.0.1:8082/        # run it a few times: "instance" changes
#
# Relative paths (commands, dir) resolve against this file's folder.

# The runner binds 127.0.0.1:8082 once and hands it to every instance as fd 3;
# server.js calls server.listen({fd: 3}).
listener "http" {
  address = "127.0.0.1:8082"
}

app "web" {
  command   = ["node", "server.js"]
  instances = 4
  listeners = ["http"]

  # Node cannot send sd_notify datagrams, so an instance counts as ready once
  # it has stayed up for 500ms.
  ready {
    check = "delay"
    delay = "500ms"
  }

  # SIGTERM, then up to 10s to finish in-flight requests, then SIGKILL.
  stop { timeout = "10s" }
}
