app "web" {
  command   = ["./web"]
  instances = 1.5
}
