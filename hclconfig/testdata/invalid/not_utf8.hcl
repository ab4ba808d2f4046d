app "web" {
  command = ["./web"]
  env     = { CITY = "Zürich" }
}
