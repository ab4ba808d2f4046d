// Command throughput measures what each way of running N instances of an
// HTTP app on one port costs in throughput, latency and spread, against the
// limit of N processes accepting on one inherited socket with no runner at
// all, on loopback:
//
//   - apps: the Go hello app (bench/throughput/goapp) and the Node one
//     (bench/reload/hello.js, which calls listen(PORT));
//   - N = 2 and 4 instances;
//   - keep-alive connections, and a new connection per request;
//   - targets: limit (no runner), clusterrun with each listener mode
//     (shared, reuseport, proxy), and for Node pm2's cluster mode and Node's
//     cluster module (round-robin and SCHED_NONE).
//
// For each cell it prints req/s, the ratio to the limit, the p99 latency,
// the busiest instance's share of the responses, failed requests, and the
// supervising process's CPU and PSS idle and under load, as min / median /
// max over repetitions.
//
// Run it through bench/throughput/run.sh, which installs pm2 and wrk and
// builds the binaries. Nothing else heavy should run meanwhile.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/throughput/harness"
)

var (
	paths harness.Paths

	appsFlag    = flag.String("apps", harness.Apps, "apps to run: go,node")
	nFlag       = flag.String("n", "2,4", "instance counts")
	shapesFlag  = flag.String("shapes", "keepalive,close", "traffic shapes: keepalive, close (Connection: close)")
	targetsFlag = flag.String("targets", harness.Targets, "targets, in table order (pm2 and cluster-* run Node only)")
	reps        = flag.Int("reps", 3, "repetitions of every cell")
	duration    = flag.Duration("duration", 10*time.Second, "load per cell (wrk -d, whole seconds)")
	warmup      = flag.Duration("warmup", 2*time.Second, "unmeasured load of the same shape before each idle window (JIT, caches); 0 skips it")
	idle        = flag.Duration("idle", 2*time.Second, "idle window before each load, for the runner's idle CPU")
	threads     = flag.Int("threads", 2, "wrk threads (-t)")
	conns       = flag.Int("conns", 64, "concurrent connections (-c)")
	timeout     = flag.Duration("timeout", 2*time.Second, "per-request timeout (wrk's default)")
	tool        = flag.String("load", "wrk", "load generator: wrk, or go (bench/loadgen)")
	wrk         = flag.String("wrk", "wrk", "wrk binary")
	clkTck      = flag.Int("clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	out         = flag.String("out", "", "also write the report to this file")
	invoked     = flag.String("invoked", "", "the run.sh command line, for the header")
)

func init() {
	flag.StringVar(&paths.Work, "work", "", "scratch directory (pm2's home is WORK/pm2home)")
	flag.StringVar(&paths.Clusterrun, "clusterrun", "", "clusterrun binary")
	flag.StringVar(&paths.PM2, "pm2", "", "pm2 binary (from npm install pm2)")
	flag.StringVar(&paths.GoApp, "goapp", "", "bench/throughput/goapp binary")
	flag.StringVar(&paths.HelloJS, "hello", "", "bench/reload/hello.js")
	flag.StringVar(&paths.LimitJS, "limitjs", "", "bench/throughput/limit.js")
	flag.StringVar(&paths.ClusterJS, "clusterjs", "", "bench/throughput/cluster.js")
}

// cell is one table row of one table.
type cell struct {
	app, shape, target string
	n                  int
}

// sample is one repetition of a cell.
type sample struct {
	harness.Measurement
	idle harness.Usage
}

func main() {
	harness.MaybeShim()
	flag.Parse()
	os.Exit(run())
}

func run() int {
	if paths.Work == "" || paths.Clusterrun == "" || paths.GoApp == "" || paths.HelloJS == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/throughput/run.sh")
		return 2
	}
	ns, err := ints(*nFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	apps, shapes, targets := split(*appsFlag), split(*shapesFlag), split(*targetsFlag)
	for _, s := range shapes {
		if s != "keepalive" && s != "close" {
			fmt.Fprintf(os.Stderr, "unknown shape %q (keepalive, close)\n", s)
			return 2
		}
	}
	for _, a := range apps {
		if _, err := paths.App(a); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	usesPM2 := false
	for _, t := range targets {
		if _, err := paths.New(t, harness.App{Name: "node"}, 1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		usesPM2 = usesPM2 || t == "pm2"
	}
	if usesPM2 {
		defer harness.KillPM2(paths.PM2, paths.Work)
	}

	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	load := harness.Load{Tool: *tool, Wrk: *wrk, Threads: *threads, Conns: *conns, Duration: *duration, Timeout: *timeout}
	if *tool == "wrk" {
		if load.Script, err = harness.WriteWrkScript(paths.Work, *threads); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	} else if *tool != "go" {
		fmt.Fprintf(os.Stderr, "unknown load generator %q (wrk, go)\n", *tool)
		return 2
	}

	// An interrupt stops the cell in progress, which stops its target.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := harness.Machine{Title: "Throughput: N instances on one port, with and without a runner", Invoked: *invoked, Work: paths.Work, ClkTck: *clkTck}
	if usesPM2 {
		m.PM2 = paths.PM2
	}
	closeLoad := load
	closeLoad.Close = true
	if *tool == "wrk" {
		m.Wrk = *wrk
	}
	m.Notes = []string{
		"load:    keep-alive: " + load.Describe(),
		"         close:      " + closeLoad.Describe(),
		"         (127.0.0.1 only; the Lua script counts responses by the pid in their body)",
		fmt.Sprintf("cells:   apps %s; N %s; shapes %s; targets %s; %d repetition(s), each a fresh start of the target;",
			*appsFlag, *nFlag, *shapesFlag, *targetsFlag, *reps),
		fmt.Sprintf("         before each load: a check that all N instances answer, %s of unmeasured warm-up load, a %s idle window", *warmup, *idle),
		"columns: req/s = complete 2xx responses per second; x limit = median req/s / the limit's median req/s (same app, N, shape);",
		"         p99 = 99th percentile latency (wrk: request written to response read, connect excluded); busiest = the busiest",
		"         instance's responses / fair share (1.00 = even, N = one instance took everything); failed = requests that failed;",
		"         x haproxy = median req/s / haproxy's median req/s (same app, N, shape); haproxy and nginx are Debian's, in their",
		"         default threads/workers, on the same instances (each binding its own port), with a config made for the run:",
		"         haproxy mode tcp + balance leastconn, nginx stream + least_conn;",
		"         runner = the supervising process only (clusterrun up; pm2's daemon; the cluster primary; haproxy; nginx's master",
		"         and workers), not the instances: CPU/req = its utime+stime over the load / complete responses, in microseconds;",
		"         CPU = utime+stime delta from /proc/PID/stat over the window in % of one core, PSS = the supervisor process's proportional set size from /proc/PID/smaps_rollup (under load: its peak; clusterrun's guard not included)",
		"         figures are min / median / max over the repetitions",
	}
	m.Write(w)

	results := map[cell][]sample{}
	var order []cell
	for rep := 1; rep <= *reps; rep++ {
		for _, app := range apps {
			a, _ := paths.App(app)
			for _, n := range ns {
				for _, tn := range targets {
					if harness.NodeOnly(tn) && app != "node" {
						continue
					}
					t, err := paths.New(tn, a, n)
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						return 2
					}
					s, err := harness.Launch(ctx, t, n, *clkTck)
					if err != nil {
						fmt.Fprintf(os.Stderr, "FAIL %s app, %d instances, %s: %v\n", app, n, tn, why(ctx, err))
						return 1
					}
					for _, shape := range shapes {
						c := cell{app, shape, tn, n}
						if rep == 1 {
							order = append(order, c)
						}
						sm, err := measure(ctx, s, load, shape == "close")
						if err != nil {
							s.Close()
							fmt.Fprintf(os.Stderr, "FAIL %s app, %d instances, %s, %s: %v\n", app, n, shape, tn, why(ctx, err))
							return 1
						}
						results[c] = append(results[c], sm)
						fmt.Fprintf(os.Stderr, "rep %d  %-4s n=%d %-9s %-12s %8.0f req/s  p99 %-8s failed %d  spread %s  runner CPU idle %s load %s (%s µs/req), PSS idle %s load %s\n",
							rep, app, n, shape, tn, sm.Rate(), sm.P99.Round(10*time.Microsecond), sm.Errors, sm.Spread(),
							pct(sm.idle.CPU), pct(sm.CPU), perReq(sm.PerRequest(*clkTck)), mib(sm.idle.PSS, sm.idle.CPU), mib(sm.PSS, sm.CPU))
						if sm.Errors > 0 {
							fmt.Fprintf(os.Stderr, "      failed: %s\n", sm.ErrText)
						}
					}
					s.Close()
				}
			}
		}
	}
	printTables(w, order, results)
	return 0
}

// measure checks that all instances answer, warms them up, measures the
// idle runner, then puts the load on.
func measure(ctx context.Context, s *harness.Session, load harness.Load, closeConn bool) (sample, error) {
	if err := s.Check(ctx); err != nil {
		return sample{}, err
	}
	load.Close = closeConn
	if *warmup > 0 {
		warm := load
		warm.Duration = *warmup
		if _, err := s.Load(ctx, warm); err != nil {
			return sample{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	iu, err := s.Idle(ctx, *idle)
	if err != nil {
		return sample{}, err
	}
	m, err := s.Load(ctx, load)
	if err != nil {
		return sample{}, err
	}
	return sample{Measurement: m, idle: iu}, nil
}

func printTables(w io.Writer, order []cell, results map[cell][]sample) {
	type table struct {
		app, shape string
		n          int
	}
	var tables []table
	seen := map[table]bool{}
	for _, c := range order {
		k := table{c.app, c.shape, c.n}
		if !seen[k] {
			seen[k] = true
			tables = append(tables, k)
		}
	}
	for _, tb := range tables {
		shape := fmt.Sprintf("%d keep-alive connections", *conns)
		if tb.shape == "close" {
			shape = fmt.Sprintf("%d connections, a new one per request (Connection: close)", *conns)
		}
		fmt.Fprintf(w, "\n### %s app, %d instances, %s\n\n", tb.app, tb.n, shape)
		limit := report.Median(report.Values(results[cell{tb.app, tb.shape, "limit", tb.n}], func(s sample) float64 { return s.Rate() }))
		haproxy := report.Median(report.Values(results[cell{tb.app, tb.shape, "haproxy", tb.n}], func(s sample) float64 { return s.Rate() }))
		// The http mode's anchor, when it ran: nginx in front of the same
		// instances with a keep-alive pool (issue 18's targets are ratios
		// to it).
		nginxHTTP := report.Median(report.Values(results[cell{tb.app, tb.shape, "nginx-http", tb.n}], func(s sample) float64 { return s.Rate() }))
		heads := []string{"target", "req/s", "x limit", "x haproxy"}
		if nginxHTTP > 0 {
			heads = append(heads, "x nginx-http")
		}
		t := harness.NewTable(append(heads, "p99 ms", "busiest", "failed",
			"runner CPU idle", "runner CPU load", "runner CPU/req µs", "runner PSS idle MiB", "runner PSS load MiB")...)
		for _, c := range order {
			if c.app != tb.app || c.shape != tb.shape || c.n != tb.n {
				continue
			}
			rs := results[c]
			ratio, vsHAProxy, vsNginx := "n/a", "n/a", "n/a"
			if med := report.Median(report.Values(rs, func(s sample) float64 { return s.Rate() })); !math.IsNaN(med) {
				if limit > 0 {
					ratio = fmt.Sprintf("%.2f", med/limit)
				}
				if haproxy > 0 {
					vsHAProxy = fmt.Sprintf("%.2f", med/haproxy)
				}
				if nginxHTTP > 0 {
					vsNginx = fmt.Sprintf("%.2f", med/nginxHTTP)
				}
			}
			sup := func(s sample) bool { return !math.IsNaN(s.CPU) }
			cols := []string{report.Stat(report.Values(rs, func(s sample) float64 { return s.Rate() }), "%.0f"), ratio, vsHAProxy}
			if nginxHTTP > 0 {
				cols = append(cols, vsNginx)
			}
			t.Row(append([]string{c.target}, append(cols,
				report.Stat(report.Values(rs, func(s sample) float64 { return s.P99.Seconds() * 1000 }), "%.2f"),
				report.Stat(report.Values(rs, func(s sample) float64 { return s.Share(c.n) }), "%.2f"),
				report.Stat(report.Values(rs, func(s sample) float64 { return float64(s.Errors) }), "%.0f"),
				report.Stat(report.Values(rs, func(s sample) float64 { return s.idle.CPU }), "%.1f%%"),
				report.Stat(report.Values(rs, func(s sample) float64 { return s.CPU }), "%.1f%%"),
				report.Stat(report.Values(rs, func(s sample) float64 { return s.PerRequest(*clkTck) }), "%.2f"),
				report.Stat(report.Values(rs, func(s sample) float64 { return ifSup(sup(s), harness.MiB(float64(s.idle.PSS))) }), "%.1f"),
				report.Stat(report.Values(rs, func(s sample) float64 { return ifSup(sup(s), harness.MiB(float64(s.PSS))) }), "%.1f"),
			)...)...)
		}
		t.Write(w)
	}
}

// why is err, or "interrupted" when ctx was cancelled by a signal.
func why(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return err
}

func ifSup(ok bool, v float64) float64 {
	if !ok {
		return math.NaN()
	}
	return v
}

func perReq(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v)
}

func mib(b int64, cpu float64) string {
	if math.IsNaN(cpu) {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", harness.MiB(float64(b)))
}

func split(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, x := range split(s) {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("bad instance count %q (1..64)", x)
		}
		out = append(out, n)
	}
	return out, nil
}
