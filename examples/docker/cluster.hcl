# The cluster the Docker image runs: clusterrun is the container's PID 1
# (ENTRYPOINT ["clusterrun", "up"]) and finds this file in the WORKDIR.
# See README.md in this folder; from the repo root:
#
#   docker build -f examples/docker/Dockerfile -t clusterrun-go-http .
#   docker run --rm -p 8080:8080 clusterrun-go-http
#   curl -s 127.0.0.1:8080/        # run it a few times: "instance" changes

# In a container, listen on every interface: Docker's port mapping
# connects from outside the container's loopback.
listener "http" {
  address = "0.0.0.0:8080"
}

app "web" {
  # go-http is on the image's PATH (/usr/local/bin). A string command runs
  # through /bin/sh -c, and "exec" makes go-http replace that shell, so the
  # instance's pid and signals are go-http's own. (A list, such as
  # ["/usr/local/bin/go-http"], works as well in the image; the string
  # keeps "clusterrun check" of this file working on a machine without
  # go-http installed.)
  command   = "exec go-http"
  instances = "max"             # one per CPU the container may run on (its
                                # cpuset; a --cpus quota does not lower it)
  listeners = ["http"]

  ready { check = "notify" }    # go-http sends READY=1 once it serves

  # "docker stop" sends SIGTERM, then SIGKILL after 10s (its -t): the
  # drain must finish before that, so the stop timeout stays below it.
  stop { timeout = "8s" }

  restart {
    policy       = "always"
    max_restarts = 10           # in 60s; then the app gives up ...
  }
  required = true               # ... and the runner exits 1, so Docker's
}                               # restart policy takes over
