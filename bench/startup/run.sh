#!/usr/bin/env bash
# Start-up and crash-recovery benchmark, 8 instances: the supervisor's memory
# (PSS and USS of clusterrun's runner + guard, and of pm2's daemon; idle, while
# status is polled every 0.5 s, and under load),
# the time from the start command to all 8 instances answering, and the time
# from kill -9 of one instance to its replacement answering. The same
# unmodified Node app under clusterrun and under pm2 (cluster mode), plus the
# Go example under clusterrun.
#
#   bench/startup/run.sh            # 5 repetitions
#   bench/startup/run.sh -reps 10
#
# Output: bench/out/startup-DATE.md.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
(cd "$repo" && go build -o "$work/bench-startup" ./bench/startup)
out="$repo/bench/out/startup-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/bench-startup" -clusterrun "$work/clusterrun" -pm2 "$pm2" -goapp "$work/go-http" \
  -hello "$repo/bench/reload/hello.js" -work "$work" "$@" | tee "$out"
echo "written: $out" >&2
