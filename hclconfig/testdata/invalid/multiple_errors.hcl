env_file = ["does-not-exist.env"]

listener "http" {
  address = "localhost"
  mode    = "fast"
}

listener "unused" {
  address = ":9090"
}

app "web" {
  command   = ["./web"]
  instances = 0
  listeners = ["http", "https"]
  depends_on = ["web"]

  ready {
    check   = "tcp"
    timeout = "-1s"
  }

  restart {
    policy      = "sometimes"
    max_memory  = "lots"
    max_restarts = -1
  }

  stop {
    signal = "SIGNOPE"
  }

  reload {
    parallel = 0
  }
}

app "worker" {
  instances = "max"
  unknown   = true
}
