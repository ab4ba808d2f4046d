app "nopaths" {
  command = ["./a"]
  watch {
    ignore = ["*.log"]
  }
}

app "empty" {
  command = ["./b"]
  watch {
    paths = []
  }
}

app "missing" {
  command = ["./c"]
  watch {
    paths  = ["bad.env", "does-not-exist", "", "~/src"]
    ignore = ["[a-", "", "**/*.tmp"]
  }
}
