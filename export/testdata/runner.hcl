# A config for the --runner renderings: listeners of each kind, a metrics
# block on every interface (where /healthz and /readyz are served), and a
# dependency chain whose start and drain bounds add up.

metrics {
  address = "0.0.0.0:9090"
}

listener "http" {
  address = "0.0.0.0:8080"
  mode    = "proxy"
}

listener "admin" {
  address = "127.0.0.1:8081"
}

listener "sock" {
  address = "unix:/run/shop/api.sock"
}

listener "spare" {
  address = ":0"
}

app "migrate" {
  command = ["/bin/sh", "-c", "exit 0"]
  ready {
    check   = "exit"
    timeout = "2m"
  }
}

app "web" {
  command    = ["/bin/sleep", "infinity"]
  instances  = 4
  listeners  = ["http", "admin"]
  depends_on = ["migrate"]
  stop { timeout = "20s" }
}

app "api" {
  command    = ["/bin/sleep", "infinity"]
  instances  = "max"
  listeners  = ["sock", "spare"]
  depends_on = ["web"]
  stop { timeout = "15s" }
}
