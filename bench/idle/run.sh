#!/usr/bin/env bash
# Idle proxy clients: what -clients idle TCP clients of a proxy listener
# cost the runner (descriptors, PSS, USS, RSS), whether a killed instance
# still restarts and the control socket still answers with them connected,
# and how fast the runner gives their descriptors back once they leave.
# The Go example (examples/go-http), 4 instances, on 127.0.0.1.
#
#   bench/idle/run.sh                      # 10,000 clients from 4 processes
#   bench/idle/run.sh -clients 20000 -procs 8
#
# The client processes inherit this shell's descriptor limit: raise it up
# to the hard limit first (ulimit -n "$(ulimit -Hn)") if -clients / -procs
# is near it. It is not a CI test: run it by hand.
# Output: stdout and bench/out/idle-DATE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
invoked="$0 $*"
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-idle-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building clusterrun, examples/go-http and the driver into $work" >&2
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/clusterrun" . && go build -o "$work/go-http" ./examples/go-http &&
  go build -o "$work/idle" ./bench/idle)
mkdir -p "$repo/bench/out"
out="$repo/bench/out/idle-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/idle" -clusterrun "$work/clusterrun" -goapp "$work/go-http" -work "$work" -invoked "$invoked" "$@" | tee "$out"
echo "written: $out" >&2
