app "web" {
  command = ["./web"]
  ready {
    check = "http"
  }
}

app "api" {
  command = ["./api"]
  env     = { PORT = "http" }
  ready {
    check = "tcp"
  }
}
