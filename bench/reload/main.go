// Command reload measures what a rolling reload costs the clients of a
// 4-instance HTTP app: the same unmodified Node app (hello.js) under
// clusterrun (shared socket, and behind the proxy listener) and under pm2's
// cluster mode, and the Go example under clusterrun, while a load generator keeps 64 connections busy on loopback,
// with keep-alive and with a new connection per request.
//
// Cases: 10 consecutive reloads of a fast-booting release; one reload to a
// release that takes 5 s to boot; one reload to a release that crashes on
// boot. For each it prints the failed requests by kind, the p99 latency of
// the requests sent while a reload was in progress, and how long the reload
// took, as min/median/max over repeated runs.
//
// Run it through bench/reload/run.sh, which installs pm2 into a scratch
// directory and builds the binaries. Nothing else heavy should run on the
// machine meanwhile.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/runners"
)

var (
	setup       = runners.Flags()
	reps        = flag.Int("reps", 3, "repetitions of every scenario")
	conns       = flag.Int("conns", 64, "concurrent connections")
	reloads     = flag.Int("reloads", 10, "reloads in the fast case")
	timeout     = flag.Duration("timeout", 2*time.Second, "per-request timeout (wrk's default is 2s)")
	targetsFlag = flag.String("targets", runners.Names+",clusterrun-node-proxy", "what to measure (also: clusterrun-go-proxy)")
	casesFlag   = flag.String("cases", "fast,slow,crash", "which reload cases")
	modesFlag   = flag.String("modes", "close,keepalive", "connection modes")
)

func main() {
	flag.Parse()
	if setup.Clusterrun == "" || setup.Work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/reload/run.sh")
		os.Exit(2)
	}
	report.Header("clusterrun vs pm2: rolling reload under load", setup.PM2,
		fmt.Sprintf("load:    %d connections from a Go HTTP/1.1 client on 127.0.0.1, %s timeout per request, no retries", *conns, *timeout),
		"apps:    4 instances; pm2 and clusterrun-node run the same unmodified bench/reload/hello.js (listen(PORT))")
	type key struct{ target, mode, cas string }
	results := map[key][]run{}
	var order []key
	for rep := 1; rep <= *reps; rep++ {
		for _, tn := range strings.Split(*targetsFlag, ",") {
			for _, mode := range strings.Split(*modesFlag, ",") {
				for _, cas := range strings.Split(*casesFlag, ",") {
					k := key{tn, mode, cas}
					if rep == 1 {
						order = append(order, k)
					}
					t, err := setup.New(tn, 4)
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					r, err := scenario(t, mode, cas)
					if err != nil {
						fmt.Fprintf(os.Stderr, "%s %s %s rep %d: %v\n", tn, mode, cas, rep, err)
						os.Exit(1)
					}
					fmt.Fprintf(os.Stderr, "rep %d %-15s %-9s %-5s %s\n", rep, tn, mode, cas, r.brief())
					results[k] = append(results[k], r)
				}
			}
		}
	}
	for _, mode := range strings.Split(*modesFlag, ",") {
		for _, cas := range strings.Split(*casesFlag, ",") {
			fmt.Printf("\n### %s, %s (%d runs each; min / median / max)\n\n", caseTitle(cas), modeTitle(mode), *reps)
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "target\tok req/s\tfailed\trefused\treset\ttimeout\tnon-2xx\tp99 during reload\treload took\t")
			for _, k := range order {
				if k.mode != mode || k.cas != cas {
					continue
				}
				rs := results[k]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k.target,
					stat(rs, func(r run) float64 { return r.rate }, "%.0f"),
					stat(rs, func(r run) float64 { return float64(r.failed()) }, "%.0f"),
					stat(rs, func(r run) float64 { return float64(r.kinds[loadgen.Refused]) }, "%.0f"),
					stat(rs, func(r run) float64 { return float64(r.kinds[loadgen.Reset]) }, "%.0f"),
					stat(rs, func(r run) float64 { return float64(r.kinds[loadgen.Timeout]) }, "%.0f"),
					stat(rs, func(r run) float64 { return float64(r.kinds[loadgen.Non2xx]) }, "%.0f"),
					stat(rs, func(r run) float64 { return r.p99.Seconds() * 1000 }, "%.1fms"),
					stat(rs, func(r run) float64 { return r.took.Seconds() }, "%.2fs"),
				)
			}
			tw.Flush()
			printRatio(results[key{"pm2-node", mode, cas}], results[key{"clusterrun-node", mode, cas}])
		}
	}
}

