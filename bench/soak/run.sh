#!/usr/bin/env bash
# Soak test: clusterrun running the Go example (examples/go-http, 4
# instances on one listener: shared, or behind the runner's proxy with
# -mode proxy) for a long time under continuous load on 127.0.0.1
# (Connection: close, and in proxy mode keep-alive connections beside it),
# with a SIGHUP rolling reload every 20s and a kill -9 of a random instance
# every 7s. It prints the failed requests by kind and shape, the restarts
# and reloads the runner counted, and the runner's own PSS (with its
# guard), descriptors and goroutines (from `status --json`) at the start,
# every minute and at the end.
#
#   bench/soak/run.sh                              # 30 minutes, shared listener
#   bench/soak/run.sh -mode proxy                  # 30 minutes, proxy mode, both shapes
#   bench/soak/run.sh -mode proxy -duration 1m     # smoke run
#
# Every argument goes to the driver (main.go: -mode -duration -reload-every
# -kill-every -sample-every -conns -keepalive-conns -timeout). It is not a
# CI test: run it by hand, on a machine that is otherwise quiet.
# Output: stdout and bench/out/soak-DATE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
invoked="$0 $*"
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-soak-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "building clusterrun, examples/go-http and the driver into $work" >&2
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/clusterrun" . && go build -o "$work/go-http" ./examples/go-http &&
  go build -o "$work/soak" ./bench/soak)
mkdir -p "$repo/bench/out"
out="$repo/bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/soak" -clusterrun "$work/clusterrun" -goapp "$work/go-http" -work "$work" -invoked "$invoked" "$@" | tee "$out"
echo "written: $out" >&2
