# The smallest useful file: one app, a shell command, every default.
app "web" {
  command = "python3 -m http.server $PORT"
}
