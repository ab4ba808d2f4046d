app "web" {
  command   = ["./web"]
  instances = 1e99999999
  env = {
    SMALL = 1e-5000
  }
}
