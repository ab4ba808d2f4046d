# Sourced by bench/throughput/run.sh and bench/dataplane/run.sh after they
# have set $repo and $work: installs wrk if it is missing (a Debian package)
# and builds the Go hello app into $work/goapp. Sets $loadflag to "-load go"
# (bench/loadgen) when wrk cannot be had.

loadflag=""
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq wrk) >&2 || true
  fi
  if ! command -v wrk >/dev/null; then
    echo "wrk is not available: falling back to the Go load generator (-load go)" >&2
    loadflag="-load go"
  fi
fi
echo "building bench/throughput/goapp" >&2
(cd "$repo" && go build -o "$work/goapp" ./bench/throughput/goapp)
