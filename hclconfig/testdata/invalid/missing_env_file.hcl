env_file = ["-optional.env", "missing.env"]

app "web" {
  command  = ["./web"]
  env_file = ["web/missing.env"]
}
