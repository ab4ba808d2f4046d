listener "a" {
  address = "127.0.0.1:8080"
}

listener "b" {
  address = "localhost:8080"
}

listener "c" {
  address = "localhost:9090"
}

listener "d" {
  address = "[::1]:9090"
}

listener "e" {
  address = "[::ffff:127.0.0.2]:7070"
}

listener "f" {
  address = "127.0.0.2:7070"
}

app "web" {
  command   = ["./web"]
  listeners = ["a", "b", "c", "d", "e", "f"]
}
