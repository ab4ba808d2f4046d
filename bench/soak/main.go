// Command soak runs clusterrun for a long time under the faults a runner
// meets in production and reports whether it holds up: the Go example
// (examples/go-http) as 4 instances on one listener on 127.0.0.1 (mode
// shared, or with -mode proxy behind the runner's proxy), continuous load
// (bench/loadgen, bounded per minute: Connection: close, and in proxy mode
// keep-alive connections beside it), a SIGHUP rolling reload every 20s and
// a kill -9 of a random serving instance every 7s.
//
// Every minute it prints the requests and failures of that minute (by
// kind), the reloads and kills it sent, the restarts and reloads the runner
// counted, and the runner's own PSS (with its guard), descriptors and
// goroutines, all read from `clusterrun status --json`. The targets it reports against: no
// failed request (a request that an instance was serving when it was
// killed with SIGKILL is counted apart: no runner can save it); PSS,
// descriptors and goroutines flat from start to end.
//
// Run it through bench/soak/run.sh, which builds the binaries. It exits 0
// when every target was met, 1 when one was missed or the run failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/runners"
	"github.com/clusterrun/clusterrun/status"
)

var (
	clusterrun  = flag.String("clusterrun", "", "the clusterrun binary")
	goapp       = flag.String("goapp", "", "the examples/go-http binary")
	work        = flag.String("work", "", "a scratch directory for the config, the runtime dir and the runner's log")
	duration    = flag.Duration("duration", 30*time.Minute, "how long the load runs")
	reloadEvery = flag.Duration("reload-every", 20*time.Second, "how often the runner gets SIGHUP")
	killEvery   = flag.Duration("kill-every", 7*time.Second, "how often a random serving instance gets SIGKILL")
	sampleEvery = flag.Duration("sample-every", time.Minute, "how often a row is printed")
	conns       = flag.Int("conns", 8, "concurrent connections of the load, each a new one per request")
	keepConns   = flag.Int("keepalive-conns", -1, "concurrent keep-alive connections beside them (-1: 8 in proxy mode, 0 in shared mode)")
	mode        = flag.String("mode", "shared", "the listener's mode: shared or proxy")
	timeout     = flag.Duration("timeout", 5*time.Second, "per-request timeout, connect included")
	invoked     = flag.String("invoked", "", "the command line run.sh was started with, for the header")
)

const (
	instances = 4
	// maxPerSegment bounds the requests of one sample period, so that a
	// run on a very fast machine still ends and its samples fit in memory.
	maxPerSegment = 5_000_000
	// nearKill is the slack when a failed request is matched with a kill
	// -9: the instance dies within a few milliseconds of the signal, and
	// the client sees the reset right after.
	nearKill = 250 * time.Millisecond
)

