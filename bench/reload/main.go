// Command reload measures what a rolling reload costs the clients of a
// 4-instance HTTP app: the same unmodified Node app (hello.js) under
// clusterrun and under pm2's cluster mode, and the Go example under
// clusterrun, while a load generator keeps 64 connections busy on loopback,
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
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

var (
	clusterrunBin = flag.String("clusterrun", "", "clusterrun binary")
	pm2Bin        = flag.String("pm2", "", "pm2 binary (from npm install pm2)")
	goApp         = flag.String("goapp", "", "examples/go-http binary")
	helloJS       = flag.String("hello", "", "bench/reload/hello.js")
	work          = flag.String("work", "", "scratch directory")
	reps          = flag.Int("reps", 3, "repetitions of every scenario")
	conns         = flag.Int("conns", 64, "concurrent connections")
	reloads       = flag.Int("reloads", 10, "reloads in the fast case")
	timeout       = flag.Duration("timeout", 2*time.Second, "per-request timeout (wrk's default is 2s)")
	targetsFlag   = flag.String("targets", "clusterrun-node,pm2-node,clusterrun-go", "what to measure")
	casesFlag     = flag.String("cases", "fast,slow,crash", "which reload cases")
	modesFlag     = flag.String("modes", "close,keepalive", "connection modes")
)

// target is one runner with one app, 4 instances.
type target interface {
	name() string
	// start runs release "fast" and returns once all 4 instances answer.
	start(port int) error
	// release makes the next reload roll out kind: fast, slow or crash.
	release(kind string) error
	// reload triggers a rolling reload and returns when the runner says it
	// is over (done or aborted).
	reload() error
	stop()
}

func main() {
	flag.Parse()
	if *clusterrunBin == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/reload/run.sh")
		os.Exit(2)
	}
	printHeader()
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
					r, err := scenario(newTarget(tn), mode, cas)
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
func scenario(t target, mode, cas string) (run, error) {
	port, err := freePort()
	if err != nil {
		return run{}, err
	}
	if err := t.start(port); err != nil {
		t.stop()
		return run{}, fmt.Errorf("start: %w", err)
	}
	defer t.stop()
	n := 1
	if cas == "fast" {
		n = *reloads
	}
	if err := t.release(cas); err != nil {
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
	var durs []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := t.reload(); err != nil {
			cancel()
			<-done
			return run{}, fmt.Errorf("reload %d: %w", i+1, err)
		}
		t1 := time.Now()
		windows = append(windows, window{t0.Sub(start), t1.Sub(start)})
		durs = append(durs, t1.Sub(t0))
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
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	r := run{total: len(res.Samples), kinds: loadgen.Counts(res.Samples), p99: loadgen.Quantile(during, 0.99), took: durs[len(durs)/2], errs: res.Errors}
	if len(res.Samples) > 0 {
		r.rate = float64(r.kinds[loadgen.OK]) / res.Samples[len(res.Samples)-1].At.Seconds()
	}
	return r, nil
}

func newTarget(name string) target {
	switch name {
	case "clusterrun-node":
		return &clusterrun{label: name, command: fmt.Sprintf(`["node", %q]`, *helloJS)}
	case "clusterrun-go":
		return &clusterrun{label: name, command: fmt.Sprintf(`[%q]`, *goApp)}
	case "pm2-node":
		return &pm2{}
	}
	fmt.Fprintf(os.Stderr, "unknown target %q\n", name)
	os.Exit(2)
	return nil
}

// clusterrun runs `clusterrun up` on a generated cluster.hcl.
type clusterrun struct {
	label, command string
	dir, cfg       string
	port           int
	cmd            *exec.Cmd
	exited         chan struct{}
}

func (c *clusterrun) name() string { return c.label }

func (c *clusterrun) writeConfig(env string) error {
	text := fmt.Sprintf(`
listener "http" {
  address = "127.0.0.1:%d"
}
app "hello" {
  command   = %s
  instances = 4
  listeners = ["http"]
  env       = { %s }
  ready { check = "notify" }
}
`, c.port, c.command, env)
	return os.WriteFile(c.cfg, []byte(text), 0o644)
}

func (c *clusterrun) start(port int) error {
	c.port = port
	c.dir = filepath.Join(*work, "clusterrun-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	c.cfg = filepath.Join(c.dir, "cluster.hcl")
	if err := c.writeConfig(""); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(c.dir, "runner.log"))
	if err != nil {
		return err
	}
	c.cmd = exec.Command(*clusterrunBin, "up", "-f", c.cfg, "--color", "never")
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+c.dir)
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); log.Close(); close(c.exited) }()
	return waitLog(filepath.Join(c.dir, "runner.log"), `hello: 4 of 4 instances ready`, 60*time.Second, c.exited)
}

func (c *clusterrun) release(kind string) error {
	env := map[string]string{"fast": "", "slow": `BOOT_DELAY_MS = "5000"`, "crash": `BOOT_CRASH = "1"`}[kind]
	return c.writeConfig(env)
}

