app "nocheck" {
  command = ["./a"]
  health {
    interval = "5s"
  }
}

app "typo" {
  command = ["./b"]
  health {
    check    = "htp"
    failures = 0
  }
}

app "values" {
  command = ["./c"]
  env     = { PORT = "8080" }
  health {
    check    = "http"
    path     = "healthz"
    interval = "0s"
  }
}

app "slow" {
  command = ["./d"]
  env     = { PORT = "8080" }
  health {
    check    = "tcp"
    interval = "1s"
    timeout  = "5s"
    failures = 1001
  }
}
