// Command startup measures a runner with 8 instances of an HTTP app: how
// long from the start command until all 8 instances answer, the memory of
// the supervisor (PSS and USS from /proc/PID/smaps_rollup: clusterrun's
// runner and its guard together, pm2's daemon), idle and while its status
// is polled every 0.5 s as a user or a monitor would, and how long from
// kill -9 of one instance until its replacement answers. The same unmodified Node app runs under
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
	"github.com/clusterrun/clusterrun/proc"
)

var (
	setup       = runners.Flags()
	reps        = flag.Int("reps", 5, "repetitions")
	instances   = flag.Int("instances", 8, "instances")
	targetsFlag = flag.String("targets", runners.Names, "what to measure")
	// The waits are off every timer of the runners measured (clusterrun's
	// 0.2 s usage reading and 2 s sampler, its 1 s ready delay; pm2's
	// 1 s and 30 s workers), so that no reading lands on one's edge.
	settle  = flag.Duration("settle", 2700*time.Millisecond, "idle time after every instance is ready, before the idle reading")
	pollFor = flag.Duration("poll", 20*time.Second, "how long status is polled (every 0.5 s) before the polled reading")
	load    = flag.Duration("load", 3*time.Second, "keep-alive load before the under-load reading")
)

// pollEvery is how often status is asked for while polling: the pace of
// `watch -n 0.5 clusterrun status`.
const pollEvery = 500 * time.Millisecond

type sample struct {
	up, recover time.Duration
	// The supervisor's memory: idle; at the end of the polling and the
	// most seen during it; after the load.
	idle, polled, polledMax, loaded proc.Memory
	// instances sums the instances' memory (each one a single process).
	instances proc.Memory
}

func main() {
	flag.Parse()
	if setup.Clusterrun == "" || setup.Work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/startup/run.sh")
		os.Exit(2)
	}
	report.Header(fmt.Sprintf("clusterrun vs pm2: start-up, memory and crash recovery, %d instances", *instances), setup.PM2,
		"probe:   clients on 127.0.0.1 open a new connection per request until every expected pid has answered",
		"pm2:     its daemon is started before the clock runs (pm2 ping), so its start-up is not counted",
		"memory:  PSS and USS from /proc/PID/smaps_rollup (never RSS): the supervisor is clusterrun's runner and guard together, or pm2's daemon;",
		fmt.Sprintf("         idle = %s after every instance is ready; polled = while `clusterrun status` / `pm2 jlist` runs every %s for %s (the reading at the end, and the most seen);", *settle, pollEvery, *pollFor),
		fmt.Sprintf("         under load = after %s of keep-alive requests", *load))
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
			fmt.Fprintf(os.Stderr, "rep %d %-15s up %s, recover %s, supervisor PSS %.1f MiB idle, %.1f polled (most %.1f), %.1f under load; instances PSS %.1f MiB\n",
				rep, n, s.up.Round(time.Millisecond), s.recover.Round(time.Millisecond), mib(s.idle.PSS), mib(s.polled.PSS), mib(s.polledMax.PSS), mib(s.loaded.PSS), mib(s.instances.PSS))
			results[n] = append(results[n], s)
		}
	}
	fmt.Printf("\n%d runs each; min / median / max\n\n", *reps)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tstart to all answering\tkill -9 to replacement answering\tinstances PSS (sum)\t")
	get := report.Values[sample]
	for _, n := range names {
		ss := results[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", n,
			report.Stat(get(ss, func(s sample) float64 { return s.up.Seconds() * 1000 }), "%.0fms"),
			report.Stat(get(ss, func(s sample) float64 { return s.recover.Seconds() * 1000 }), "%.0fms"),
			report.Stat(get(ss, func(s sample) float64 { return mib(s.instances.PSS) }), "%.0f MiB"),
		)
	}
	tw.Flush()
	fmt.Printf("\nsupervisor memory (clusterrun: runner + guard; pm2: its daemon), MiB\n\n")
	fmt.Fprintln(tw, "target\tPSS idle\tUSS idle\tPSS polled\tUSS polled\tPSS polled, most\tPSS under load\tUSS under load\t")
	for _, n := range names {
		ss := results[n]
		m := func(f func(sample) int64) string {
			return report.Stat(get(ss, func(s sample) float64 { return mib(f(s)) }), "%.1f")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n,
			m(func(s sample) int64 { return s.idle.PSS }), m(func(s sample) int64 { return s.idle.USS }),
			m(func(s sample) int64 { return s.polled.PSS }), m(func(s sample) int64 { return s.polled.USS }),
			m(func(s sample) int64 { return s.polledMax.PSS }),
			m(func(s sample) int64 { return s.loaded.PSS }), m(func(s sample) int64 { return s.loaded.USS }))
	}
	tw.Flush()
	pm, cr := results["pm2-node"], results["clusterrun-node"]
	if len(pm) > 0 && len(cr) > 0 {
		med := func(ss []sample, f func(sample) float64) float64 { return report.Median(get(ss, f)) }
		up := func(s sample) float64 { return s.up.Seconds() }
		rec := func(s sample) float64 { return s.recover.Seconds() }
		idle := func(s sample) float64 { return float64(s.idle.PSS) }
		polled := func(s sample) float64 { return float64(s.polled.PSS) }
		fmt.Printf("\nsame Node app, medians, pm2/clusterrun: start-up %s, recovery %s, supervisor PSS idle %s, polled %s\n",
			report.Ratio(med(pm, up), med(cr, up)), report.Ratio(med(pm, rec), med(cr, rec)),
			report.Ratio(med(pm, idle), med(cr, idle)), report.Ratio(med(pm, polled), med(cr, polled)))
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
	time.Sleep(*settle)
	sup := r.Supervisor()
	if r.Name() != "pm2-node" && len(sup) != 2 {
		return s, fmt.Errorf("found %d of clusterrun's two processes (runner and guard): %v", len(sup), sup)
	}
	s.idle = report.Memory(sup...)
	s.instances = report.Memory(keys(pids)...)

	// Polled: a status every 0.5 s, as `watch -n 0.5` would ask it; the
	// supervisor is read after each answer.
	for end := time.Now().Add(*pollFor); time.Now().Before(end); {
		if err := r.Status(); err != nil {
			return s, err
		}
		s.polled = report.Memory(sup...)
		s.polledMax.PSS = max(s.polledMax.PSS, s.polled.PSS)
		s.polledMax.USS = max(s.polledMax.USS, s.polled.USS)
		time.Sleep(pollEvery)
	}

	// The supervisor's memory while requests flow: clusterrun is off the
	// data path, pm2's daemon is not (it balances connections). Keep-alive,
	// so that loopback TIME_WAIT collisions of a connection-per-request load
	// do not muddy a memory figure.
	ctx, cancel := context.WithTimeout(context.Background(), *load)
	res := loadgen.Run(ctx, loadgen.Options{Addr: addr, Workers: 32, KeepAlive: true, Duration: *load, Timeout: 2 * time.Second})
	cancel()
	s.loaded = report.Memory(sup...)
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
