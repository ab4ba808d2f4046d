app "web" {
  command = ["./web"]
  restart {
    policy = "on-fail"
  }
}
