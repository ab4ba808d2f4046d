app "web" {
  command = ["./web"]
  ready {
    check = "ready"
  }
}
