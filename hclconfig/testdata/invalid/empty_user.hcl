app "web" {
  command = ["./web"]
  user    = ""
  group   = ""
}
