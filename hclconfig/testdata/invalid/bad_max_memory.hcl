app "web" {
  command = ["./web"]
  restart {
    max_memory = "512 megs"
  }
}

app "worker" {
  command = ["./worker"]
  restart {
    max_memory = -1
  }
}
