listener "http:public" {
  address = ":8080"
}

app "web.1" {
  command   = ["./web"]
  listeners = ["http:public"]
}

app "-worker" {
  command = ["./worker"]
}
