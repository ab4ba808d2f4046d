app "web" {
  command    = ["./web"]
  depends_on = ["dbb"]
}

app "db" {
  command = ["postgres"]
}
