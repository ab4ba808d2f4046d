#!/usr/bin/env bash
# Log-path benchmark: one app prints 1,000,000 lines of 57 bytes as fast as
# it can, then sleeps. Measured: wall time until the last line is in the
# output file and the runner's own CPU (utime+stime from /proc/PID/stat),
# under `clusterrun up` with its stdout on a file, against the same app
# writing straight to a file. Linux only (/proc); nothing uses the network.
#
#   bench/logpath/run.sh                    # 5 repetitions, this checkout
#   bench/logpath/run.sh -reps 10 -chunk 8192
#   bench/logpath/run.sh --src /tmp/other-worktree -reps 3
#
# --src DIR builds clusterrun from another source tree (e.g. a git worktree
# of an older commit) while the driver is still built from this checkout.
# Every other argument goes to the driver (bench/logpath/main.go: -reps,
# -lines, -chunk, -timeout, -idle-instances). Nothing else heavy should run
# meanwhile: the machine's cores are the measurement.
# Output: bench/out/logpath-DATE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
invoked="$0 $*"
src=$repo
if [ "${1:-}" = "--src" ]; then
  src=$(cd "$2" && pwd)
  shift 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-logpath-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "building clusterrun from $src and the driver from $repo" >&2
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$work/clusterrun" .)
(cd "$repo" && go build -o "$work/logpath" ./bench/logpath)
rev=$(cd "$src" && git describe --always --dirty 2>/dev/null || echo unknown)

mkdir -p "$repo/bench/out"
out="$repo/bench/out/logpath-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "invoked: $invoked"
  "$work/logpath" -clusterrun "$work/clusterrun" -work "$work" \
    -clk-tck "$(getconf CLK_TCK)" -label "$src ($rev)" "$@"
} | tee "$out"
echo "written: $out" >&2
