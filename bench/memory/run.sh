#!/usr/bin/env bash
# Where clusterrun's memory goes: /proc/PID/smaps of the runner and its
# guard, by kind of mapping (the binary's text, rodata and data as mapped,
# anonymous memory, stacks), with 8 instances of the Node hello app, idle
# and while `clusterrun status` runs every 0.5 s; the guard alone; the
# floor (a Go program that only serves JSON over HTTP on a unix socket);
# pm2's daemon the same way.
#
#   bench/memory/run.sh            # 3 repetitions, status polled for 150 s
#   bench/memory/run.sh -reps 1 -poll 20s
#
# Output: bench/out/memory-DATE.md.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
(cd "$repo" && go build -o "$work/bench-memory" ./bench/memory && CGO_ENABLED=0 go build -trimpath -o "$work/floor" ./bench/memory/floor)
out="$repo/bench/out/memory-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/bench-memory" -clusterrun "$work/clusterrun" -pm2 "$pm2" -floor "$work/floor" \
  -hello "$repo/bench/reload/hello.js" -work "$work" "$@" | tee "$out"
echo "written: $out" >&2
