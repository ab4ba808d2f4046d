app "missing" {
  command = ["node"]
  dir     = "no-such-dir"
}

app "file" {
  command = ["node"]
  dir     = "notexec.sh"
}

# Only the dir is reported: the program is relative to it.
app "both" {
  command = ["./missing"]
  dir     = "no-such-dir"
}

app "fine" {
  command = ["../tool.sh"]
  dir     = "bin"
}