func main() {
	flag.Parse()
	if *clusterrun == "" || *goapp == "" || *work == "" || (*mode != "shared" && *mode != "proxy") {
		fmt.Fprintln(os.Stderr, "usage: bench/soak/run.sh [-duration 30m] [-mode shared|proxy] (see the flags in bench/soak/main.go)")
		os.Exit(2)
	}
	if *keepConns < 0 {
		*keepConns = 0
		if *mode == "proxy" {
			*keepConns = 8
		}
	}
	ok, err := run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// event is a fault the driver caused.
type event struct {
	at   time.Time
	kill bool // else a reload
	pid  int  // the killed instance
}

// sample is one reading of `status --json`.
type sample struct {
	pss        int64
	fds        int
	goroutines int
	restarts   map[string]int // by reason, over every app
	reloads    map[string]int // by outcome
}

// failure is one failed request.
type failure struct {
	start, end time.Time
	kind       loadgen.Kind
	keepAlive  bool
}

// shapeTotals is what one traffic shape saw over the run.
type shapeTotals struct {
	requests, failed, atKill int
}

func run() (bool, error) {
	// The CLI and the runner must agree on where the control socket is.
	rt := filepath.Join(*work, "rt")
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return false, err
	}
	os.Setenv("XDG_RUNTIME_DIR", rt)
	cfg := filepath.Join(*work, "cluster.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, *mode, *goapp, instances)), 0o644); err != nil {
		return false, err
	}
	logPath := filepath.Join(*work, "runner.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return false, err
	}
	defer logFile.Close()

	// Ctrl-C ends the soak early, with its report. The runner gets a
	// process group of its own so that the terminal's Ctrl-C reaches only
	// this driver, which then stops it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	marker := fmt.Sprintf("CLUSTERRUN_SOAK_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command(*clusterrun, "up", "-f", cfg)
	cmd.Dir = *work
	cmd.Env = append(os.Environ(), "NO_COLOR=1", marker)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	runnerPID := cmd.Process.Pid
	stopped := false
	stopRunner := func() (code int, took time.Duration, err error) {
		stopped = true
		t0 := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
			return -1, time.Since(t0), errors.New("the runner did not exit within 60s of SIGTERM; killed it")
		}
		return cmd.ProcessState.ExitCode(), time.Since(t0), nil
	}
	defer func() {
		if !stopped {
			stopRunner()
		}
		killSurvivors(marker)
	}()

	st, err := waitReady(cfg, exited, 60*time.Second)
	if err != nil {
		return false, fmt.Errorf("%w (runner log: %s)\n%s", err, logPath, tail(logPath, 20))
	}
	if len(st.Listeners) == 0 {
		return false, errors.New("status shows no listener")
	}
	addr := st.Listeners[0].Address

	shapes := fmt.Sprintf("%d connections on %s, Connection: close (a new connection per request)", *conns, addr)
	if *keepConns > 0 {
		shapes += fmt.Sprintf(", and %d keep-alive connections beside them (a new one only when the runner or an instance closed one)", *keepConns)
	}
	report.Header(fmt.Sprintf("clusterrun soak (%s mode): reloads and kill -9 under load", *mode), "",
		fmt.Sprintf("invoked: %s", *invoked),
		fmt.Sprintf("runner:  %s up -f %s (pid %d); app: %s, %d instances, listener %q %s (%s), ready check notify",
			*clusterrun, cfg, runnerPID, *goapp, instances, st.Listeners[0].Name, addr, *mode),
		fmt.Sprintf("load:    bench/loadgen, %s, %s timeout, no retries", shapes, *timeout),
		fmt.Sprintf("faults:  SIGHUP (rolling reload) every %s; SIGKILL of a random serving instance every %s, started half a period (%s) after the reloads so that kills fall between them (closest kill to a reload: %s)",
			*reloadEvery, *killEvery, *killEvery/2, closestToReload(*reloadEvery, *killEvery, *duration)),
		fmt.Sprintf("run:     %s; a row every %s; runner figures from `clusterrun status --json` (pss_bytes of the runner and its guard, fds, goroutines, counters)", *duration, *sampleEvery),
		"targets: 0 failed requests in either shape (one in flight on an instance at its kill -9 is counted apart); runner + guard PSS, fds and goroutines flat (the end against the first reading under load)",
		"")

	first := sampleOf(st)
	samples := []sample{first}
	fmt.Println("| t | requests | failed | at a kill -9 | failed by kind | reloads sent | kills sent | runner restarts (total) | runner reloads (total) | PSS MiB (runner + guard) | fds | goroutines |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	fmt.Printf("| start | - | - | - | - | - | - | %s | %s | %.1f | %d | %d |\n",
		counts(first.restarts), counts(first.reloads), mib(first.pss), first.fds, first.goroutines)

	// Faults run beside the load until it ends.
	faultCtx, endFaults := context.WithCancel(ctx)
	var mu sync.Mutex
	var events []event
	var faultErrs []string
	var wg sync.WaitGroup
	wg.Go(func() {
		reload := time.NewTicker(*reloadEvery)
		defer reload.Stop()
		// The kill ticker starts half a kill period after the reload one:
		// started together, they would fire together every common multiple
		// of their periods (140s with the defaults), and the requests that
		// reload failed would be counted as in flight at the kill.
		killStart := time.NewTimer(*killEvery / 2)
		defer killStart.Stop()
		var kill *time.Ticker
		var killC <-chan time.Time
		defer func() {
			if kill != nil {
				kill.Stop()
			}
		}()
		for {
			select {
			case <-faultCtx.Done():
				return
			case <-exited:
				return
			case <-reload.C:
				err := syscall.Kill(runnerPID, syscall.SIGHUP)
				mu.Lock()
				events = append(events, event{at: time.Now()})
				if err != nil {
					faultErrs = append(faultErrs, "SIGHUP: "+err.Error())
				}
				mu.Unlock()
			case <-killStart.C:
				kill = time.NewTicker(*killEvery)
				killC = kill.C
			case <-killC:
				pid, err := killRandom(cfg)
				mu.Lock()
				if err != nil {
					faultErrs = append(faultErrs, "kill -9: "+err.Error())
				} else {
					events = append(events, event{at: time.Now(), kill: true, pid: pid})
				}
				mu.Unlock()
			}
		}
	})

	var total int
	var byShape [2]shapeTotals // close, keep-alive
	totalKinds := loadgen.Counts(nil)
	var failures []failure
	var errTexts = map[loadgen.Kind][]string{}
	start := time.Now()
	end := start.Add(*duration)
	sentBefore := [2]int{}
	for seg := 1; time.Now().Before(end) && ctx.Err() == nil; seg++ {
		// The segment ends by a cancel, not by loadgen's Duration: a dial
		// fails at once when its context's deadline has passed, but the
		// context reports the deadline only once its timer has fired, and
		// on a busy machine loadgen's workers counted thousands of instant
		// "dial: i/o timeout" failures in between. A cancel sets the error
		// before any dial can see it.
		d := min(*sampleEvery, time.Until(end))
		segCtx, endSeg := context.WithCancel(ctx)
		timer := time.AfterFunc(d, endSeg)
		// Both shapes at once: the close load, and the keep-alive one
		// beside it (none in shared mode by default).
		var results [2]*loadgen.Result
		var lw sync.WaitGroup
		for i, workers := range []int{*conns, *keepConns} {
			if workers == 0 {
				continue
			}
			lw.Go(func() {
				results[i] = loadgen.Run(segCtx, loadgen.Options{
					Addr: addr, Workers: workers, KeepAlive: i == 1, Duration: d + time.Minute, MaxRequests: maxPerSegment, Timeout: *timeout,
				})
			})
		}
		lw.Wait()
		timer.Stop()
		endSeg()
		c := loadgen.Counts(nil)
		var segFailures []failure
		segRequests := 0
		for i, res := range results {
			if res == nil {
				continue
			}
			for k, n := range loadgen.Counts(res.Samples) {
				c[k] += n
			}
			for _, s := range res.Samples {
				if s.Kind != loadgen.OK {
					f := failure{start: res.Start.Add(s.At), kind: s.Kind, keepAlive: i == 1}
					f.end = f.start.Add(s.Latency)
					segFailures = append(segFailures, f)
				}
			}
			for k, es := range res.Errors {
				if len(errTexts[k]) < 5 {
					errTexts[k] = append(errTexts[k], es...)
				}
			}
			segRequests += len(res.Samples)
			byShape[i].requests += len(res.Samples)
		}
		failures = append(failures, segFailures...)
		total += segRequests
		for k := range c {
			totalKinds[k] += c[k]
		}
		mu.Lock()
		sent := sentCounts(events)
		atKill := countNearKill(segFailures, events)
		mu.Unlock()
		st, err := statusOf(cfg)
		if err != nil {
			fmt.Printf("| %s | %d | %d | %d | %s | %d | %d | status failed: %v | | | | |\n",
				elapsed(start), segRequests, len(segFailures), atKill, kinds(c[:]), sent[0]-sentBefore[0], sent[1]-sentBefore[1], err)
			select {
			case <-exited:
				endFaults()
				wg.Wait()
				return false, fmt.Errorf("the runner exited during the soak (code %d); its log: %s\n%s", cmd.ProcessState.ExitCode(), logPath, tail(logPath, 30))
			default:
			}
			continue
		}
		smp := sampleOf(st)
		samples = append(samples, smp)
		fmt.Printf("| %s | %d | %d | %d | %s | %d | %d | %s | %s | %.1f | %d | %d |\n",
			elapsed(start), segRequests, len(segFailures), atKill, kinds(c[:]), sent[0]-sentBefore[0], sent[1]-sentBefore[1],
			counts(smp.restarts), counts(smp.reloads), mib(smp.pss), smp.fds, smp.goroutines)
		sentBefore = sent
	}
	endFaults()
	wg.Wait()
	interrupted := ctx.Err() != nil

	last := samples[len(samples)-1]
	code, took, stopErr := stopRunner()
	left := killSurvivors(marker)

	mu.Lock()
	defer mu.Unlock()
	sent := sentCounts(events)
	atKill := countNearKill(failures, events)
	other := len(failures) - atKill
	fmt.Println()
	fmt.Println("## Summary")
	fmt.Println()
	if interrupted {
		fmt.Printf("interrupted after %s (of %s)\n\n", elapsed(start), *duration)
	}
	fmt.Printf("- ran %s: %d requests, %d failed (%s)\n", elapsed(start), total, len(failures), kinds(totalKinds[:]))
	fmt.Printf("- failed requests in flight at a kill -9 (±%s): %d; all other failures: %d\n", nearKill, atKill, other)
	for i, name := range []string{"Connection: close", "keep-alive"} {
		var fs []failure
		for _, f := range failures {
			if f.keepAlive == (i == 1) {
				fs = append(fs, f)
			}
		}
		byShape[i].failed, byShape[i].atKill = len(fs), countNearKill(fs, events)
		if byShape[i].requests > 0 {
			fmt.Printf("  - %s: %d requests, %d failed, %d of them in flight at a kill -9\n", name, byShape[i].requests, byShape[i].failed, byShape[i].atKill)
		}
	}
	for k := loadgen.Refused; int(k) < len(totalKinds); k++ {
		if es := errTexts[k]; len(es) > 0 && totalKinds[k] > 0 {
			fmt.Printf("  - %s, e.g. %q\n", k, es[0])
		}
	}
	fmt.Printf("- faults sent: %d reloads (SIGHUP), %d kill -9", sent[0], sent[1])
	if len(faultErrs) > 0 {
		fmt.Printf("; %d could not be sent (first: %s)", len(faultErrs), faultErrs[0])
	}
	fmt.Println()
	fmt.Printf("- the runner counted: restarts %s, reloads %s\n", counts(sub(last.restarts, first.restarts)), counts(sub(last.reloads, first.reloads)))
	fmt.Printf("- runner + guard PSS %.1f -> %.1f MiB (max %.1f), fds %d -> %d (max %d), goroutines %d -> %d (max %d)\n",
		mib(first.pss), mib(last.pss), mib(maxOf(samples, func(s sample) int64 { return s.pss })),
		first.fds, last.fds, maxOf(samples, func(s sample) int { return s.fds }),
		first.goroutines, last.goroutines, maxOf(samples, func(s sample) int { return s.goroutines }))
	fmt.Printf("- SIGTERM at the end: exit code %d after %s", code, took.Round(time.Millisecond))
	if stopErr != nil {
		fmt.Printf(" (%v)", stopErr)
	}
	fmt.Println()
	if left > 0 {
		fmt.Printf("- %d processes of the runner survived it (killed by the driver)\n", left)
	}

	// Flat: the end reading within a small margin of the first one under
	// load (the runner's working set under load is not a leak: in proxy
	// mode its event loop holds what the connections in flight need). A
	// reading is taken at any moment, so a reload or a restart in progress
	// adds a few goroutines and descriptors; growth per fault would show as
	// far more over a long run.
	base := first
	if len(samples) > 2 {
		base = samples[1]
	}
	pssFlat := last.pss <= base.pss+base.pss/10+(2<<20)
	fdsFlat := last.fds <= base.fds+5
	goFlat := last.goroutines <= base.goroutines+10
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Println()
	fmt.Println("## Targets")
	fmt.Println()
	fmt.Printf("- 0 failed requests other than those in flight at a kill -9: %d — %s\n", other, verdict(other == 0))
	fmt.Printf("- runner + guard PSS flat (end <= first reading under load + 10%% + 2 MiB): %.1f -> %.1f MiB — %s\n", mib(base.pss), mib(last.pss), verdict(pssFlat))
	fmt.Printf("- runner fds flat (end <= first reading under load + 5): %d -> %d — %s\n", base.fds, last.fds, verdict(fdsFlat))
	fmt.Printf("- runner goroutines flat (end <= first reading under load + 10): %d -> %d — %s\n", base.goroutines, last.goroutines, verdict(goFlat))
	fmt.Printf("- clean exit on SIGTERM, nothing left running: exit %d, %d survivors — %s\n", code, left, verdict(code == 0 && left == 0 && stopErr == nil))
	ok := other == 0 && pssFlat && fdsFlat && goFlat && code == 0 && left == 0 && stopErr == nil && !interrupted
	return ok, nil
}

