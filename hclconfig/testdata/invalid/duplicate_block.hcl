app "web" {
  command = ["./web"]
  ready {
    check = "notify"
  }
  ready {
    check = "delay"
  }
}
