app "web" {
  command = ["./web"]
}

app "worker" {
  command = ["./worker"]
}

app "web" {
  command = ["./web", "--again"]
}
