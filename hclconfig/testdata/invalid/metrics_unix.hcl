metrics {
  address = "unix:/run/metrics.sock"
}

app "web" {
  command = ["./web"]
}
