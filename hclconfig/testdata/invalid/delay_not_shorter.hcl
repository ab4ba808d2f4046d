app "web" {
  command = ["./web"]
  ready {
    check   = "delay"
    delay   = "30s"
    timeout = "10s"
  }
}
