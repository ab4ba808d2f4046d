#!/usr/bin/env bash
# What clusterrun's Node preload costs a Node app per request: the reload
# benchmark's hello app (bench/reload/hello.js) run bare, listening on
# $PORT itself, against the same app given its socket as clusterrun gives
# it (fd 3, LISTEN_FDS, the preload in NODE_OPTIONS). A fresh process for
# every measurement, variants interleaved round by round, one wrk thread
# and 16 keep-alive connections on 127.0.0.1, 2 s of warm-up first. The
# app's CPU per request is its utime + stime over the load / responses.
#
#   bench/preload/run.sh                          # 8 rounds of 3 s
#   bench/preload/run.sh -rounds 12 -duration 5
#   bench/preload/run.sh -compare OLD.js          # and a second preload file,
#       e.g. git show REV:listeners/node_preload.js > /tmp/old.js
#
# Output: stdout and bench/out/preload-DATE.md. Needs node, python3 and wrk.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
invoked="$0 $*"
rounds=8 duration=3 compare=""
while [ $# -gt 0 ]; do
  case $1 in
    -rounds) rounds=$2; shift 2 ;;
    -duration) duration=${2%s}; shift 2 ;;
    -compare) compare=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    *) echo "usage: $0 [-rounds N] [-duration SECONDS] [-compare PRELOAD.js]" >&2; exit 2 ;;
  esac
done
for tool in node python3 wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is required (bench/throughput/run.sh installs wrk)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/clusterrun-preload-XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
app="$repo/bench/reload/hello.js"
tck=$(getconf CLK_TCK)

# launch.py PORT PRELOAD: binds 127.0.0.1:PORT as clusterrun does for an
# instance (fd 3, blocking) and execs node with the preload, keeping its pid
# (LISTEN_PID). PRELOAD "-" runs the app bare: it binds PORT itself.
cat > "$work/launch.py" <<'PY'
import json, os, socket, sys
port, preload, app = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(os.environ, PORT=port)
if preload != "-":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    env.update(LISTEN_FDS="1", LISTEN_FDNAMES="http", LISTEN_PID=str(os.getpid()),
               CLUSTERRUN_LISTEN_PORTS=port + "=3",
               # quoted as the runner quotes it (strconv.Quote; JSON's
               # string is the same for a path), so a path with a blank or
               # a quote reaches Node whole.
               NODE_OPTIONS="--require " + json.dumps(preload))
os.execvpe("node", ["node", app], env)
PY

variants=("bare:-" "preload:$repo/listeners/node_preload.js")
[ -n "$compare" ] && variants+=("compare:$compare")
port=$((20000 + RANDOM % 20000))
for round in $(seq "$rounds"); do
  for v in "${variants[@]}"; do
    name=${v%%:*} file=${v#*:}
    port=$((port + 1))
    python3 "$work/launch.py" "$port" "$file" "$app" >"$work/app.log" 2>&1 &
    pid=$!
    ok=""
    for _ in $(seq 100); do # up to 10 s for the app to answer
      if curl -fs -o /dev/null "http://127.0.0.1:$port/"; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { echo "$name did not answer on 127.0.0.1:$port within 10 s:" >&2; cat "$work/app.log" >&2; exit 1; }
    wrk -t1 -c16 -d2s "http://127.0.0.1:$port/" >/dev/null
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(wrk -t1 -c16 -d"${duration}s" "http://127.0.0.1:$port/")
    c2=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$name $rps $(awk -v c=$((c2 - c1)) -v t="$tck" -v n="$reqs" 'BEGIN {printf "%.2f", c * 1e6 / t / n}')"
    echo "round $round $name: $rps req/s" >&2
  done
done >"$work/samples"

mkdir -p "$repo/bench/out"
out="$repo/bench/out/preload-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# What the Node preload costs a Node app per request"
  echo
  echo "invoked: $invoked"
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: nproc $(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), node $(node --version)"
  echo "load:    wrk -t1 -c16 -d${duration}s, keep-alive, 127.0.0.1; $rounds rounds, a fresh app per measurement, variants interleaved"
  echo "columns: min / median / max over the rounds; x bare = median / bare's median; CPU/req = the app's utime+stime / responses"
  echo
  echo "| variant | req/s | x bare | app CPU/req µs |"
  echo "| ------- | ----- | ------ | -------------- |"
  # mawk (Debian's awk) has no asort: sort(1) orders each column.
  col() { awk -v v="$1" -v c="$2" '$1 == v {print $c}' "$work/samples" | sort -g; }
  med() { col "$1" "$2" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
  mmm() { col "$1" "$2" | awk -v f="$3" '{a[NR] = $1} END {printf f " / " f " / " f, a[1], a[int((NR + 1) / 2)], a[NR]}'; }
  base=$(med bare 2)
  for v in "${variants[@]}"; do
    name=${v%%:*}
    printf '| %s | %s | %s | %s |\n' "$name" "$(mmm "$name" 2 %.0f)" \
      "$(awk -v m="$(med "$name" 2)" -v b="$base" 'BEGIN {printf "%.2f", m / b}')" "$(mmm "$name" 3 %.2f)"
  done
  [ -n "$compare" ] && echo && echo "compare: $compare"
} | tee "$out"
echo "written: $out" >&2
