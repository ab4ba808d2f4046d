package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/runners"
)

// Target runs N instances of an app on one port of 127.0.0.1.
type Target interface {
	// Name is the target's label: one of Targets.
	Name() string
	// Start launches the instances on 127.0.0.1:port and returns once the
	// target says they are ready. The limit has nobody to say so; the
	// check that every instance answers (Session.Check) covers it.
	Start(ctx context.Context, port int) error
	// Supervisor is the pid of the supervising process — the clusterrun
	// runner, pm2's daemon, the cluster primary — or 0 when there is none.
	Supervisor() int
	// Log returns the tail of the target's output, for failure messages.
	Log() string
	// Stop ends every process the target started and waits for them.
	Stop()
}

// Targets lists every target, in table order. The last three run Node
// only. Further targets (not run unless named): the HTTP-aware proxies of
// ProxyKinds.
const Targets = "limit,shared,reuseport,proxy,http,haproxy,nginx,pm2,cluster-rr,cluster-none"

// NodeOnly reports whether target can run only the Node app.
func NodeOnly(target string) bool {
	switch target {
	case "pm2", "cluster-rr", "cluster-none":
		return true
	}
	return false
}

// Apps lists the apps, in table order.
const Apps = "go,node"

// Paths are the binaries and scripts the targets run, prepared by the
// benchmark's run.sh.
type Paths struct {
	// Work is a scratch directory; pm2's home is Work/pm2home, which is
	// where bench/common.sh kills pm2's daemon on exit.
	Work       string
	Clusterrun string
	PM2        string
	// GoApp is bench/throughput/goapp, built.
	GoApp string
	// HelloJS is bench/reload/hello.js.
	HelloJS string
	// LimitJS and ClusterJS are bench/throughput/limit.js and cluster.js.
	LimitJS   string
	ClusterJS string
}

// App is the program every instance runs.
type App struct {
	// Name is "go" or "node".
	Name string
	// Command is its argv under a runner.
	Command []string
	// LimitCommand is its argv with no runner, taking fd 3.
	LimitCommand []string
}

// App returns the app called name.
func (p *Paths) App(name string) (App, error) {
	switch name {
	case "go":
		return App{Name: name, Command: []string{p.GoApp}, LimitCommand: []string{p.GoApp}}, nil
	case "node":
		return App{Name: name, Command: []string{"node", p.HelloJS},
			LimitCommand: []string{"node", "--require", p.LimitJS, p.HelloJS}}, nil
	}
	return App{}, fmt.Errorf("unknown app %q (known: %s)", name, Apps)
}

// New returns target name running n instances of app.
func (p *Paths) New(name string, app App, n int) (Target, error) {
	if NodeOnly(name) && app.Name != "node" {
		return nil, fmt.Errorf("target %s runs the Node app only", name)
	}
	switch name {
	case "limit":
		return &Limit{App: app, N: n, Work: p.Work}, nil
	case "shared", "reuseport", "proxy", "http":
		return &Clusterrun{Bin: p.Clusterrun, Work: p.Work, Mode: name, App: app, N: n}, nil
	case "pm2":
		if p.PM2 == "" {
			return nil, fmt.Errorf("target pm2 needs -pm2")
		}
		return &PM2{pm: &runners.PM2{Bin: p.PM2, Work: p.Work, Script: p.HelloJS, Instances: n}, work: p.Work}, nil
	case "cluster-rr", "cluster-none":
		return &NodeCluster{Policy: strings.TrimPrefix(name, "cluster-"), Script: p.ClusterJS, HelloJS: p.HelloJS, N: n, Work: p.Work}, nil
	}
	if k := ProxyKinds[name]; k != nil {
		return &External{Kind: k, App: app, N: n, Work: p.Work}, nil
	}
	return nil, fmt.Errorf("unknown target %q (known: %s, haproxy-http, nginx-http, nginx-http-fwd, caddy-http)", name, Targets)
}

// Limit is N processes accepting on one shared socket with no runner: the
// benchmark binds 127.0.0.1:port itself (SO_REUSEADDR, backlog 4096, as
// clusterrun's shared listener) and starts each copy through the exec shim
// with the socket as fd 3, LISTEN_FDS=1, LISTEN_FDNAMES=http and LISTEN_PID
// its own pid. Nothing supervises them afterwards.
type Limit struct {
	App  App
	N    int
	Work string

	log   string
	procs []*proc
}

