listener "http" {
  address = "0.0.0.0"
}

listener "bare" {
  address = "8080"
}

app "web" {
  command   = ["./web"]
  listeners = ["http", "bare"]
}
