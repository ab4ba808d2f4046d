# HTTP mode: the runner reads each request and forwards it to a ready
# instance over connections it keeps open.
listener "web" {
  address = ":8080"
  mode    = "http"
}

# Every option written out.
listener "chat" {
  address                      = "127.0.0.1:8081"
  mode                         = "http"
  balance                      = "ip-hash"
  trusted_proxies              = ["10.0.0.0/8", "192.0.2.7", "::ffff:198.51.100.0/120", "2001:db8::1/32"]
  access_log                   = true
  max_header_size              = "16KiB"
  header_timeout               = "5s"
  idle_timeout                 = "2m"
  timeout                      = "30s"
  max_retry_body               = 0
  max_connections              = 1000
  max_connections_per_instance = 16
  queue_timeout                = "3s"
  sticky {
    cookie = "io_node"
  }
}

app "web" {
  command   = ["./web"]
  instances = 2
  listeners = ["web"]
}

app "chat" {
  command   = ["node", "chat.js"]
  instances = 4
  listeners = ["chat"]
}
