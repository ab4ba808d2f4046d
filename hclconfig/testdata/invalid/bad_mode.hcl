listener "http" {
  address = ":8080"
  mode    = "reuse_port"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
}
