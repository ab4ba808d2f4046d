listener "http" {
  mode = "shared"
}

app "web" {
  command   = ["./web"]
  listeners = ["http"]
}
