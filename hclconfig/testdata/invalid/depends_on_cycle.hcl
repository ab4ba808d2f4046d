app "web" {
  command    = ["./web"]
  depends_on = ["api"]
}

app "api" {
  command    = ["./api"]
  depends_on = ["web"]
}

app "a" {
  command    = ["./a"]
  depends_on = ["b"]
}

app "b" {
  command    = ["./b"]
  depends_on = ["c"]
}

app "c" {
  command    = ["./c"]
  depends_on = ["a", "web"]
}
