app "web" {
  command = ["./web"]
  reload {
    parallel = 0
  }
}
