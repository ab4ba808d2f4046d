// Package runners starts and drives the process runners the benchmarks
// compare — clusterrun and pm2's cluster mode — behind one interface.
package runners

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/status"
)

// Runner runs one app as N instances on one port.
type Runner interface {
	Name() string
	// Launch starts the runner and the app's instances and returns without
	// waiting for them.
	Launch(port int) error
	// WaitReady returns once the runner reports every instance ready.
	WaitReady(timeout time.Duration) error
	// Release makes the next reload roll out kind: "fast" (the same app),
	// "slow" (boots in 5 s) or "crash" (exits 1 at boot).
	Release(kind string) error
	// Reload triggers a rolling reload and returns when the runner says it
	// is over, done or aborted.
	Reload() error
	// PID is the supervising process: the runner, or pm2's daemon.
	PID() int
	// Supervisor lists the processes whose memory is the supervisor's:
	// clusterrun's runner and its guard, or pm2's daemon.
	Supervisor() []int
	// Status asks the runner for its status once, as a user polling it
	// would: clusterrun status, pm2 jlist.
	Status() error
	Stop()
}

// releaseEnv is what each release kind sets; the apps read it at boot.
var releaseEnv = map[string][2]string{
	"fast":  {"BOOT_DELAY_MS=0", "BOOT_CRASH=0"},
	"slow":  {"BOOT_DELAY_MS=5000", "BOOT_CRASH=0"},
	"crash": {"BOOT_DELAY_MS=0", "BOOT_CRASH=1"},
}

// Clusterrun runs `clusterrun up` on a generated cluster.hcl.
type Clusterrun struct {
	Label     string
	Bin       string
	Work      string
	Command   []string
	Instances int
	// Mode is the listener's mode: "" (shared) or "proxy".
	Mode string

	dir, cfg string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

func (c *Clusterrun) Name() string { return c.Label }

func (c *Clusterrun) writeConfig(env [2]string) error {
	var cmd []string
	for _, a := range c.Command {
		cmd = append(cmd, strconv.Quote(a))
	}
	var kv []string
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		kv = append(kv, fmt.Sprintf("%s = %q", k, v))
	}
	mode := ""
	if c.Mode != "" {
		mode = fmt.Sprintf("\n  mode    = %q", c.Mode)
	}
	text := fmt.Sprintf(`
listener "http" {
  address = "127.0.0.1:%d"%s
}
app "hello" {
  command   = [%s]
  instances = %d
  listeners = ["http"]
  env       = { %s }
  ready { check = "notify" }
}
`, c.port, mode, strings.Join(cmd, ", "), c.Instances, strings.Join(kv, ", "))
	return os.WriteFile(c.cfg, []byte(text), 0o644)
}

func (c *Clusterrun) Launch(port int) error {
	c.port = port
	c.dir = filepath.Join(c.Work, "clusterrun-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	c.cfg = filepath.Join(c.dir, "cluster.hcl")
	if err := c.writeConfig(releaseEnv["fast"]); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(c.dir, "runner.log"))
	if err != nil {
		return err
	}
	c.cmd = exec.Command(c.Bin, "up", "-f", c.cfg, "--color", "never")
	c.cmd.SysProcAttr = runnerAttr()
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+c.dir)
	if err := c.cmd.Start(); err != nil {
		log.Close()
		return err
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); log.Close(); close(c.exited) }()
	return nil
}

func (c *Clusterrun) WaitReady(timeout time.Duration) error {
	return waitLog(filepath.Join(c.dir, "runner.log"), fmt.Sprintf(`hello: %d of %d instances ready`, c.Instances, c.Instances), timeout, c.exited)
}

func (c *Clusterrun) Release(kind string) error { return c.writeConfig(releaseEnv[kind]) }

func (c *Clusterrun) Reload() error {
	// Exit 1 with "reload aborted" is the expected outcome of a crashing
	// release.
	cmd := exec.Command(c.Bin, "reload", "-f", c.cfg)
	cmd.Env = c.cmd.Env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(string(out), "reload aborted")) {
		return fmt.Errorf("clusterrun reload: %v: %s", err, out)
	}
	return nil
}

func (c *Clusterrun) PID() int { return c.cmd.Process.Pid }

func (c *Clusterrun) Supervisor() []int {
	pids := []int{c.PID()}
	if g := guardOf(c.PID()); g != 0 {
		pids = append(pids, g)
	}
	return pids
}

func (c *Clusterrun) Status() error {
	cmd := exec.Command(c.Bin, "status", "-f", c.cfg)
	cmd.Env = c.cmd.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("clusterrun status: %v: %s", err, out)
	}
	return nil
}

// StatusJSON runs `bin status --json -f cfg` in this process's
// environment and decodes what it prints.
func StatusJSON(bin, cfg string) (status.Runner, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st status.Runner
	out, err := exec.CommandContext(ctx, bin, "status", "--json", "-f", cfg).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return st, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("status --json: %w", err)
	}
	return st, nil
}

// ServingReady lists the pids of st's serving instances that are ready.
func ServingReady(st status.Runner) []int {
	var pids []int
	for _, a := range st.Apps {
		for _, p := range a.Procs {
			if p.Role == "serving" && p.State == "ready" && p.PID > 0 {
				pids = append(pids, p.PID)
			}
		}
	}
	return pids
}

