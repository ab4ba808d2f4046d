listener "http" {
  address = ":8080"
}

listener "http" {
  address = ":8081"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
}
