// Command startup measures a runner with 8 instances of an HTTP app: how
// long from the start command until all 8 instances answer, the memory of
// the supervising process, and how long from kill -9 of one instance until
// its replacement answers. The same unmodified Node app runs under
// clusterrun and under pm2's cluster mode (whose daemon is started before
// the clock runs, as on a machine where pm2 is already up), and the Go
// example under clusterrun.
//
// "Answers" is seen from outside, the same way for both: clients on
// 127.0.0.1 send requests (a new connection each) until 8 distinct pids have
// answered, or until a pid that was not there before the kill answers.
//
// Run it through bench/startup/run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/runners"
)

var (
	setup       = runners.Flags()
	reps        = flag.Int("reps", 5, "repetitions")
	instances   = flag.Int("instances", 8, "instances")
	targetsFlag = flag.String("targets", runners.Names, "what to measure")
)

type sample struct {
	up, recover       time.Duration
	supervisorRSS     int64
	instancesRSS      int64
	supervisorRSSLoad int64
}

func main() {
	flag.Parse()
	if setup.Clusterrun == "" || setup.Work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/startup/run.sh")
		os.Exit(2)
	}
	report.Header(fmt.Sprintf("clusterrun vs pm2: start-up, memory and crash recovery, %d instances", *instances), setup.PM2,
		"probe:   clients on 127.0.0.1 open a new connection per request until every expected pid has answered",
		"pm2:     its daemon is started before the clock runs (pm2 ping), so its start-up is not counted")
	names := strings.Split(*targetsFlag, ",")
	results := map[string][]sample{}
	for rep := 1; rep <= *reps; rep++ {
		for _, n := range names {
			r, err := setup.New(n, *instances)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			s, err := measure(r)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s rep %d: %v\n", n, rep, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "rep %d %-15s up %s, recover %s, supervisor RSS %.1f MiB (%.1f under load), instances %.1f MiB\n",
				rep, n, s.up.Round(time.Millisecond), s.recover.Round(time.Millisecond), mib(s.supervisorRSS), mib(s.supervisorRSSLoad), mib(s.instancesRSS))
			results[n] = append(results[n], s)
		}
	}
	fmt.Printf("\n%d runs each; min / median / max\n\n", *reps)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tstart to all answering\tkill -9 to replacement answering\tsupervisor RSS idle\tsupervisor RSS under load\tinstances RSS (sum)\t")
	get := report.Values[sample]
	for _, n := range names {
		ss := results[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", n,
			report.Stat(get(ss, func(s sample) float64 { return s.up.Seconds() * 1000 }), "%.0fms"),
			report.Stat(get(ss, func(s sample) float64 { return s.recover.Seconds() * 1000 }), "%.0fms"),
			report.Stat(get(ss, func(s sample) float64 { return mib(s.supervisorRSS) }), "%.1f MiB"),
			report.Stat(get(ss, func(s sample) float64 { return mib(s.supervisorRSSLoad) }), "%.1f MiB"),
			report.Stat(get(ss, func(s sample) float64 { return mib(s.instancesRSS) }), "%.0f MiB"),
		)
	}
	tw.Flush()
	pm, cr := results["pm2-node"], results["clusterrun-node"]
	if len(pm) > 0 && len(cr) > 0 {
		med := func(ss []sample, f func(sample) float64) float64 { return report.Median(get(ss, f)) }
		up := func(s sample) float64 { return s.up.Seconds() }
		rec := func(s sample) float64 { return s.recover.Seconds() }
		rss := func(s sample) float64 { return float64(s.supervisorRSS) }
		fmt.Printf("\nsame Node app, medians, pm2/clusterrun: start-up %s, recovery %s, supervisor RSS %s\n",
			report.Ratio(med(pm, up), med(cr, up)), report.Ratio(med(pm, rec), med(cr, rec)), report.Ratio(med(pm, rss), med(cr, rss)))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func measure(r runners.Runner) (sample, error) {
	var s sample
	port, err := report.FreePort()
	if err != nil {
		return s, err
	}
	if p, ok := r.(*runners.PM2); ok {
		if err := p.StartDaemon(); err != nil {
			return s, err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	t0 := time.Now()
	if err := r.Launch(port); err != nil {
		r.Stop()
		return s, err
	}
	defer r.Stop()
	pids, err := probe(addr, func(seen map[int]bool) bool { return len(seen) >= *instances }, 60*time.Second)
	if err != nil {
		return s, fmt.Errorf("start: %w", err)
	}
	s.up = time.Since(t0)
	if err := r.WaitReady(30 * time.Second); err != nil {
		return s, err
	}
	time.Sleep(time.Second) // let start-up allocations settle
	s.supervisorRSS = report.RSS(r.PID())
	for p := range pids {
		s.instancesRSS += report.RSS(p)
	}
	// The supervisor's memory while requests flow: clusterrun is off the
	// data path, pm2's daemon is not (it balances connections). Keep-alive,
	// so that loopback TIME_WAIT collisions of a connection-per-request load
	// do not muddy a memory figure.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	res := loadgen.Run(ctx, loadgen.Options{Addr: addr, Workers: 32, KeepAlive: true, Duration: 3 * time.Second, Timeout: 2 * time.Second})
	cancel()
	s.supervisorRSSLoad = report.RSS(r.PID())
	if f := loadgen.Failed(res.Samples); f > 0 {
		return s, fmt.Errorf("load before the kill: %s", loadgen.Summary(res, res.Samples))
	}

	var victim int
	for p := range pids {
		victim = p
		break
	}
	t1 := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		return s, err
	}
	if _, err := probe(addr, func(seen map[int]bool) bool {
		for p := range seen {
			if !pids[p] {
				return true
			}
		}
		return false
	}, 60*time.Second); err != nil {
		return s, fmt.Errorf("recovery: %w", err)
	}
	s.recover = time.Since(t1)
	return s, nil
}

// probe sends requests from 8 clients until done says the answering pids
// are enough, and returns them. Failed requests (nothing listening yet) are
// retried after 1ms.
func probe(addr string, done func(map[int]bool) bool, limit time.Duration) (map[int]bool, error) {
	var mu sync.Mutex
	seen := map[int]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				res := loadgen.Run(ctx, loadgen.Options{Addr: addr, Workers: 1, MaxRequests: 1, Duration: time.Second, Timeout: time.Second})
				pid := 0
				if len(res.Samples) == 1 && res.Samples[0].Kind == loadgen.OK {
					pid = res.Samples[0].PID
				}
				mu.Lock()
				if pid != 0 {
					seen[pid] = true
				}
				ok := done(seen)
				mu.Unlock()
				if ok {
					cancel()
					return
				}
				if pid == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !done(seen) {
		return nil, fmt.Errorf("only pids %v answered within %s", keys(seen), limit)
	}
	return seen, nil
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