// config is the Go example as examples/go-http/cluster.hcl runs it, with
// the binary prebuilt, a free port on 127.0.0.1 and the listener's mode.
// In proxy mode the app listens on the private socket it gets as fd 3.
const config = `listener "http" {
  address = "127.0.0.1:0"
  mode    = %q
}

app "web" {
  command   = [%q]
  instances = %d
  listeners = ["http"]
  ready { check = "notify" }
  stop { timeout = "10s" }
  # A soak kills an instance every few seconds: never give up on it.
  restart {
    max_restarts = 1000000
    window       = "1m"
  }
}
`

// statusOf runs `clusterrun status --json`.
func statusOf(cfg string) (status.Runner, error) { return runners.StatusJSON(*clusterrun, cfg) }

// waitReady polls status until every instance of web is ready and serving.
func waitReady(cfg string, exited <-chan struct{}, bound time.Duration) (status.Runner, error) {
	deadline := time.Now().Add(bound)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return status.Runner{}, errors.New("the runner exited while starting")
		default:
		}
		st, err := statusOf(cfg)
		lastErr = err
		if err == nil && len(runners.ServingReady(st)) == instances {
			return st, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return status.Runner{}, fmt.Errorf("%d instances not ready within %s (last status error: %v)", instances, bound, lastErr)
}

