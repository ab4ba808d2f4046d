app "web" {
  command = ["./web"
}
