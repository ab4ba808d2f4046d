# The golden test runs as uid 1000, without capabilities, on a machine
# with a www-data user and group.
app "unknown" {
  command = ["node"]
  user    = "nobody-here"
  group   = "nogroup-here"
}

app "known" {
  command = ["node"]
  user    = "www-data"
  group   = "www-data"
}
