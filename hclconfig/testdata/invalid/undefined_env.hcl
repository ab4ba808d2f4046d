app "web" {
  command = ["./web", env.CLUSTERRUN_UNDEFINED_VAR]
  dir     = "${env.HOME}/${env.APP_DIR}"
}
