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

  # Node cannot send sd_notify datagrams itself: clusterrun's preload
  # (NODE_OPTIONS=--require ...) writes READY=1 for it when the server
  # listens, as pm2 does in cluster mode.
  ready { check = "notify" }

  # SIGTERM, then up to 10s to finish in-flight requests, then SIGKILL.
  stop { timeout = "10s" }
}
