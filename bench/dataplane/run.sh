#!/usr/bin/env bash
# Data-path benchmark: is clusterrun's runner off the data path in shared
# mode? The Go hello app as 2 instances on one shared socket, a new
# connection per request (wrk -t2 -c64 -d10s -H 'Connection: close' on
# 127.0.0.1), in paired runs against the same app with no runner; then the
# runner's PSS with 8 idle instances. See README.md beside this file.
#
#   bench/dataplane/run.sh                       # 5 pairs (about 2 minutes)
#   bench/dataplane/run.sh -pairs 1 -duration 3s # smoke run
#
# Every argument goes to the driver (main.go: -pairs -n -idle-instances
# -duration -warmup -idle -threads -conns -load -target-*). Nothing else
# heavy should run meanwhile: the machine's cores are the measurement.
# Output: stdout and bench/out/dataplane-DATE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
invoked="$0 $*"
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-dataplane-XXXXXX")
trap 'rm -rf "$work"' EXIT

source "$repo/bench/throughput/lib.sh"
echo "building clusterrun and the driver" >&2
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/clusterrun" . && go build -o "$work/dataplane" ./bench/dataplane)
mkdir -p "$repo/bench/out"
out="$repo/bench/out/dataplane-$(date -u +%Y%m%dT%H%M%SZ).md"
# shellcheck disable=SC2086 # $loadflag is one flag and its value, or nothing
"$work/dataplane" -work "$work" -clusterrun "$work/clusterrun" -goapp "$work/goapp" \
  -clk-tck "$(getconf CLK_TCK)" -invoked "$invoked" -out "$out" $loadflag "$@"
echo "written: $out" >&2
