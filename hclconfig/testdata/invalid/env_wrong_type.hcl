env = ["LOG_LEVEL=info"]

app "web" {
  command = ["./web"]
  env = {
    LIST    = ["a", "b"]
    NOTHING = null
    "A=B"   = "c"
    TWICE   = "1"
    TWICE   = "2"
  }
}
