listner "http" {
  address = ":8080"
}

app "web" {
  command = ["./web"]
}
