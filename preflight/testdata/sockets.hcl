listener "sock" {
  address = "unix:no-such-dir/app.sock"
}

listener "low" {
  address = ":80"
}

listener "fine" {
  address = "127.0.0.1:8080"
}

listener "random" {
  address = ":0"
}

listener "here" {
  address = "unix:app.sock"
}

metrics {
  address = "127.0.0.1:443"
}

app "web" {
  command   = ["node"]
  listeners = ["sock", "low", "fine", "random", "here"]
}
