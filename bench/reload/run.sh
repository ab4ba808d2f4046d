#!/usr/bin/env bash
# Rolling-reload benchmark: the same unmodified Node app under clusterrun and
# under pm2 (cluster mode), plus the Go example under clusterrun, 4 instances
# each, 64 connections on 127.0.0.1 in keep-alive and Connection: close modes;
# the Node app also behind clusterrun's proxy listener (clusterrun-node-proxy).
#
#   bench/reload/run.sh                 # 3 repetitions, all cases (about 35 minutes)
#   bench/reload/run.sh -reps 1 -cases crash -modes close
#
# Nothing else heavy should run meanwhile: the machine's cores are the
# measurement. Output: bench/out/reload-DATE.md.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
(cd "$repo" && go build -o "$work/bench-reload" ./bench/reload)
out="$repo/bench/out/reload-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/bench-reload" -clusterrun "$work/clusterrun" -pm2 "$pm2" -goapp "$work/go-http" \
  -hello "$repo/bench/reload/hello.js" -work "$work" "$@" | tee "$out"
echo "written: $out" >&2
