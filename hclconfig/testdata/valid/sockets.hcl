# Several listeners, shared between apps, and a dependency chain.
listener "public" {
  address     = ":0"
  mode        = "reuseport"
  backlog     = 511
  nonblocking = true
}

listener "admin" {
  address = "unix:run/admin.sock"
}

listener "metrics" {
  address = "[::1]:9090"
}

listener "other-random" {
  address = ":0"
}

app "api" {
  command    = ["./api"]
  dir        = "api"
  instances  = 2
  listeners  = ["public", "admin", "metrics"]
  depends_on = ["cache"]
  ready {
    check = "notify"
  }
  reload {
    parallel = 2
  }
}

app "cache" {
  command    = ["redis-server", "--port", "0", "--unixsocket", "cache.sock"]
  depends_on = ["store"]
  listeners  = ["other-random"]
}

app "store" {
  command  = ["./store"]
  required = true
  stop {
    signal  = "int"
    timeout = "1m"
  }
}
