app {
  command = ["./web"]
}
