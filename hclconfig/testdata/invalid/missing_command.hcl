app "web" {
  instances = 2
}
