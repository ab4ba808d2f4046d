app "web" {
  command = ["./web", file("secret.txt")]
}
