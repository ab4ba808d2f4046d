env = { PORT = "8080" }

app "web" {
  command   = ["./web"]
  instances = 4
  ready {
    check = "http"
  }
}

app "worker" {
  command   = ["./worker"]
  instances = "max"
  ready {
    check = "tcp"
  }
}
