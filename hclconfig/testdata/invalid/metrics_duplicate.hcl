metrics {
  address = "127.0.0.1:9102"
}

metrics {
  address = "127.0.0.1:9103"
}

app "web" {
  command = ["./web"]
}