func caseTitle(c string) string {
	return map[string]string{
		"fast":  fmt.Sprintf("%d consecutive reloads of a fast-booting release", *reloads),
		"slow":  "one reload to a release that boots in 5 s",
		"crash": "one reload to a release that crashes on boot",
	}[c]
}

func modeTitle(m string) string {
	if m == "keepalive" {
		return fmt.Sprintf("%d keep-alive connections", *conns)
	}
	return fmt.Sprintf("%d connections, Connection: close", *conns)
}

// run is one scenario's outcome.
type run struct {
	total int
	kinds [6]int
	// p99 is over the requests started while a reload was in progress.
	p99 time.Duration
	// took is the median duration of one reload.
	took time.Duration
	// rate is successful requests per second over the whole load run.
	rate float64
	errs map[loadgen.Kind][]string
}

func (r run) failed() int { return r.total - r.kinds[loadgen.OK] }

func (r run) brief() string {
	return fmt.Sprintf("%d requests (%.0f ok/s), %d failed %v, p99 %s, reload %s", r.total, r.rate, r.failed(), r.kinds[1:], r.p99.Round(100*time.Microsecond), r.took.Round(time.Millisecond))
}

// scenario starts t, puts load on it, performs the case's reloads and stops
// everything.
func scenario(t runners.Runner, mode, cas string) (run, error) {
	port, err := report.FreePort()
	if err != nil {
		return run{}, err
	}
	if err := t.Launch(port); err == nil {
		err = t.WaitReady(60 * time.Second)
	}
	if err != nil {
		t.Stop()
		return run{}, fmt.Errorf("start: %w", err)
	}
	defer t.Stop()
	n := 1
	if cas == "fast" {
		n = *reloads
	}
	if err := t.Release(cas); err != nil {
		return run{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *loadgen.Result, 1)
	go func() {
		done <- loadgen.Run(ctx, loadgen.Options{
			Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: *conns, KeepAlive: mode == "keepalive",
			Duration: 10 * time.Minute, MaxRequests: 50_000_000, Timeout: *timeout,
		})
	}()
	start := time.Now()
	time.Sleep(time.Second) // warm-up: the pool of connections fills
	type window struct{ from, to time.Duration }
	var windows []window
	var durs []float64 // seconds
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := t.Reload(); err != nil {
			cancel()
			<-done
			return run{}, fmt.Errorf("reload %d: %w", i+1, err)
		}
		t1 := time.Now()
		windows = append(windows, window{t0.Sub(start), t1.Sub(start)})
		durs = append(durs, t1.Sub(t0).Seconds())
	}
	// Keep the load on after the last reload: a broken release shows there.
	time.Sleep(3 * time.Second)
	cancel()
	res := <-done
	// loadgen times samples from its own start, a moment after ours.
	shift := res.Start.Sub(start)
	var during []loadgen.Sample
	for _, w := range windows {
		during = append(during, loadgen.Between(res.Samples, w.from-shift, w.to-shift)...)
	}
	took := time.Duration(report.Median(durs) * float64(time.Second))
	r := run{total: len(res.Samples), kinds: loadgen.Counts(res.Samples), p99: loadgen.Quantile(during, 0.99), took: took, errs: res.Errors}
	if len(res.Samples) > 0 {
		r.rate = float64(r.kinds[loadgen.OK]) / res.Samples[len(res.Samples)-1].At.Seconds()
	}
	return r, nil
}

// printRatio compares pm2 and clusterrun on the same Node app, run by run
// medians.
func printRatio(pm, cr []run) {
	if len(pm) == 0 || len(cr) == 0 {
		return
	}
	med := func(rs []run, f func(run) float64) float64 { return report.Median(report.Values(rs, f)) }
	pf, cf := med(pm, func(r run) float64 { return float64(r.failed()) }), med(cr, func(r run) float64 { return float64(r.failed()) })
	pp, cp := med(pm, func(r run) float64 { return r.p99.Seconds() }), med(cr, func(r run) float64 { return r.p99.Seconds() })
	pt, ct := med(pm, func(r run) float64 { return r.rate }), med(cr, func(r run) float64 { return r.rate })
	fmt.Printf("\nsame Node app, medians: failed requests pm2 %.0f vs clusterrun %.0f; p99 during reload pm2/clusterrun = %s; ok req/s pm2/clusterrun = %s\n",
		pf, cf, report.Ratio(pp, cp), report.Ratio(pt, ct))
}

// stat formats min / median / max of f over rs.
func stat(rs []run, f func(run) float64, format string) string {
	return report.Stat(report.Values(rs, f), format)
}
