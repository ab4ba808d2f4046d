# Programs are looked up as the exec will. The golden test's PATH is
# /usr/local/bin:/usr/bin:/bin, with node, python3 and sh in /usr/bin.
app "typo" {
  command = ["nodee", "server.js"]
}

app "shell" {
  command = "FOO=1 pythn3 -m http.server $PORT"
}

app "missing" {
  command = ["./missing"]
}

app "notexec" {
  command = ["./notexec.sh"]
}

app "directory" {
  command = ["./bin"]
}

app "ownpath" {
  command = ["node"]
  env     = { PATH = "/opt/node/bin:relative" }
}

app "emptypath" {
  command = ["node"]
  env     = { PATH = "" }
}

# These are fine: on PATH, a shell line only the shell can resolve, an
# executable file, and a path that a build step this app waits for creates.
app "ok" {
  command = ["python3"]
}

app "complex" {
  command = "cd sub && exec nodee"
}

app "expanded" {
  command = "$CMD --flag"
}

app "setpath" {
  command = "PATH=/opt/bin:$PATH mytool"
}

app "tool" {
  command = ["./tool.sh"]
}

app "built" {
  command    = ["./bin/not-built-yet"]
  depends_on = ["ok"]
}
