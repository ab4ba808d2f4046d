app "web" {
  command = ["./web"]
  stop {
    signal = "SIGSTOPNOW"
  }
}
