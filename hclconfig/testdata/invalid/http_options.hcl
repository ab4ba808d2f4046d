listener "shared" {
  address    = ":8080"
  access_log = true
  timeout    = "5s"
  sticky {
    cookie = "srv"
  }
}

listener "proxied" {
  address = ":8081"
  mode    = "proxy"
  balance = "least-requests"
}

listener "web" {
  address         = ":8082"
  mode            = "http"
  balance         = "least-conn"
  trusted_proxies = ["10.0.0.0/8", "proxy.example", "fe80::1%eth0"]
  max_header_size = "100"
  max_retry_body  = "1GiB"
  header_timeout  = "0s"
  idle_timeout    = 30
  sticky {
    cookie = "a b"
  }
}

listener "api" {
  address = ":8083"
  mode    = "http"
  sticky {}
}

app "web" {
  command   = ["./web"]
  listeners = ["shared", "proxied", "web", "api"]
}
