package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// maxRequests bounds every load run by count as well as by time: far more
// than a 2-core machine answers in a minute, so the time bound is the one
// that ends a normal run.
const maxRequests = 50_000_000

// Load describes one load run against http://ADDR/.
type Load struct {
	// Tool is "wrk" or "go" (bench/loadgen).
	Tool string
	// Wrk is the wrk binary and Script the Lua script from WriteWrkScript.
	Wrk, Script string
	// Threads is wrk's -t (the Go load generator ignores it).
	Threads int
	// Conns is the number of concurrent connections.
	Conns    int
	Duration time.Duration
	// Close sends "Connection: close": a new connection per request.
	Close bool
	// Timeout bounds one request.
	Timeout time.Duration
}

// Result is what one load run saw.
type Result struct {
	// Requests is the number of complete responses.
	Requests int64
	Seconds  float64
	// P99 is the 99th percentile latency. wrk measures from writing the
	// request to the end of the response (connect time not included);
	// bench/loadgen includes connecting.
	P99 time.Duration
	// Errors counts failed requests: connect, read, write, timeout, non-2xx.
	Errors  int64
	ErrText string
	// PIDs counts responses by the pid in their body; nil when not counted.
	PIDs map[int]int64
}

// Rate is responses per second.
func (r Result) Rate() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

// Share is the busiest instance's responses over a fair share (all
// responses / n): 1 is a perfect spread, n means one instance answered
// everything. NaN when pids were not counted.
func (r Result) Share(n int) float64 {
	var total, most int64
	for _, c := range r.PIDs {
		total += c
		most = max(most, c)
	}
	if total == 0 || n == 0 {
		return math.NaN()
	}
	return float64(most) / (float64(total) / float64(n))
}

// Spread lists the per-instance counts, busiest first, as "52%/48%".
func (r Result) Spread() string {
	var total int64
	var cs []int64
	for _, c := range r.PIDs {
		total += c
		cs = append(cs, c)
	}
	if total == 0 {
		return "-"
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] > cs[j] })
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%.0f%%", 100*float64(c)/float64(total))
	}
	return strings.Join(parts, "/")
}

// wrkScript counts responses by the "pid" field of their JSON body, per wrk
// thread, and prints the totals in done() as lines the harness parses. The
// response() hook also stops a thread after its share of maxRequests, so
// that a run is bounded by count as well as by -d.
const wrkScript = `-- written by bench/throughput/harness: count responses per pid
local threads = {}
local cap = %d

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  pids = {}
  n = 0
end

function response(status, headers, body)
  n = n + 1
  if n >= cap then wrk.thread:stop() end
  local p = string.match(body, '"pid":(%%d+)')
  if p then pids[p] = (pids[p] or 0) + 1 end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%%d duration_us=%%d p99_us=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d\n",
    summary.requests, summary.duration, latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
  for _, t in ipairs(threads) do
    for p, c in pairs(t:get("pids")) do
      io.write(string.format("PID %%s %%d\n", p, c))
    end
  end
end
`

// WriteWrkScript writes the Lua script for threads wrk threads into dir and
// returns its path.
func WriteWrkScript(dir string, threads int) (string, error) {
	path := filepath.Join(dir, "pids.lua")
	return path, os.WriteFile(path, []byte(fmt.Sprintf(wrkScript, maxRequests/max(threads, 1))), 0o644)
}

// Command is the exact wrk command line for addr.
func (l Load) Command(addr string) []string {
	secs := int(math.Ceil(l.Duration.Seconds()))
	argv := []string{l.Wrk, "-t" + strconv.Itoa(l.Threads), "-c" + strconv.Itoa(l.Conns), "-d" + strconv.Itoa(secs) + "s",
		"--timeout", l.Timeout.String(), "-s", l.Script}
	if l.Close {
		argv = append(argv, "-H", "Connection: close")
	}
	return append(argv, "http://"+addr+"/")
}

