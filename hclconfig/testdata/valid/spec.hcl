# The example of the config reference, with the app it depends on added.
env_file = [".env", "-.env.local"]       # loaded with godotenv; a missing file is an error, except one
                                          # whose path starts with "-" (systemd's EnvironmentFile=- rule)
env      = { LOG_LEVEL = "info" }         # global, merged under each app's env

# The reference writes mode = "shared" here, but balance and the http health check
# need proxy mode, so this copy uses it.
listener "http" {
  address = "0.0.0.0:8080"                # host:port, ":0" (one random port shared by all), or "unix:/path"
  mode    = "proxy"                       # shared | reuseport | proxy  (see 5)
  backlog = 1024
  nonblocking = false                     # set O_NONBLOCK on the passed fd (systemd's NonBlocking=), once, at bind
  balance = "least-conn"                  # proxy mode only: least-conn | round-robin
}

metrics {                                 # optional: Prometheus metrics (official Go client), off by default
  address = "127.0.0.1:9102"
}

app "web" {
  command   = ["node", "server.js"]       # argv list is exec'd directly; a string runs via /bin/sh -c
  dir       = "./web"
  instances = 4                           # a number, or "max" = number of CPUs
  listeners = ["http"]
  env       = { NODE_ENV = "production" }
  env_file  = ["web/.env"]
  user      = "www-data"                  # optional: drop privileges after the runner binds :80
  group     = "www-data"                  # optional: defaults to the user's primary group

  depends_on = ["db"]                     # start after these apps are ready; stop before them

  ready {                                 # when is a new instance ready to take traffic?
    check   = "notify"                    # notify (sd_notify READY=1) | tcp | http | delay
    path    = "/healthz"                  # for http
    delay   = "1s"                        # for delay: ready once it has stayed up this long
    timeout = "30s"                       # not ready by then = a failed start
  }

  health {                                # optional liveness: an instance that fails it is replaced (new one
    check    = "http"                     # ready first); http | tcp probe the private address (proxy mode);
    path     = "/healthz"                 # watchdog: the instance must send WATCHDOG=1 at least every interval
    interval = "10s"                      # (it gets WATCHDOG_USEC, as under systemd's WatchdogSec=)
    timeout  = "2s"
    failures = 3                          # consecutive failures before it is replaced
  }

  watch {                                 # optional, for development: a change under these paths, debounced,
    paths  = ["src"]                      # triggers this app's rolling reload (not a stop-then-start)
    ignore = ["**/*.log", "node_modules"]
  }

  restart {
    policy       = "on-failure"           # always | on-failure | never
    backoff      = "100ms"                # first delay, doubled per consecutive crash ...
    max_backoff  = "30s"                  # ... up to this
    min_uptime   = "5s"                   # a run shorter than this counts as a crash-loop crash
    max_restarts = 10                     # within window; then the app gives up (state "failed")
    window       = "60s"
    max_memory   = "512MiB"               # an instance whose process group's RSS stays above this for 3
                                          # samples (every 2 s) is replaced the graceful way, and the log says so
  }

  stop {
    signal  = "SIGTERM"                   # sent to the instance's whole process group
    timeout = "10s"                       # then SIGKILL to the group
  }

  reload {
    parallel = 1                          # instances replaced at a time in a rolling reload
    order    = "start-first"              # start-first (new ready, then old stopped) | stop-first, for apps
  }                                       # that bind a fixed port themselves and have no runner-held listener

  required = false                        # true: if this app gives up, the whole runner drains and exits 1
}

app "db" {
  command = "exec postgres -D ./data"
  ready {
    check   = "tcp"
    timeout = "1m"
  }
  env = { PORT = 5432 }
}
