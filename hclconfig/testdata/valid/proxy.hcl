# Proxy mode: every instance gets its own private port, so it can be probed.
listener "http" {
  address = ":8080"
  mode    = "proxy"
  balance = "round-robin"
}

listener "admin" {
  address = "127.0.0.1:8081"
  mode    = "proxy"
}

# Sticky clients, bounded connections, a shorter wait for an instance.
listener "sticky" {
  address                      = "127.0.0.1:8082"
  mode                         = "proxy"
  balance                      = "ip-hash"
  max_connections              = 5000
  max_connections_per_instance = 8
  queue_timeout                = "2s"
}

# No ready block: an app behind a proxy listener is ready when its private
# port answers.
app "web" {
  command   = "FOO=1 python3 server.py --port $PORT"
  instances = 4
  listeners = ["http", "admin"]
  health {
    check = "tcp"
  }
}

app "api" {
  command   = ["./api"]
  dir       = "api"
  instances = "max"
  listeners = ["admin", "sticky"]
  ready {
    check = "http"
    path  = "/ready"
  }
  health {
    check    = "http"
    interval = "5s"
    timeout  = "500ms"
    failures = 1
  }
}

# Watchdog health works in any mode, without listeners.
app "worker" {
  command = ["./worker"]
  health {
    check    = "watchdog"
    interval = "30s"
  }
  reload {
    order = "stop-first"
  }
}
