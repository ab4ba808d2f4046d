#!/usr/bin/env bash
# Rolling-reload benchmark: the same unmodified Node app under clusterrun and
# under pm2 (cluster mode), plus the Go example under clusterrun, 4 instances
# each, 64 connections on 127.0.0.1 in keep-alive and Connection: close modes.
#
#   bench/reload/run.sh                 # 3 repetitions, all cases (about 25 minutes)
#   bench/reload/run.sh -reps 1 -cases crash -modes close
#
# It installs pm2 with npm into a scratch directory (PM2_HOME there too) and
# runs `pm2 kill` at the end. Nothing else heavy should run meanwhile: the
# machine's cores are the measurement. Output: bench/out/reload-DATE.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-bench-XXXXXX")
pm2="$work/npm/node_modules/.bin/pm2"
cleanup() {
  if [ -x "$pm2" ]; then PM2_HOME="$work/pm2home" "$pm2" kill >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

command -v node >/dev/null || { echo "node is required (apt-get install nodejs)"; exit 1; }
echo "installing pm2 ${PM2_VERSION:-latest} into $work/npm" >&2
npm install --silent --no-audit --no-fund --prefix "$work/npm" "pm2@${PM2_VERSION:-latest}" >&2
echo "building clusterrun and examples/go-http" >&2
(cd "$repo" && go build -o "$work/clusterrun" . && go build -o "$work/go-http" ./examples/go-http && go build -o "$work/bench-reload" ./bench/reload)

mkdir -p "$repo/bench/out"
out="$repo/bench/out/reload-$(date -u +%Y%m%dT%H%M%SZ).md"
"$work/bench-reload" -clusterrun "$work/clusterrun" -pm2 "$pm2" -goapp "$work/go-http" \
  -hello "$here/hello.js" -work "$work" "$@" | tee "$out"
echo "written: $out" >&2
