listener "http" {
  address = ":70000"
}

listener "named" {
  address = "localhost:http"
}

app "web" {
  command   = ["./web"]
  listeners = ["http", "named"]
}
