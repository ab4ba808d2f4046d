app "web" {
  command    = ["./web"]
  depends_on = ["web"]
}
