listener "sock" {
  address = "unix:/var/run/clusterrun/a-very-long-directory-name-for-sockets/another-level-of-nesting/and-one-more-level/web.sock"
}

app "web" {
  command   = ["./web"]
  listeners = ["sock"]
}
