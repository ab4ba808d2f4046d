// Command dataplane checks that clusterrun's runner stays off the data path
// in shared mode: with the Go hello app (bench/throughput/goapp) as 2
// instances on one shared socket and a new connection per request
// (wrk -t2 -c64 -d10s -H 'Connection: close' on 127.0.0.1), it measures
//
//   - the runner process's CPU over the load window (utime+stime delta of
//     `clusterrun up` alone, from /proc/PID/stat, in % of one core);
//   - the throughput under clusterrun against the same app on one inherited
//     socket with no runner at all (the limit of bench/throughput), in
//     paired runs — limit, then clusterrun — reporting each pair and the
//     median of the pairs' ratios;
//   - the runner's PSS with 8 idle instances.
//
// Targets: runner CPU < 1% of a core, throughput >= 0.97 x limit, PSS <=
// 10 MiB. Run it through bench/dataplane/run.sh.
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
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/throughput/harness"
)

var (
	paths harness.Paths

	pairs    = flag.Int("pairs", 5, "paired runs (limit, then clusterrun)")
	n        = flag.Int("n", 2, "instances in the paired runs")
	idleN    = flag.Int("idle-instances", 8, "instances for the idle-PSS measurement; 0 skips it")
	duration = flag.Duration("duration", 10*time.Second, "load per run (wrk -d, whole seconds)")
	warmup   = flag.Duration("warmup", 2*time.Second, "unmeasured load on each target before the pairs; 0 skips it")
	idle     = flag.Duration("idle", 2*time.Second, "idle window for the runner's idle CPU and PSS")
	threads  = flag.Int("threads", 2, "wrk threads (-t)")
	conns    = flag.Int("conns", 64, "concurrent connections (-c)")
	timeout  = flag.Duration("timeout", 2*time.Second, "per-request timeout (wrk's default)")
	tool     = flag.String("load", "wrk", "load generator: wrk, or go (bench/loadgen)")
	wrk      = flag.String("wrk", "wrk", "wrk binary")
	clkTck   = flag.Int("clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	out      = flag.String("out", "", "also write the report to this file")
	invoked  = flag.String("invoked", "", "the run.sh command line, for the header")

	maxCPU   = flag.Float64("target-cpu", 1, "target: runner CPU under load below this % of one core")
	minRatio = flag.Float64("target-ratio", 0.97, "target: clusterrun/limit throughput at least this")
	maxPSS   = flag.Float64("target-pss", 10, "target: runner PSS with -idle-instances idle instances at most this many MiB")
)

func init() {
	flag.StringVar(&paths.Work, "work", "", "scratch directory")
	flag.StringVar(&paths.Clusterrun, "clusterrun", "", "clusterrun binary")
	flag.StringVar(&paths.GoApp, "goapp", "", "bench/throughput/goapp binary")
}

func main() {
	harness.MaybeShim()
	flag.Parse()
	os.Exit(run())
}

func run() int {
	if paths.Work == "" || paths.Clusterrun == "" || paths.GoApp == "" || *pairs < 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: see bench/dataplane/run.sh")
		return 2
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
	load := harness.Load{Tool: *tool, Wrk: *wrk, Threads: *threads, Conns: *conns, Duration: *duration, Close: true, Timeout: *timeout}
	m := harness.Machine{Title: "Data path: clusterrun's runner in shared mode against no runner", Invoked: *invoked, Work: paths.Work, ClkTck: *clkTck}
	switch *tool {
	case "wrk":
		var err error
		if load.Script, err = harness.WriteWrkScript(paths.Work, *threads); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		m.Wrk = *wrk
	case "go":
	default:
		fmt.Fprintf(os.Stderr, "unknown load generator %q (wrk, go)\n", *tool)
		return 2
	}
	m.Notes = []string{
		"load:    " + load.Describe() + " (127.0.0.1 only)",
		fmt.Sprintf("app:     bench/throughput/goapp, %d instances; limit = the same binaries on one socket the benchmark binds, no runner;", *n),
		"         clusterrun = `clusterrun up`, listener mode \"shared\", ready check notify",
		fmt.Sprintf("method:  both targets started once; %s of unmeasured load on each; then %d pairs, each the limit then clusterrun,", *warmup, *pairs),
		"         every run preceded by a check that all instances answer. Runner CPU = utime+stime delta of the clusterrun",
		"         process alone (/proc/PID/stat, not its children) over the load window, in % of one core.",
	}
	m.Write(w)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app, _ := paths.App("go")
	err := pairsRun(ctx, w, app, load)
	if err == nil && *idleN > 0 {
		err = idlePSS(ctx, w, app)
	}
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return 0
}

func pairsRun(ctx context.Context, w io.Writer, app harness.App, load harness.Load) error {
	limitT, _ := paths.New("limit", app, *n)
	crT, _ := paths.New("shared", app, *n)
	limit, err := harness.Launch(ctx, limitT, *n, *clkTck)
	if err != nil {
		return err
	}
	defer limit.Close()
	cr, err := harness.Launch(ctx, crT, *n, *clkTck)
	if err != nil {
		return err
	}
	defer cr.Close()

	if *warmup > 0 {
		warm := load
		warm.Duration = *warmup
		for _, s := range []*harness.Session{limit, cr} {
			if _, err := s.Load(ctx, warm); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	idleUse, err := cr.Idle(ctx, *idle)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nrunner idle (%d instances, %s window after the warm-up): CPU %.2f%% of a core, PSS %.1f MiB\n\n",
		*n, *idle, idleUse.CPU, harness.MiB(float64(idleUse.PSS)))

	t := harness.NewTable("pair", "limit req/s", "clusterrun req/s", "clusterrun/limit", "runner CPU", "runner PSS MiB", "limit p99 ms", "clusterrun p99 ms", "failed")
	var ratios, cpus []float64
	for i := 1; i <= *pairs; i++ {
		var ms [2]harness.Measurement
		for j, s := range []*harness.Session{limit, cr} {
			if err := s.Check(ctx); err != nil {
				return err
			}
			if ms[j], err = s.Load(ctx, load); err != nil {
				return err
			}
		}
		l, c := ms[0], ms[1]
		ratio := c.Rate() / l.Rate()
		ratios, cpus = append(ratios, ratio), append(cpus, c.CPU)
		row := []string{strconv.Itoa(i), fmt.Sprintf("%.0f", l.Rate()), fmt.Sprintf("%.0f", c.Rate()), fmt.Sprintf("%.3f", ratio),
			fmt.Sprintf("%.2f%%", c.CPU), fmt.Sprintf("%.1f", harness.MiB(float64(c.PSS))),
			fmt.Sprintf("%.2f", l.P99.Seconds()*1000), fmt.Sprintf("%.2f", c.P99.Seconds()*1000), fmt.Sprintf("%d / %d", l.Errors, c.Errors)}
		t.Row(row...)
		fmt.Fprintf(os.Stderr, "pair %d: limit %.0f req/s, clusterrun %.0f req/s, ratio %.3f, runner CPU %.2f%%\n", i, l.Rate(), c.Rate(), ratio, c.CPU)
		for j, x := range ms {
			if x.Errors > 0 {
				fmt.Fprintf(os.Stderr, "      %s failed: %s\n", []string{"limit", "clusterrun"}[j], x.ErrText)
			}
		}
	}
	t.Write(w)
	ratio, cpu := report.Median(ratios), report.Median(cpus)
	fmt.Fprintf(w, "\nmedian of %d pairs: clusterrun/limit %.3f (min %.3f, max %.3f); runner CPU %.2f%% of a core (max %.2f%%)\n",
		*pairs, ratio, minOf(ratios), maxOf(ratios), cpu, maxOf(cpus))
	fmt.Fprintf(w, "target runner CPU < %g%% of a core: %s\n", *maxCPU, verdict(cpu < *maxCPU))
	fmt.Fprintf(w, "target throughput >= %.2f x limit: %s\n", *minRatio, verdict(ratio >= *minRatio))
	return nil
}

func idlePSS(ctx context.Context, w io.Writer, app harness.App) error {
	t, _ := paths.New("shared", app, *idleN)
	s, err := harness.Launch(ctx, t, *idleN, *clkTck)
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := s.Idle(ctx, *idle)
	if err != nil {
		return err
	}
	mib := harness.MiB(float64(u.PSS))
	fmt.Fprintf(w, "\nrunner with %d idle instances (shared, Go app), after a %s idle window: PSS %.1f MiB (%d KiB), CPU %.2f%% of a core\n",
		*idleN, *idle, mib, u.PSS>>10, u.CPU)
	fmt.Fprintf(w, "target PSS <= %g MiB: %s\n", *maxPSS, verdict(mib <= *maxPSS))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}
