# Each app gets its own copy of the env files: 70 copies of 2,000
# variables is more than a config may copy.
app "web" {
  command  = ["./web"]
  env_file = [
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
    "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env", "many.env",
  ]
}