func (l *Limit) Name() string    { return "limit" }
func (l *Limit) Supervisor() int { return 0 }
func (l *Limit) Log() string     { return tail(l.log) }

func (l *Limit) Start(ctx context.Context, port int) error {
	fd, err := loopbackSocket()
	if err != nil {
		return fmt.Errorf("cannot create a socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "http")
	// The children hold their own copies; ours goes once they are started.
	defer f.Close()
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("cannot set SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("cannot bind 127.0.0.1:%d: %w", port, err)
	}
	if err := syscall.Listen(fd, 4096); err != nil {
		return fmt.Errorf("cannot listen on 127.0.0.1:%d: %w", port, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, path, err := newLog(l.Work, "limit-"+l.App.Name)
	if err != nil {
		return err
	}
	defer logf.Close()
	l.log = path
	for i := 0; i < l.N; i++ {
		argv := append([]string{self, shimArg}, l.App.LimitCommand...)
		env := childEnv("LISTEN_FDS=1", "LISTEN_FDNAMES=http", "PORT="+strconv.Itoa(port), "CLUSTERRUN_INSTANCE="+strconv.Itoa(i))
		p, err := startProc(argv, env, logf, []*os.File{f})
		if err != nil {
			return fmt.Errorf("cannot start instance %d: %w", i, err)
		}
		l.procs = append(l.procs, p)
	}
	return nil
}

func (l *Limit) Stop() {
	for _, p := range l.procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range l.procs {
		p.waitOrKill(5 * time.Second)
	}
	l.procs = nil
}

// Clusterrun runs `clusterrun up` on a generated cluster.hcl: one listener
// on 127.0.0.1:port in Mode (shared, reuseport, proxy with least-conn, or
// http with least-requests), one app "hello" with N instances. Readiness
// is notify for shared and reuseport (the Go app sends READY=1, the Node
// preload does it for hello.js) and tcp for proxy and http (the runner
// probes each private address).
type Clusterrun struct {
	Bin, Work, Mode string
	App             App
	N               int

	log string
	p   *proc
}

func (c *Clusterrun) Name() string { return c.Mode }

func (c *Clusterrun) Supervisor() int {
	if c.p == nil {
		return 0
	}
	return c.p.cmd.Process.Pid
}

func (c *Clusterrun) Log() string { return tail(c.log) }

// Config returns the cluster.hcl for port.
func (c *Clusterrun) Config(port int) string {
	var argv []string
	for _, a := range c.App.Command {
		argv = append(argv, strconv.Quote(a))
	}
	check, balance := "notify", ""
	switch c.Mode {
	case "proxy":
		check, balance = "tcp", "\n  balance = \"least-conn\""
	case "http":
		check, balance = "tcp", "\n  balance = \"least-requests\""
	}
	return fmt.Sprintf(`listener "http" {
  address = "127.0.0.1:%d"
  mode    = %q%s
}

app "hello" {
  command   = [%s]
  instances = %d
  listeners = ["http"]
  ready { check = %q }
}
`, port, c.Mode, balance, strings.Join(argv, ", "), c.N, check)
}

func (c *Clusterrun) Start(ctx context.Context, port int) error {
	dir, err := os.MkdirTemp(c.Work, "clusterrun-"+c.Mode+"-")
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(cfg, []byte(c.Config(port)), 0o644); err != nil {
		return err
	}
	logf, path, err := newLog(dir, "runner")
	if err != nil {
		return err
	}
	defer logf.Close()
	c.log = path
	// XDG_RUNTIME_DIR puts the control socket in the scratch directory.
	c.p, err = startProc([]string{c.Bin, "up", "-f", cfg, "--color", "never"}, childEnv("XDG_RUNTIME_DIR="+dir), logf, nil)
	if err != nil {
		return err
	}
	return waitLog(ctx, path, fmt.Sprintf(`hello: %d of %d instances ready`, c.N, c.N), 60*time.Second, c.p.exited)
}

func (c *Clusterrun) Stop() {
	if c.p == nil {
		return
	}
	// The runner drains its instances; SIGKILL to it (after 30 s) still
	// takes them down, as the product contract says.
	c.p.signal(syscall.SIGTERM)
	c.p.waitOrKill(30 * time.Second)
	c.p = nil
}

// NodeCluster runs cluster.js: Node's cluster module with scheduling Policy
// "rr" or "none", N workers running hello.js.
type NodeCluster struct {
	Policy, Script, HelloJS, Work string
	N                             int

	log string
	p   *proc
}

func (n *NodeCluster) Name() string { return "cluster-" + n.Policy }

func (n *NodeCluster) Supervisor() int {
	if n.p == nil {
		return 0
	}
	return n.p.cmd.Process.Pid
}

func (n *NodeCluster) Log() string { return tail(n.log) }

func (n *NodeCluster) Start(ctx context.Context, port int) error {
	logf, path, err := newLog(n.Work, n.Name())
	if err != nil {
		return err
	}
	defer logf.Close()
	n.log = path
	env := childEnv("NODE_CLUSTER_SCHED_POLICY="+n.Policy, "PORT="+strconv.Itoa(port))
	n.p, err = startProc([]string{"node", n.Script, n.HelloJS, strconv.Itoa(n.N)}, env, logf, nil)
	if err != nil {
		return err
	}
	return waitLog(ctx, path, fmt.Sprintf(`cluster: %d workers listening`, n.N), 60*time.Second, n.p.exited)
}

func (n *NodeCluster) Stop() {
	if n.p == nil {
		return
	}
	// The primary stops its workers, which share its process group.
	n.p.signal(syscall.SIGTERM)
	n.p.waitOrKill(15 * time.Second)
	n.p = nil
}

// PM2 runs hello.js in pm2's cluster mode (`pm2 start hello.js -i N`) with
// the private PM2_HOME of bench/runners. The supervisor is pm2's daemon, the
// cluster primary of its workers.
type PM2 struct {
	pm      *runners.PM2
	work    string
	started bool
}

func (p *PM2) Name() string    { return "pm2" }
func (p *PM2) Supervisor() int { return p.pm.PID() }

func (p *PM2) Log() string {
	files, _ := filepath.Glob(filepath.Join(p.work, "pm2home", "logs", "*.log"))
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s:\n%s\n", f, tail(f))
	}
	return b.String()
}

func (p *PM2) Start(ctx context.Context, port int) error {
	// The daemon starts ahead of the app, so its start is not measured.
	if err := p.pm.StartDaemon(); err != nil {
		return err
	}
	p.started = true
	if err := p.pm.Launch(port); err != nil {
		return err
	}
	return p.pm.WaitReady(60 * time.Second)
}

// Stop deletes the app; the daemon stays for the next cell (KillPM2 ends it).
func (p *PM2) Stop() {
	if p.started {
		p.pm.Stop()
	}
}

// KillPM2 ends the pm2 daemon of work's private PM2_HOME, if one runs.
func KillPM2(pm2, work string) {
	if pm2 == "" {
		return
	}
	(&runners.PM2{Bin: pm2, Work: work}).Kill()
}

// proc is a started process in its own process group, which dies with the
// benchmark (parent-death signal) even if the benchmark is killed.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startProc(argv, env []string, log *os.File, extra []*os.File) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) signal(sig syscall.Signal) { syscall.Kill(p.cmd.Process.Pid, sig) }

// waitOrKill waits up to grace for the process to exit, then kills its
// process group: whatever is left of it.
func (p *proc) waitOrKill(grace time.Duration) {
	select {
	case <-p.exited:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "pid %d (%s) did not stop within %s: killing its group\n", p.cmd.Process.Pid, filepath.Base(p.cmd.Path), grace)
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// childEnv is our environment without what would confuse a child about
// its sockets, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "LISTEN_"), strings.HasPrefix(k, "CLUSTERRUN_"),
			k == "NOTIFY_SOCKET", k == "NODE_OPTIONS", k == "PORT", k == "NODE_CLUSTER_SCHED_POLICY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func newLog(dir, name string) (*os.File, string, error) {
	f, err := os.CreateTemp(dir, name+"-*.log")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// tail returns the last few KiB of a file.
func tail(path string) string {
	if path == "" {
		return ""
	}
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// waitLog waits until the file holds a line matching pattern.
func waitLog(ctx context.Context, path, pattern string, limit time.Duration, exited <-chan struct{}) error {
	re := regexp.MustCompile(pattern)
	deadline := time.After(limit)
	for {
		if b, _ := os.ReadFile(path); re.Match(b) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before logging %q", pattern)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("no %q in its output within %s", pattern, limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
