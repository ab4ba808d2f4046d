app "web" {
  command   = ["./web"]
  instances = 0
}
