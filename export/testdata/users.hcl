# An app that runs as another account (preflight: only root may load it).
listener "http" {
  address = "127.0.0.1:8181"
  mode    = "proxy"
}

app "web" {
  command   = ["/bin/sleep", "1000"]
  instances = 2
  listeners = ["http"]
  user      = "daemon"
  group     = "1"
}
