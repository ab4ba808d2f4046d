app "web" {
  command = ["./web"]
  restart = { policy = "always" }
}
