app "web" {
  command = ["./web"]
  stop {
    timeout = 30
  }
}
