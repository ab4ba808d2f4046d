app "web" {
  command   = ["./web"]
  instances = "lots"
}

app "worker" {
  command   = ["./worker"]
  instances = "MAX"
}