// guardOf finds the guard process that the runner pid started, or 0.
func guardOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), "\x00__clusterrun_guard\x00") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return child
			}
		}
	}
	return 0
}

func (c *Clusterrun) Stop() {
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

// PM2 runs a Node script in pm2's cluster mode with a private PM2_HOME.
type PM2 struct {
	Bin       string
	Work      string
	Script    string
	Instances int

	port int
	env  [2]string
}

func (p *PM2) Name() string { return "pm2-node" }

func (p *PM2) home() string { return filepath.Join(p.Work, "pm2home") }

func (p *PM2) run(extraEnv []string, args ...string) ([]byte, error) {
	cmd := exec.Command(p.Bin, args...)
	cmd.Env = append(append(os.Environ(), "PM2_HOME="+p.home(), fmt.Sprintf("PORT=%d", p.port)), extraEnv...)
	return cmd.CombinedOutput()
}

// StartDaemon starts pm2's daemon ahead of time, so a measured Launch does
// not include it.
func (p *PM2) StartDaemon() error {
	out, err := p.run(nil, "ping")
	if err != nil {
		return fmt.Errorf("pm2 ping: %v: %s", err, out)
	}
	return nil
}

func (p *PM2) Launch(port int) error {
	p.port = port
	p.env = releaseEnv["fast"]
	if out, err := p.run(p.env[:], "start", p.Script, "-i", strconv.Itoa(p.Instances), "--name", "hello"); err != nil {
		return fmt.Errorf("pm2 start: %v: %s", err, out)
	}
	return nil
}

// WaitReady waits for pm2 to list every instance online and the port to
// answer.
func (p *PM2) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, _ := p.run(nil, "jlist")
		if strings.Count(string(out), `"status":"online"`) == p.Instances {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pm2: %d instances not online within %s", p.Instances, timeout)
}

func (p *PM2) Release(kind string) error {
	p.env = releaseEnv[kind]
	return nil
}

func (p *PM2) Reload() error {
	// pm2 reload returns once it has replaced every worker (or given up on
	// one); --update-env takes the release's environment from ours.
	out, err := p.run(p.env[:], "reload", "hello", "--update-env")
	if err != nil && !strings.Contains(string(out), "hello") {
		return fmt.Errorf("pm2 reload: %v: %s", err, out)
	}
	return nil
}

func (p *PM2) PID() int {
	b, _ := os.ReadFile(filepath.Join(p.home(), "pm2.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (p *PM2) Supervisor() []int { return []int{p.PID()} }

func (p *PM2) Status() error {
	if out, err := p.run(nil, "jlist"); err != nil {
		return fmt.Errorf("pm2 jlist: %v: %s", err, out)
	}
	return nil
}

func (p *PM2) Stop() {
	p.run(nil, "delete", "all")
}

// Kill ends pm2's daemon.
func (p *PM2) Kill() { p.run(nil, "kill") }

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

// Setup is what every benchmark needs to build its runners: the binaries
// and app that bench/common.sh prepared, and a scratch directory.
type Setup struct {
	Clusterrun, PM2, GoApp, HelloJS, Work string
}

// Flags registers the Setup's command-line flags.
func Flags() *Setup {
	s := &Setup{}
	flag.StringVar(&s.Clusterrun, "clusterrun", "", "clusterrun binary")
	flag.StringVar(&s.PM2, "pm2", "", "pm2 binary (from npm install pm2)")
	flag.StringVar(&s.GoApp, "goapp", "", "examples/go-http binary")
	flag.StringVar(&s.HelloJS, "hello", "", "bench/reload/hello.js")
	flag.StringVar(&s.Work, "work", "", "scratch directory")
	return s
}

// Names are the runners New knows: the same Node app under clusterrun and
// pm2, and the Go example under clusterrun. The -proxy ones run the app
// behind clusterrun's proxy listener; they are not in the default set.
const Names = "clusterrun-node,pm2-node,clusterrun-go"

// AllNames adds the proxy-mode runners to Names.
const AllNames = Names + ",clusterrun-node-proxy,clusterrun-go-proxy"

// New returns the runner called name with n instances.
func (s *Setup) New(name string, n int) (Runner, error) {
	switch name {
	case "clusterrun-node":
		return &Clusterrun{Label: name, Bin: s.Clusterrun, Work: s.Work, Command: []string{"node", s.HelloJS}, Instances: n}, nil
	case "clusterrun-go":
		return &Clusterrun{Label: name, Bin: s.Clusterrun, Work: s.Work, Command: []string{s.GoApp}, Instances: n}, nil
	case "clusterrun-node-proxy":
		return &Clusterrun{Label: name, Bin: s.Clusterrun, Work: s.Work, Command: []string{"node", s.HelloJS}, Instances: n, Mode: "proxy"}, nil
	case "clusterrun-go-proxy":
		return &Clusterrun{Label: name, Bin: s.Clusterrun, Work: s.Work, Command: []string{s.GoApp}, Instances: n, Mode: "proxy"}, nil
	case "pm2-node":
		return &PM2{Bin: s.PM2, Work: s.Work, Script: s.HelloJS, Instances: n}, nil
	}
	return nil, fmt.Errorf("unknown target %q (known: %s)", name, AllNames)
}
