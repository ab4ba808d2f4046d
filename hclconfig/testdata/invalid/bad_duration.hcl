app "web" {
  command = ["./web"]
  ready {
    timeout = "30 seconds"
  }
  restart {
    window = "1d"
  }
  stop {
    timeout = "soon"
  }
}
