app "list" {
  command = []
}

app "string" {
  command = "   "
}

app "program" {
  command = ["", "--flag"]
}
