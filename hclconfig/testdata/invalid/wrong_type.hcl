listener "http" {
  address     = ":8080"
  nonblocking = "sometimes"
}

app "web" {
  command   = ["./web"]
  listeners = "http"
  required  = ["yes"]
  user      = { name = "www" }
}
