listener "shared" {
  address = ":8080"
  balance = "round-robin"
}

listener "proxied" {
  address = ":8081"
  mode    = "proxy"
  balance = "least-connections"
}

app "web" {
  command   = ["./web"]
  listeners = ["shared", "proxied"]
}
