app "web" {
  command  = ["./web"]
  env_file = ["bad.env"]
}
