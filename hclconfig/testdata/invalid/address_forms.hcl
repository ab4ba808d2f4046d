listener "scheme" {
  address = "http://localhost:8080"
}

listener "ipv6" {
  address = "::1:8080"
}

listener "star" {
  address = "*:8080"
}

listener "empty_unix" {
  address = "unix:"
}

listener "badhost" {
  address = "300.1.1.1:80"
}

app "web" {
  command   = ["./web"]
  listeners = ["scheme", "ipv6", "star", "empty_unix", "badhost"]
}
