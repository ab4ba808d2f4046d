app "web" {
  command = ["./web"]
  stop {
    timeout = env.STOP_AFTER
  }
}
