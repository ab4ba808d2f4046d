# Sourced by the bench/*/run.sh scripts: a scratch directory with pm2
# installed from npm (PM2_HOME inside it, `pm2 kill` on exit) and the
# binaries built from this checkout.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-bench-XXXXXX")
pm2="$work/npm/node_modules/.bin/pm2"
cleanup() {
  if [ -x "$pm2" ]; then PM2_HOME="$work/pm2home" "$pm2" kill >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

command -v node >/dev/null || { echo "node is required (apt-get install nodejs)" >&2; exit 1; }
echo "installing pm2 ${PM2_VERSION:-latest} into $work/npm" >&2
npm install --silent --no-audit --no-fund --prefix "$work/npm" "pm2@${PM2_VERSION:-latest}" >&2
echo "building clusterrun and examples/go-http" >&2
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/clusterrun" . && go build -o "$work/go-http" ./examples/go-http)
mkdir -p "$repo/bench/out"
