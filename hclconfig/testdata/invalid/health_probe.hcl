listener "http" {
  address = ":8080"
  mode    = "reuseport"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
  health {
    check = "http"
  }
}

app "workers" {
  command   = ["./worker"]
  instances = 2
  env       = { PORT = "9000" }
  health {
    check = "tcp"
  }
}

app "noport" {
  command = ["./noport"]
  health {
    check = "tcp"
  }
}