// killRandom sends SIGKILL to a random serving, ready instance.
func killRandom(cfg string) (int, error) {
	st, err := statusOf(cfg)
	if err != nil {
		return 0, err
	}
	pids := runners.ServingReady(st)
	if len(pids) == 0 {
		return 0, errors.New("no serving instance is ready")
	}
	pid := pids[rand.IntN(len(pids))]
	return pid, syscall.Kill(pid, syscall.SIGKILL)
}

// killSurvivors kills every process that carries marker (the runner and
// what it started) and returns how many there were, besides the runner if
// it is still being reaped.
func killSurvivors(marker string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	want := []byte(marker + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !containsVar(env, want) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
		n++
	}
	return n
}

func containsVar(env, v []byte) bool {
	return strings.HasPrefix(string(env), string(v)) || strings.Contains(string(env), "\x00"+string(v))
}

func sampleOf(st status.Runner) sample {
	s := sample{pss: st.PSSBytes, fds: st.FDs, goroutines: st.Goroutines,
		restarts: map[string]int{}, reloads: map[string]int{}}
	for _, byReason := range st.Counters.Restarts {
		for r, n := range byReason {
			s.restarts[r] += n
		}
	}
	for o, n := range st.Counters.Reloads {
		s.reloads[o] += n
	}
	return s
}

