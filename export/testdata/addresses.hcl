# Listener addresses that engines write differently: a random port, a host
# name, IPv6, every interface.
listener "random" {
  address = ":0"
}

listener "local" {
  address = "localhost:7171"
}

listener "v6" {
  address = "[::1]:7272"
}

listener "any" {
  address = ":7373"
}

app "web" {
  command   = ["/bin/sleep", "1000"]
  listeners = ["random", "local", "v6", "any"]
}

app "Admin_UI" {
  command   = ["/bin/sleep", "1000"]
  listeners = ["any"]
  ready {
    check = "delay"
    delay = "5s"
  }
}
