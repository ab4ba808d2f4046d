app "web" {
  command = ["./web"]
  restart {
    backoff     = "1m"
    max_backoff = "30s"
  }
}

app "worker" {
  command = ["./worker"]
  restart {
    max_backoff = "50ms"
  }
}
