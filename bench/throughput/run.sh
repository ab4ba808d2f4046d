#!/usr/bin/env bash
# Throughput benchmark: N instances of a hello app on one port of 127.0.0.1
# under each way of running them — no runner at all (the limit), clusterrun
# in shared, reuseport and proxy mode, haproxy (mode tcp) and nginx (stream)
# in front of instances on their own ports, pm2's cluster mode and Node's
# cluster module (round-robin and SCHED_NONE) — with wrk, keep-alive and a
# new connection per request. See README.md beside this file.
#
#   bench/throughput/run.sh                  # everything, 3 repetitions (about 35 minutes)
#   bench/throughput/run.sh -duration 3s -reps 1 -targets limit,proxy -apps go -n 2
#   bench/throughput/run.sh -targets proxy,haproxy,nginx -reps 3   # proxy mode against haproxy and nginx
#
# Every argument goes to the driver (main.go: -apps -n -shapes -targets -reps
# -duration -idle -threads -conns -load). Nothing else heavy should run
# meanwhile: the machine's cores are the measurement.
# Output: stdout and bench/out/throughput-DATE.md.
here=$(cd "$(dirname "$0")" && pwd)
invoked="$0 $*"
source "$here/../common.sh"
source "$here/lib.sh"
# The third-party proxies compared with clusterrun's proxy mode, from Debian.
want=(haproxy nginx libnginx-mod-stream)
case " $* " in *caddy*) want+=(caddy) ;; esac
missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}") >&2 || true
  fi
fi
(cd "$repo" && go build -o "$work/throughput" ./bench/throughput)
out="$repo/bench/out/throughput-$(date -u +%Y%m%dT%H%M%SZ).md"
# shellcheck disable=SC2086 # $loadflag is one flag and its value, or nothing
"$work/throughput" -work "$work" -clusterrun "$work/clusterrun" -pm2 "$pm2" -goapp "$work/goapp" \
  -hello "$repo/bench/reload/hello.js" -limitjs "$here/limit.js" -clusterjs "$here/cluster.js" \
  -clk-tck "$(getconf CLK_TCK)" -invoked "$invoked" -out "$out" $loadflag "$@"
echo "written: $out" >&2
