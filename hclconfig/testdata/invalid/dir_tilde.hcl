app "web" {
  command = ["./web"]
  dir     = "~/apps/web"
}
