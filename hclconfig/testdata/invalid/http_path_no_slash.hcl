app "web" {
  command = ["./web"]
  env     = { PORT = 3000 }
  ready {
    check = "http"
    path  = "healthz"
  }
}
