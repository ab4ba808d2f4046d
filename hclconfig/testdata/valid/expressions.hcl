# Expressions: the env variable, functions, and values from the environment.
env_file = ["-missing.env", "expr.env"]

env = {
  GREETING = upper(env.EXPR_GREETING)
  HOME_DIR = env.HOME
  WORKERS  = 3
  DEBUG    = true
  RATIO    = 1.5
  REGION   = lookup(env, "REGION", "eu-west-1")
  JOINED   = join(",", ["a", "b", "c"])
  FORMATTED = format("%s-%03d", "build", 7)
  TEMPLATE = "${env.HOME}/x-${env["EXPR_GREETING"]}"
  CONSTANT = "${"a"}b"
}

app "worker" {
  command   = ["${env.HOME}/bin/worker", "--queue", lower("EMAILS")]
  instances = "max"
  dir       = "/srv/worker"
  env       = merge({ A = "1" }, { B = "2" })
}

app "cron" {
  command   = concat(["sh", "-c"], [trimspace("  run-cron  ")])
  instances = env.EXPR_INSTANCES
  env_file  = ["expr.env"]
  env       = { EXPR_GREETING = "overridden", COUNT = length(split(",", "a,b,c")) }

  restart {
    policy      = "always"
    backoff     = "250ms"
    max_backoff = "1m30s"
    max_memory  = 1048576
  }
}
