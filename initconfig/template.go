package initconfig

import (
	"fmt"
	"strconv"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// Template is a cluster.hcl to start from: one listener, one app that
// serves at once (python3's http.server), and the common blocks commented
// out with their defaults.
func Template() Result {
	w := &writer{}
	w.comment("", `cluster.hcl: what "clusterrun up" runs, in the foreground, until Ctrl-C.
Every block and attribute: docs/config.md. Check this file with "clusterrun check".`)
	w.line("")
	w.comment("", `Variables for every app; an env_file path starting with "-" may be missing.`)
	w.comment("", `env_file = ["-.env"]`)
	w.comment("", `env      = { LOG_LEVEL = "info" }`)
	w.line("")
	w.comment("", "The runner binds each listener once and keeps it open while it runs.")
	w.line(`listener "http" {`)
	w.line(`  address = "127.0.0.1:8080" # "0.0.0.0:8080": every interface; ":0": a random port; "unix:/path"`)
	w.comment("  ", `"proxy": the runner accepts and forwards to each instance's own $PORT, for
apps that bind a port themselves. Without it ("shared"), every instance
gets the socket itself as fd 3 (LISTEN_FDS, as under systemd).`)
	w.line(`  mode = "proxy"`)
	w.comment("  ", "backlog     = 1024")
	w.comment("  ", "nonblocking = false")
	w.line("}")
	w.line("")
	w.line(`app "web" {`)
	w.comment("  ", `Your server. A list is exec'd as it is: ["node", "server.js"]; a string
runs through /bin/sh -c.`)
	w.line(`  command   = "python3 -m http.server $PORT --bind 127.0.0.1"`)
	w.line(`  instances = 2 # or "max": one per CPU`)
	w.line(`  listeners = ["http"]`)
	w.comment("  ", `dir        = "."            # relative to this file
env        = { NODE_ENV = "production" }
env_file   = ["-.env.local"]
user       = "www-data"     # run as another user (clusterrun as root)
depends_on = ["db"]         # start after these apps are ready
required   = false          # true: if this app gives up, everything stops (exit 1)`)
	w.line("")
	w.comment("  ", `When is a new instance ready for traffic? The default: up for `+dur(hclconfig.DefaultReadyDelay)+`, or,
behind a proxy listener, its port accepts a connection.
ready {
  check   = "notify"   # READY=1 on $NOTIFY_SOCKET | tcp | http | delay
  path    = "/healthz" # for http
  timeout = "`+dur(hclconfig.DefaultReadyTimeout)+`"
}`)
	w.line("")
	w.comment("  ", `Replace an instance that stops answering (a new one is ready first).
health {
  check    = "http" # http | tcp | watchdog (WATCHDOG=1 every interval)
  path     = "/healthz"
  interval = "`+dur(hclconfig.DefaultHealthInterval)+`"
  timeout  = "`+dur(hclconfig.DefaultHealthTimeout)+`"
  failures = `+strconv.Itoa(hclconfig.DefaultHealthFailures)+`
}`)
	w.line("")
	w.comment("  ", `For development: a change under these paths reloads the app.
watch {
  paths  = ["src"]
  ignore = ["**/*.log"]
}`)
	w.line("")
	w.comment("  ", fmt.Sprintf(`restart {
  policy       = %-12s # always | on-failure | never
  backoff      = %-12s # doubled per crash in a row ...
  max_backoff  = %-12s # ... up to this
  min_uptime   = %-12s # a shorter run is a crash-loop crash
  max_restarts = %-12d # within window; then the app gives up
  window       = %s
  max_memory   = %-12s # replace an instance above this RSS
}`, `"on-failure"`, quote(dur(hclconfig.DefaultBackoff)), quote(dur(hclconfig.DefaultMaxBackoff)),
		quote(dur(hclconfig.DefaultMinUptime)), hclconfig.DefaultMaxRestarts, quote(dur(hclconfig.DefaultWindow)), `"512MiB"`))
	w.line("")
	w.comment("  ", fmt.Sprintf(`stop {
  signal  = %-9s # to the instance's process group
  timeout = %-9s # then SIGKILL
}`, `"SIGTERM"`, quote(dur(hclconfig.DefaultStopTimeout))))
	w.line("")
	w.comment("  ", `A rolling reload (SIGHUP, "clusterrun reload") replaces instances this way.
reload {
  parallel = 1
  order    = "start-first" # the new one ready, then the old one stopped; or stop-first
}`)
	w.line("}")
	return w.result(1)
}

// dur writes d as cluster.hcl's durations read: "100ms", "30s", "1m0s"
// is "60s".
func dur(d time.Duration) string { return msDuration(d.Milliseconds()) }
