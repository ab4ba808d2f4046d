listener "shared" {
  address         = ":8080"
  balance         = "round-robin"
  max_connections = 100
  queue_timeout   = "5s"
}

listener "proxied" {
  address = ":8081"
  mode    = "proxy"
  balance = "least-connections"
}

listener "sock" {
  address = "unix:/tmp/clusterrun-test.sock"
  mode    = "proxy"
  balance = "ip-hash"
}

listener "limits" {
  address                      = ":8082"
  mode                         = "proxy"
  max_connections              = 0
  max_connections_per_instance = 2.5
  queue_timeout                = "0s"
}

app "web" {
  command   = ["./web"]
  listeners = ["shared", "proxied", "sock", "limits"]
}
