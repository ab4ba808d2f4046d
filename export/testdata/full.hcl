# Every block an export has to map, with commands that exist on any Linux
# machine so that systemd-analyze verify accepts the units.
env_file = ["-.env.local"]
env = {
  LOG_LEVEL = "info"
  DATA_DIR  = "${env.HOME}/data"
}

listener "http" {
  address     = "127.0.0.1:8080"
  backlog     = 512
  nonblocking = true
}

listener "fast" {
  address = "0.0.0.0:9090"
  mode    = "reuseport"
}

listener "front" {
  address = ":7070"
  mode    = "proxy"
  balance = "round-robin"
}

listener "sock" {
  address = "unix:/tmp/clusterrun-export-test.sock"
}

app "db" {
  command = ["/bin/sleep", "infinity"]

  ready {
    check   = "notify"
    timeout = "1m"
  }
  health {
    check    = "watchdog"
    interval = "5s"
  }
  restart {
    policy     = "always"
    max_memory = "256MiB"
  }
  stop {
    signal  = "SIGINT"
    timeout = "30s"
  }
  required = true
}

app "web" {
  command    = ["/bin/sleep", "1000"]
  instances  = "max"
  listeners  = ["http", "sock"]
  depends_on = ["db"]
  env = {
    NODE_ENV = "production"
    HOME_URL = "file://${env.HOME}/index.html"
    TOKEN    = lookup(env, "EXPORT_TEST_TOKEN", "dev")
    PORT     = "1234"
  }
}

app "api" {
  command   = "echo \"$PORT 100%\"; exec sleep 1000"
  instances = 3
  listeners = ["front"]

  ready {
    check = "http"
    path  = "/healthz"
  }
  health {
    check    = "http"
    path     = "/live"
    interval = "5s"
    timeout  = "1s"
    failures = 5
  }
  restart {
    backoff      = "1s"
    max_backoff  = "1m"
    min_uptime   = "10s"
    max_restarts = 3
    window       = "5m"
  }
  reload { parallel = 2 }
}

app "worker" {
  command   = ["/bin/sh", "-c", "echo $(date) 50% \"quoted\" $HOME; exec sleep 1000"]
  instances = 2
  dir       = "work"
  listeners = ["fast"]
  env_file  = ["worker.env"]
  env       = { FOO = "from env" }

  watch {
    paths  = ["work"]
    ignore = ["*.log"]
  }
  reload {
    parallel = 2
    order    = "stop-first"
  }
  stop { timeout = "2m30s" }
}

app "clock" {
  command    = "while true; do date; sleep 2; done"
  depends_on = ["web"]

  restart { policy = "never" }
}
