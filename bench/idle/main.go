//go:build linux

// Command idle measures what idle clients of a proxy listener cost the
// runner, and whether the runner still does its job under them: the Go
// example (examples/go-http) as 4 instances behind a listener in mode
// "proxy" on 127.0.0.1, then -clients idle TCP clients (connected, sending
// nothing), held by -procs client processes so that no process needs more
// descriptors than its limit allows. With them connected it reads the
// runner's descriptors, PSS, USS and RSS, kill -9s one instance and waits
// for its replacement to be ready (it must restart: the runner keeps a
// reserve of descriptors the proxy never takes), asks `status` (the control
// socket must answer), then lets the clients go and measures how long the
// runner takes to give their descriptors back.
//
// Run it through bench/idle/run.sh, which builds the binaries. It is
// Linux-only: it reads /proc and gives its client processes a parent-death
// signal.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/runners"
	"github.com/clusterrun/clusterrun/status"
)

var (
	clusterrun = flag.String("clusterrun", "", "the clusterrun binary")
	goapp      = flag.String("goapp", "", "the examples/go-http binary")
	work       = flag.String("work", "", "a scratch directory")
	clients    = flag.Int("clients", 10000, "idle clients")
	procs      = flag.Int("procs", 4, "client processes holding them")
	invoked    = flag.String("invoked", "", "the run.sh command line, for the header")
	hold       = flag.Int("hold", 0, "internal: hold this many idle connections to -addr until stdin closes")
	addr       = flag.String("addr", "", "internal: where -hold connects")
)

const instances = 4

func main() {
	flag.Parse()
	if *hold > 0 {
		os.Exit(holdClients(*hold, *addr))
	}
	if *clusterrun == "" || *goapp == "" || *work == "" || *clients < 1 || *procs < 1 {
		fmt.Fprintln(os.Stderr, "usage: bench/idle/run.sh [-clients 10000] [-procs 4]")
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "idle: %v\n", err)
		os.Exit(1)
	}
}

