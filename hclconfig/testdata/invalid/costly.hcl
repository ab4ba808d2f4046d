# Each of these would build a gigabyte when evaluated.
app "web" {
  command = ["./web"]
  env = {
    PADDED = format("%0999999999d", 1)
  }
}
