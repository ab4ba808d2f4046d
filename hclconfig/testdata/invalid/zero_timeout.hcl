app "web" {
  command = ["./web"]
  ready {
    timeout = "0s"
  }
  stop {
    timeout = "0"
  }
}
