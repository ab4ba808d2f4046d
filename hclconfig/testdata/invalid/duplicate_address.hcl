listener "public" {
  address = ":8080"
}

listener "local" {
  address = "127.0.0.1:8080"
}

listener "again" {
  address = ":8080"
}

listener "random1" {
  address = ":0"
}

listener "random2" {
  address = ":0"
}

app "web" {
  command   = ["./web"]
  listeners = ["public", "local", "again", "random1", "random2"]
}