func (c *clusterrun) reload() error {
	// `clusterrun reload` returns when every rollout has finished or
	// aborted; exit 1 for an aborted one is the expected outcome of the
	// crash case.
	cmd := exec.Command(*clusterrunBin, "reload", "-f", c.cfg)
	cmd.Env = c.cmd.Env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(string(out), "reload aborted")) {
		return fmt.Errorf("clusterrun reload: %v: %s", err, out)
	}
	return nil
}

func (c *clusterrun) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// pm2 runs hello.js in pm2's cluster mode with a private PM2_HOME.
type pm2 struct {
	home string
	port int
	env  []string
}

func (p *pm2) name() string { return "pm2-node" }

func (p *pm2) run(extraEnv []string, args ...string) ([]byte, error) {
	cmd := exec.Command(*pm2Bin, args...)
	cmd.Env = append(append(os.Environ(), "PM2_HOME="+p.home, fmt.Sprintf("PORT=%d", p.port)), extraEnv...)
	return cmd.CombinedOutput()
}

func (p *pm2) start(port int) error {
	p.port = port
	p.home = filepath.Join(*work, "pm2home")
	if out, err := p.run(nil, "start", *helloJS, "-i", "4", "--name", "hello"); err != nil {
		return fmt.Errorf("pm2 start: %v: %s", err, out)
	}
	// Online in pm2's eyes and answering on the port.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := p.run(nil, "jlist")
		if strings.Count(string(out), `"status":"online"`) == 4 {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("pm2: 4 instances not online within 60s")
}

func (p *pm2) release(kind string) error {
	p.env = map[string][]string{"fast": {"BOOT_DELAY_MS=0", "BOOT_CRASH=0"}, "slow": {"BOOT_DELAY_MS=5000", "BOOT_CRASH=0"}, "crash": {"BOOT_DELAY_MS=0", "BOOT_CRASH=1"}}[kind]
	return nil
}

func (p *pm2) reload() error {
	// pm2 reload returns once it has replaced every worker (or given up on
	// one); --update-env takes the release's environment from ours.
	out, err := p.run(p.env, "reload", "hello", "--update-env")
	if err != nil && !strings.Contains(string(out), "hello") {
		return fmt.Errorf("pm2 reload: %v: %s", err, out)
	}
	return nil
}

func (p *pm2) stop() {
	p.run(nil, "delete", "all")
	p.run(nil, "kill")
}

// waitLog waits until the file holds a line matching pattern.
func waitLog(path, pattern string, limit time.Duration, exited <-chan struct{}) error {
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if re.Match(b) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("runner exited before %q:\n%s", pattern, b)
		case <-time.After(20 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(path)
	return fmt.Errorf("no %q in %s within %s:\n%s", pattern, path, limit, b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stat formats min / median / max of f over rs.
func stat(rs []run, f func(run) float64, format string) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return "-"
	}
	one := func(x float64) string { return fmt.Sprintf(format, x) }
	if v[0] == v[len(v)-1] {
		return one(v[0])
	}
	return one(v[0]) + " / " + one(v[len(v)/2]) + " / " + one(v[len(v)-1])
}

// printRatio compares pm2 and clusterrun on the same Node app, run by run
// medians.
func printRatio(pm, cr []run) {
	if len(pm) == 0 || len(cr) == 0 {
		return
	}
	med := func(rs []run, f func(run) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	pf, cf := med(pm, func(r run) float64 { return float64(r.failed()) }), med(cr, func(r run) float64 { return float64(r.failed()) })
	pp, cp := med(pm, func(r run) float64 { return r.p99.Seconds() }), med(cr, func(r run) float64 { return r.p99.Seconds() })
	pt, ct := med(pm, func(r run) float64 { return r.rate }), med(cr, func(r run) float64 { return r.rate })
	fmt.Printf("\nsame Node app, medians: failed requests pm2 %.0f vs clusterrun %.0f; p99 during reload pm2/clusterrun = %s; ok req/s pm2/clusterrun = %s\n",
		pf, cf, ratio(pp, cp), ratio(pt, ct))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func printHeader() {
	host, _ := os.Hostname()
	fmt.Printf("# clusterrun vs pm2: rolling reload under load\n\n")
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	fmt.Printf("date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %s, %d CPUs, %s, %s\n", host, runtime.NumCPU(), cpuModel(), memTotal())
	fmt.Printf("kernel:  %s\n", firstLine("uname", "-sr"))
	fmt.Printf("go:      %s; node: %s; pm2: %s\n", runtime.Version(), firstLine("node", "--version"), firstLine(*pm2Bin, "--version"))
	fmt.Printf("load:    %d connections from a Go HTTP/1.1 client on 127.0.0.1, %s timeout per request, no retries\n", *conns, *timeout)
	fmt.Printf("apps:    4 instances; pm2 and clusterrun-node run the same unmodified bench/reload/hello.js (listen(PORT))\n")
}

func firstLine(name string, args ...string) string {
	if name == "" {
		return "-"
	}
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if kb, err := strconv.Atoi(f[1]); err == nil {
				return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return "?"
}