// closestToReload is how close a kill comes to a reload within a run of
// length d: reloads at every multiple of reload, kills every kill from
// 1.5 kill on (the kill ticker starts half a period late). "no reload" if
// the run sends none.
func closestToReload(reload, kill, d time.Duration) string {
	if reload <= 0 || kill <= 0 || reload > d {
		return "no reload"
	}
	first := kill + kill/2
	closest := time.Duration(-1)
	for t := reload; t <= d; t += reload {
		gap := first - t
		if t > first {
			off := (t - first) % kill
			gap = min(off, kill-off)
		}
		if closest < 0 || gap < closest {
			closest = gap
		}
	}
	return closest.String()
}

// sentCounts returns the reloads and kills sent so far.
func sentCounts(events []event) [2]int {
	var n [2]int
	for _, e := range events {
		if e.kill {
			n[1]++
		} else {
			n[0]++
		}
	}
	return n
}

// countNearKill counts the failures that were in flight when a kill -9 was
// sent: the kill fell between the request's start and its end, give or take
// nearKill (the time stamps are taken on either side of a syscall).
func countNearKill(fs []failure, events []event) int {
	n := 0
	for _, f := range fs {
		for _, e := range events {
			if e.kill && !e.at.Before(f.start.Add(-nearKill)) && !e.at.After(f.end.Add(nearKill)) {
				n++
				break
			}
		}
	}
	return n
}

func kinds(c []int) string {
	var parts []string
	for k := loadgen.Refused; int(k) < len(c); k++ {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func counts(m map[string]int) string {
	var keys []string
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "-"
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sub(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}

func maxOf[T int | int64](s []sample, f func(sample) T) T {
	var m T
	for _, x := range s {
		m = max(m, f(x))
	}
	return m
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func elapsed(since time.Time) string {
	return time.Since(since).Round(time.Second).String()
}

// tail returns the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
