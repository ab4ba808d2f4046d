metrics {
  address = ":0"
}

app "web" {
  command = ["./web"]
}
