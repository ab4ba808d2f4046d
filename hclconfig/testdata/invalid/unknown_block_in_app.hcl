app "web" {
  command = ["./web"]

  healthcheck {
    path = "/healthz"
  }
}
