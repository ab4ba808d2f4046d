metrics {
}

app "web" {
  command = ["./web"]
}
