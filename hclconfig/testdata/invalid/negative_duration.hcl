app "web" {
  command = ["./web"]
  restart {
    backoff    = "-100ms"
    min_uptime = "-5s"
  }
}
