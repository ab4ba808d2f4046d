listener "http" {
  address = "127.0.0.1:9102"
}

metrics {
  address = "localhost:9102"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
}