// Describe says how the load is made, for a report header.
func (l Load) Describe() string {
	if l.Tool == "go" {
		shape := "keep-alive"
		if l.Close {
			shape = "Connection: close"
		}
		return fmt.Sprintf("bench/loadgen, %d connections, %s, %s, %s timeout per request", l.Conns, l.Duration, shape, l.Timeout)
	}
	return shellJoin(l.Command("127.0.0.1:PORT"))
}

// Run drives the load against addr (host:port on loopback) and returns when
// it ends: after Duration, or maxRequests, or when ctx is done.
func (l Load) Run(ctx context.Context, addr string) (Result, error) {
	if !strings.HasPrefix(addr, "127.") {
		return Result{}, fmt.Errorf("refusing to load %s: loopback only", addr)
	}
	if l.Tool == "go" {
		return l.runGo(ctx, addr), nil
	}
	return l.runWrk(ctx, addr)
}

func (l Load) runWrk(ctx context.Context, addr string) (Result, error) {
	// wrk stops by itself after -d; the deadline is for a wrk that hangs.
	ctx, cancel := context.WithTimeout(ctx, l.Duration+l.Timeout+30*time.Second)
	defer cancel()
	argv := l.Command(addr)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("wrk: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	r, err := parseWrk(stdout.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("%w:\n%s%s", err, stdout.String(), stderr.String())
	}
	return r, nil
}

// parseWrk reads the lines wrkScript's done() prints.
func parseWrk(out []byte) (Result, error) {
	var r Result
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 1 && f[0] == "RESULT":
			found = true
			kv := map[string]int64{}
			for _, x := range f[1:] {
				k, v, _ := strings.Cut(x, "=")
				kv[k], _ = strconv.ParseInt(v, 10, 64)
			}
			// wrk counts non-2xx answers among its requests too; here they
			// are errors only.
			r.Requests = kv["requests"] - kv["status"]
			r.Seconds = float64(kv["duration_us"]) / 1e6
			r.P99 = time.Duration(kv["p99_us"]) * time.Microsecond
			r.Errors = kv["connect"] + kv["read"] + kv["write"] + kv["status"] + kv["timeout"]
			if r.Errors > 0 {
				r.ErrText = fmt.Sprintf("connect %d, read %d, write %d, non-2xx %d, timeout %d",
					kv["connect"], kv["read"], kv["write"], kv["status"], kv["timeout"])
			}
		case len(f) == 3 && f[0] == "PID":
			pid, err1 := strconv.Atoi(f[1])
			c, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				if r.PIDs == nil {
					r.PIDs = map[int]int64{}
				}
				r.PIDs[pid] += c
			}
		}
	}
	if !found {
		return Result{}, errors.New("wrk printed no RESULT line")
	}
	return r, nil
}

func (l Load) runGo(ctx context.Context, addr string) Result {
	t0 := time.Now()
	res := loadgen.Run(ctx, loadgen.Options{
		Addr: addr, Workers: l.Conns, KeepAlive: !l.Close,
		Duration: l.Duration, MaxRequests: maxRequests, Timeout: l.Timeout,
	})
	secs := time.Since(t0).Seconds()
	var ok []loadgen.Sample
	for _, s := range res.Samples {
		if s.Kind == loadgen.OK {
			ok = append(ok, s)
		}
	}
	r := Result{Requests: int64(len(ok)), Seconds: secs, P99: loadgen.Quantile(ok, 0.99), Errors: int64(loadgen.Failed(res.Samples))}
	if r.Errors > 0 {
		r.ErrText = loadgen.Summary(res, res.Samples)
	}
	r.PIDs = map[int]int64{}
	for pid, c := range loadgen.PIDs(res.Samples) {
		r.PIDs[pid] = int64(c)
	}
	return r
}

// WrkVersion returns the first line of `wrk -v`.
func WrkVersion(wrk string) string {
	out, _ := exec.Command(wrk, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " Copyright")
	if line == "" {
		return "?"
	}
	return strings.TrimSpace(line)
}
