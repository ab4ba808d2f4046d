# Apps without listeners that listen on their own PORT can be probed.
env = { PORT = "3000" }

app "frontend" {
  command = "npm start"
  ready {
    check   = "http"
    timeout = "45s"
  }
  restart {
    policy       = "never"
    max_restarts = 0
    min_uptime   = "0s"
    window       = "10m"
    max_memory   = "1.5GiB"
  }
}

app "backend" {
  command = ["./backend"]
  env     = { PORT = 4000 }
  ready {
    check = "tcp"
    path  = "/ignored"
  }
  stop {
    signal = "SIGQUIT"
  }
}

app "health" {
  command = ["./health"]
  ready {
    check = "http"
    path  = "/healthz?full=1"
  }
}

app "slow" {
  command = ["./slow"]
  ready {
    check   = "delay"
    delay   = "0s"
    timeout = "1s"
  }
  restart {
    backoff     = "0s"
    max_backoff = "0s"
    max_memory  = "100MB"
  }
}
