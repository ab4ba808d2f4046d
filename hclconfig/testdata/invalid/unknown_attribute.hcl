app "web" {
  comand    = ["./web"]
  instance  = 2
}
