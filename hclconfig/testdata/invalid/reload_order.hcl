app "web" {
  command = ["./web"]
  reload {
    order = "stop-then-start"
  }
}