// holdClients opens n connections to addr, says "ready N" on stdout and
// keeps them until stdin closes.
func holdClients(n int, addr string) int {
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			fmt.Printf("failed %d %v\n", i, err)
			break
		}
		conns = append(conns, c)
	}
	fmt.Printf("ready %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

const config = `listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}

app "web" {
  command   = [%q]
  instances = %d
  listeners = ["http"]
  ready { check = "notify" }
  restart {
    max_restarts = 1000000
    window       = "1m"
  }
}
`

// reading is the runner's own figures at one moment.
type reading struct {
	fds            int
	pss, uss, rss  int64
	conns, maxConn int
}

func (r reading) String() string {
	return fmt.Sprintf("%d | %.1f | %.1f | %.1f | %d of %d", r.fds, mib(r.pss), mib(r.uss), mib(r.rss), r.conns, r.maxConn)
}

func run() error {
	rt := filepath.Join(*work, "rt")
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return err
	}
	os.Setenv("XDG_RUNTIME_DIR", rt)
	cfg := filepath.Join(*work, "cluster.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, *goapp, instances)), 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(*work, "runner.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(*clusterrun, "up", "-f", cfg)
	cmd.Dir = *work
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
	}()
	st, err := waitFor(cfg, 60*time.Second, "every instance ready", func(st status.Runner) bool { return len(runners.ServingReady(st)) == instances })
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logPath))
	}
	public := st.Listeners[0].Address
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)

	report.Header("clusterrun: idle proxy clients and what they cost the runner", "",
		fmt.Sprintf("invoked: %s", *invoked),
		fmt.Sprintf("runner:  %s up (pid %d); app: %s, %d instances behind listener %q %s (mode proxy)", *clusterrun, pid, *goapp, instances, st.Listeners[0].Name, public),
		fmt.Sprintf("clients: %d idle TCP connections (connected, sending nothing) from %d processes; descriptor limit %d soft, %d hard (the runner's own)", *clients, *procs, lim.Cur, lim.Max),
		"figures: the runner process alone (not its guard, not the instances): fds from /proc/PID/fd, PSS and USS from smaps_rollup, RSS from status",
		"")
	fmt.Println("| when | fds | PSS MiB | USS MiB | RSS MiB | proxied connections |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	before := read(pid, st)
	fmt.Printf("| before the clients | %s |\n", before)

	// The clients, spread over processes.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var holders []*holder
	defer func() {
		for _, h := range holders {
			h.stop()
		}
	}()
	t0 := time.Now()
	for i := 0; i < *procs; i++ {
		n := *clients / *procs
		if i < *clients%*procs {
			n++
		}
		h, err := startHolder(self, n, public)
		if err != nil {
			return err
		}
		holders = append(holders, h)
	}
	opened := 0
	for _, h := range holders {
		n, err := h.wait()
		if err != nil {
			return err
		}
		opened += n
	}
	fmt.Fprintf(os.Stderr, "%d clients connected in %s\n", opened, time.Since(t0).Round(time.Millisecond))
	// The runner takes them as fast as it can, up to its budget; the
	// rest wait in the listen backlog.
	var last int
	st, err = waitFor(cfg, 120*time.Second, "the runner to take the clients", func(st status.Runner) bool {
		c := st.Listeners[0].Conns
		settled := c == last && (c >= min(opened, st.Listeners[0].MaxConns))
		last = c
		return settled
	})
	if err != nil {
		return err
	}
	held := read(pid, st)
	fmt.Printf("| %d clients connected | %s |\n", opened, held)

	// An instance crash with the clients there: it must restart.
	restarts := restartCount(st)
	victim := runners.ServingReady(st)[1]
	tk := time.Now()
	syscall.Kill(victim, syscall.SIGKILL)
	st, err = waitFor(cfg, 60*time.Second, "the killed instance's replacement to be ready", func(st status.Runner) bool {
		return restartCount(st) > restarts && len(runners.ServingReady(st)) == instances
	})
	restarted := err == nil
	took := time.Since(tk)
	if err == nil {
		fmt.Printf("| after a kill -9 of instance pid %d (restarted in %s) | %s |\n", victim, took.Round(time.Millisecond), read(pid, st))
	}
	log, _ := os.ReadFile(logPath)
	emfile := strings.Count(string(log), "too many open files")

	// The clients leave.
	tl := time.Now()
	for _, h := range holders {
		h.stop()
	}
	holders = nil
	var back time.Duration
	var after status.Runner
	after, err = waitFor(cfg, 60*time.Second, "the runner's descriptors to come back", func(st status.Runner) bool {
		return fdCount(pid) <= before.fds+4 && st.Listeners[0].Conns == 0
	})
	if err == nil {
		back = time.Since(tl)
		fmt.Printf("| %s after the clients left | %s |\n", back.Round(time.Millisecond), read(pid, after))
	}

	fmt.Println()
	fmt.Println("## Summary")
	fmt.Println()
	fmt.Printf("- %d idle clients: the runner took %d (its budget: %d), the rest wait in the listen backlog; %d descriptors (%d before), %.0f bytes of PSS per connection taken\n",
		opened, held.conns, held.maxConn, held.fds, before.fds, float64(held.pss-before.pss)/float64(max(held.conns, 1)))
	fmt.Printf("- kill -9 of an instance with the clients connected: %s\n", map[bool]string{true: "restarted, ready in " + took.Round(time.Millisecond).String(), false: "NOT restarted within 60s"}[restarted])
	fmt.Printf("- \"too many open files\" in the runner's log: %d\n", emfile)
	if back > 0 {
		fmt.Printf("- descriptors back to %d within %s of the clients leaving\n", fdCount(pid), back.Round(time.Millisecond))
	} else {
		fmt.Printf("- descriptors NOT back within 60s of the clients leaving: %d (before: %d)\n", fdCount(pid), before.fds)
	}
	if !restarted || emfile > 0 || back == 0 {
		return errors.New("a target was missed (see the summary)")
	}
	return nil
}

func read(pid int, st status.Runner) reading {
	m := report.Memory(pid)
	return reading{fds: fdCount(pid), pss: m.PSS, uss: m.USS, rss: rssOf(pid), conns: st.Listeners[0].Conns, maxConn: st.Listeners[0].MaxConns}
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func rssOf(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// holder is a client process.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startHolder(self string, n int, addr string) (*holder, error) {
	cmd := exec.Command(self, "-hold", strconv.Itoa(n), "-addr", addr)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &holder{cmd: cmd, stdin: in, out: bufio.NewReader(out)}, nil
}

// wait returns how many connections the holder opened.
func (h *holder) wait() (int, error) {
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("client process: %w", err)
		}
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "ready "); ok {
			return strconv.Atoi(n)
		}
		fmt.Fprint(os.Stderr, "client process: "+line)
	}
}

func (h *holder) stop() {
	h.stdin.Close()
	h.cmd.Wait()
}

func restartCount(st status.Runner) int {
	n := 0
	for _, byReason := range st.Counters.Restarts {
		for _, c := range byReason {
			n += c
		}
	}
	return n
}

func statusOf(cfg string) (status.Runner, error) { return runners.StatusJSON(*clusterrun, cfg) }

// waitFor polls status until cond holds, for at most limit.
func waitFor(cfg string, limit time.Duration, what string, cond func(status.Runner) bool) (status.Runner, error) {
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := statusOf(cfg)
		lastErr = err
		if err == nil && len(st.Listeners) > 0 && cond(st) {
			return st, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return status.Runner{}, fmt.Errorf("timed out after %s waiting for %s (last status error: %v)", limit, what, lastErr)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
