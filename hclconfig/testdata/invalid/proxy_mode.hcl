listener "http" {
  address = ":8080"
  mode    = "proxy"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
}
