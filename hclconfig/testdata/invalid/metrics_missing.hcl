metrics {
  adress = ":9102"
}

app "web" {
  command = ["./web"]
}
