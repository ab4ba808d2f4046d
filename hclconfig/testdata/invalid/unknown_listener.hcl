listener "http" {
  address = ":8080"
}

listener "admin" {
  address = "127.0.0.1:9000"
}

app "web" {
  command   = ["./web"]
  listeners = ["htp", "admin"]
}
