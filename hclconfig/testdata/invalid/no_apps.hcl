listener "http" {
  address = ":8080"
}
