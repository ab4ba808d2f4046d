app "web" {
  command = ["./web"]

app "worker" {
  command = ["./worker"]
}
