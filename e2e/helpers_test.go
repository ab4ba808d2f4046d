//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// bin is the clusterrun binary under test; goHTTP and helper are the
	// Go example and the test helper app, all built once by TestMain.
	bin, goHTTP, helper string
	// repo is the repository root.
	repo string
)

// parallelTests is how many tests run side by side unless -test.parallel
// says otherwise. Most of an e2e test's time is waiting (for a boot, a slow
// request, a drain), so they call t.Parallel and run together. The few that
// keep the machine busy (load generators at full speed, hundreds of
// processes, a build) call heavy instead: they run beside the waiting ones
// but at most heavyTests of them at once, so that they never starve each
// other. Room for several waiting tests is left beside heavy tests that
// wait for their turn.
const (
	parallelTests = 8
	heavyTests    = 2
)

var heavySlots = make(chan struct{}, heavyTests)

// heavy marks t as a test that keeps the machine busy (see parallelTests):
// it runs in parallel with the others, and with at most heavyTests-1 other
// heavy tests.
func heavy(t *testing.T) {
	t.Helper()
	t.Parallel()
	select {
	case heavySlots <- struct{}{}:
	case <-time.After(9 * time.Minute): // the test binary's own timeout is 10
		t.Fatalf("waited 9 minutes for one of the %d slots of heavy tests", heavyTests)
	}
	t.Cleanup(func() { <-heavySlots })
}

func TestMain(m *testing.M) {
	// Only a default: -test.parallel on the command line wins.
	flag.Set("test.parallel", strconv.Itoa(parallelTests))
	dir, err := os.MkdirTemp("", "clusterrun-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by all: one test runs a command as another user.
	os.Chmod(dir, 0o755)
	repo, _ = filepath.Abs("..")
	bin = filepath.Join(dir, "clusterrun")
	goHTTP = filepath.Join(dir, "go-http")
	helper = filepath.Join(dir, "helper")
	for _, b := range []struct{ out, pkg string }{
		{bin, "."}, {goHTTP, "./examples/go-http"}, {helper, "./e2e/testdata/helper"},
	} {
		args := []string{"build", "-o", b.out}
		if raceBuild && b.pkg == "." {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = repo
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", b.pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lineLog collects a process's output lines and lets tests wait for one.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	closed  bool
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) feed(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			l.mu.Lock()
			l.lines = append(l.lines, strings.TrimRight(line, "\n"))
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		if err != nil {
			l.mu.Lock()
			l.closed = true
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
			return
		}
	}
}

// snapshot returns the lines so far, and a channel closed on the next one.
func (l *lineLog) snapshot() ([]string, <-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, l.changed, l.closed
}

func (l *lineLog) all() string {
	lines, _, _ := l.snapshot()
	return strings.Join(lines, "\n")
}

// runner is one `clusterrun up` under test.
type runner struct {
	t *testing.T
	// bin is the clusterrun binary it runs, and the CLI commands use.
	bin    string
	dir    string
	cfg    string
	env    []string
	cmd    *exec.Cmd
	out    *lineLog
	errs   *lineLog
	exited chan struct{}
	code   int
	// marker tags every process the runner starts, so the test can prove
	// that none survives it.
	marker string
	// rt is the runner's XDG_RUNTIME_DIR, where its control socket lives.
	rt string
}

// writeConfig writes cluster.hcl text into dir, substituting {{bin}},
// {{goHTTP}}, {{helper}} and {{repo}}.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	text = strings.NewReplacer("{{bin}}", bin, "{{goHTTP}}", goHTTP, "{{helper}}", helper, "{{repo}}", repo).Replace(text)
	p := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startRunner writes text as cluster.hcl in a fresh directory and starts
// `clusterrun up` on it.
func startRunner(t *testing.T, text string, args ...string) *runner {
	t.Helper()
	dir := t.TempDir()
	return startRunnerIn(t, dir, writeConfig(t, dir, text), args...)
}

func startRunnerIn(t *testing.T, dir, cfg string, args ...string) *runner {
	t.Helper()
	return startBinary(t, bin, dir, cfg, args...)
}

// startBinary starts `up` of the clusterrun binary exe.
func startBinary(t *testing.T, exe, dir, cfg string, args ...string) *runner {
	t.Helper()
	return startBinaryEnv(t, exe, dir, cfg, nil, args...)
}

// startBinaryEnv starts `up` of exe with env added to the test's own.
func startBinaryEnv(t *testing.T, exe, dir, cfg string, env []string, args ...string) *runner {
	t.Helper()
	return startBinaryRT(t, exe, dir, cfg, privateRT(t), env, args...)
}

// privateRT returns a private XDG_RUNTIME_DIR, which keeps every test's
// control socket apart; a short one, as a unix socket path is at most 107
// bytes and t.TempDir is named after the test.
func privateRT(t *testing.T) string {
	t.Helper()
	rt, err := os.MkdirTemp("", "cr-rt-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(rt, 0o700)
	t.Cleanup(func() { os.RemoveAll(rt) })
	return rt
}

// startRunnerRT starts `clusterrun up` with XDG_RUNTIME_DIR rt, which
// the runners of one test may share, as one user's runners do.
func startRunnerRT(t *testing.T, dir, cfg, rt string, args ...string) *runner {
	t.Helper()
	return startBinaryRT(t, bin, dir, cfg, rt, nil, args...)
}

func startBinaryRT(t *testing.T, exe, dir, cfg, rt string, env []string, args ...string) *runner {
	t.Helper()
	return startWith(t, exe, dir, cfg, rt, spawnOpts{upEnv: env}, args...)
}

// spawnOpts are the less common ways of starting a runner.
type spawnOpts struct {
	// env is added to the runner's environment and the CLI's.
	env []string
	// upEnv is added to the runner's environment only.
	upEnv []string
	// wrap is a command line the runner is started under, such as
	// timeout(1): the test's signals then go to the wrapper.
	wrap []string
	// args replace "up -f cfg" (for "clusterrun run", say); the CLI
	// commands then find the runner without -f when cfg is "".
	args []string
}

// startRunnerWith starts `clusterrun up -f cfg` in dir as o says, with a
// private XDG_RUNTIME_DIR.
func startRunnerWith(t *testing.T, dir, cfg string, o spawnOpts, args ...string) *runner {
	t.Helper()
	return startWith(t, bin, dir, cfg, privateRT(t), o, args...)
}

func startWith(t *testing.T, exe, dir, cfg, rt string, o spawnOpts, args ...string) *runner {
	t.Helper()
	r := &runner{t: t, bin: exe, dir: dir, cfg: cfg, out: newLineLog(), errs: newLineLog(), exited: make(chan struct{})}
	r.marker = fmt.Sprintf("CLUSTERRUN_E2E_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	r.rt = rt
	// A race-built binary sleeps a second at exit to flush reports; every
	// CLI call of the tests would pay it.
	r.env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "NO_COLOR=1", r.marker, "GORACE=atexit_sleep_ms=0")
	r.env = append(r.env, o.env...)
	cmdArgs := o.args
	if cmdArgs == nil {
		cmdArgs = []string{"up", "-f", cfg}
	}
	argv := slices.Concat(o.wrap, []string{exe}, cmdArgs, args)
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Dir = dir
	r.cmd.Env = append(r.env[:len(r.env):len(r.env)], o.upEnv...)
	stdout, _ := r.cmd.StdoutPipe()
	stderr, _ := r.cmd.StderrPipe()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fed := make(chan struct{}, 2)
	go func() { r.out.feed(stdout); fed <- struct{}{} }()
	go func() { r.errs.feed(stderr); fed <- struct{}{} }()
	go func() {
		// Wait closes the pipes, so it must come after the last read.
		<-fed
		<-fed
		r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.exited)
	}()
	t.Cleanup(r.cleanup)
	return r
}

func (r *runner) cleanup() {
	select {
	case <-r.exited:
	default:
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			r.cmd.Process.Kill()
			<-r.exited
		}
	}
	if strings.Contains(r.errs.all(), "WARNING: DATA RACE") {
		r.t.Errorf("the race detector found a data race in the runner")
	}
	if r.t.Failed() {
		r.t.Logf("runner stdout:\n%s\nrunner stderr:\n%s", r.out.all(), r.errs.all())
	}
	r.assertNoSurvivors()
}

// assertNoSurvivors fails if any process started by the runner is still
// alive: every one carries the marker in its environment.
func (r *runner) assertNoSurvivors() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := markedPids(r.marker)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			r.t.Errorf("processes %v survived the runner", pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func markedPids(marker string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if bytes.Contains(env, []byte(marker+"\x00")) {
			if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && bytes.Contains(st, []byte(") Z ")) {
				continue // a zombie holds nothing; its parent will reap it
			}
			out = append(out, pid)
		}
	}
	return out
}

// waitLine waits until an output line after index from matches pattern, and
// returns that line and the index after it.
func (r *runner) waitLine(from int, pattern string, timeout time.Duration) (string, int) {
	r.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(timeout)
	for {
		lines, changed, closed := r.out.snapshot()
		for i := from; i < len(lines); i++ {
			if re.MatchString(lines[i]) {
				return lines[i], i + 1
			}
		}
		from = max(from, len(lines))
		if closed {
			r.t.Fatalf("runner output ended without a line matching %q", pattern)
		}
		select {
		case <-changed:
		case <-deadline:
			r.t.Fatalf("no output line matching %q within %s", pattern, timeout)
		}
	}
}

// mark is the index of the next output line, for waitLine.
func (r *runner) mark() int {
	lines, _, _ := r.out.snapshot()
	return len(lines)
}

// port returns the port the runner bound for a listener.
func (r *runner) port(listener string) int {
	r.t.Helper()
	line, _ := r.waitLine(0, `listening: `+listener+` on `, 30*time.Second)
	m := regexp.MustCompile(`:(\d+) \(`).FindStringSubmatch(line)
	if m == nil {
		r.t.Fatalf("no port in %q", line)
	}
	p, _ := strconv.Atoi(m[1])
	return p
}

// wait waits for the runner to exit and returns its exit code.
func (r *runner) wait(timeout time.Duration) int {
	r.t.Helper()
	select {
	case <-r.exited:
		return r.code
	case <-time.After(timeout):
		r.t.Fatalf("runner still running %s later", timeout)
	}
	return -1
}

func (r *runner) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
}

// cli runs a clusterrun command against this runner's file.
func (r *runner) cli(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r.cfg != "" {
		args = append(args, "-f", r.cfg)
	}
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		r.t.Fatalf("clusterrun %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// statusJSON is the subset of `status --json` the tests read.
type statusJSON struct {
	PID        int `json:"pid"`
	Goroutines int `json:"goroutines"`
	Apps       []struct {
		Name          string `json:"name"`
		State         string `json:"state"`
		Instances     int    `json:"instances"`
		InstancesFrom string `json:"instances_from"`
		Procs         []struct {
			Instance int    `json:"instance"`
			PID      int    `json:"pid"`
			State    string `json:"state"`
			Role     string `json:"role"`
			Restarts int    `json:"restarts"`
			Release  int    `json:"release"`
			Addr     string `json:"addr"`
		} `json:"procs"`
	} `json:"apps"`
}

func (r *runner) status() statusJSON {
	r.t.Helper()
	out, errOut, code := r.cli("status", "--json")
	if code != 0 {
		r.t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		r.t.Fatalf("status --json printed invalid JSON: %v\n%s", err, out)
	}
	return st
}

// servingPids returns the pids of an app's serving processes by instance.
func (r *runner) servingPids(app string) map[int]int {
	out := make(map[int]int)
	for _, a := range r.status().Apps {
		if a.Name != app {
			continue
		}
		for _, p := range a.Procs {
			if p.Role == "serving" && p.PID != 0 {
				out[p.Instance] = p.PID
			}
		}
	}
	return out
}

// answer is what the example apps return for GET /.
type answer struct {
	Lang     string `json:"lang"`
	App      string `json:"app"`
	Instance int    `json:"instance"`
	PID      int    `json:"pid"`
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url string) (answer, error) {
	t.Helper()
	return getWith(client, url)
}

// getWith GETs url through c and decodes the example apps' answer.
func getWith(c *http.Client, url string) (answer, error) {
	body, err := getBody(c, url)
	if err != nil {
		return answer{}, err
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return answer{}, fmt.Errorf("bad body %q: %v", body, err)
	}
	return a, nil
}

// getBody GETs url through c and wants a 200, whatever the body.
func getBody(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return body, nil
}

// instancesAnswering sends requests until instances 0..want-1 have all
// answered (CLUSTERRUN_INSTANCE), and returns instance -> pid.
func instancesAnswering(t *testing.T, port, want int) map[int]int {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seen := make(map[int]int)
	for i := 0; i < 2000 && len(seen) < want; i++ {
		a, err := get(t, url)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		seen[a.Instance] = a.PID
	}
	for i := 0; i < want; i++ {
		if _, ok := seen[i]; !ok || len(seen) != want {
			t.Fatalf("instances (number: pid) %v answered, want exactly 0..%d", seen, want-1)
		}
	}
	return seen
}

func pidAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !bytes.Contains(st, []byte(") Z "))
}

// goWeb is a config running n instances of the Go example on one shared
// listener "http" at a random port, ready by READY=1.
func goWeb(n int) string {
	return fmt.Sprintf(`
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = %d
  listeners = ["http"]
  ready { check = "notify" }
}
`, n)
}

// sleepers is a config running n instances of sleep as app "web", ready
// after 100ms.
func sleepers(n int) string {
	return fmt.Sprintf(`
app "web" {
  command   = ["sleep", "1000"]
  instances = %d
  ready {
    check = "delay"
    delay = "100ms"
  }
}
`, n)
}

// listeningOn returns the local addresses of the TCP sockets listening on
// port, from /proc/net/tcp and tcp6.
func listeningOn(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if f == "/proc/net/tcp6" {
				continue // no IPv6
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			host, hexPort, _ := strings.Cut(fields[1], ":")
			if p, _ := strconv.ParseUint(hexPort, 16, 16); int(p) != port {
				continue
			}
			raw, _ := hex.DecodeString(host)
			for i := 0; i+4 <= len(raw); i += 4 { // each 32-bit word is in host (little-endian) order
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out = append(out, net.IP(raw).String())
		}
	}
	return out
}

// acceptedConns returns the fds of process pid that are TCP connections
// with local port port: the connections it accepted on a listener of that
// port. It reads each socket's own address through a copy of the fd
// (pidfd_getfd(2), allowed on the test's descendants), which is exact;
// /proc/net/tcp is not on a machine with tens of thousands of sockets in
// TIME_WAIT: a read of it takes long and skips entries that move meanwhile.
// A process that is gone holds nothing.
func acceptedConns(t *testing.T, pid, port int) []int {
	t.Helper()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(pidfd)
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, n)); err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			t.Fatalf("cannot copy fd %d of pid %d to read its address (pidfd_getfd needs Linux 5.6 and the right to ptrace the process): %v", n, pid, err)
		}
		if err != nil {
			continue // closed meanwhile
		}
		if local, ok := connPort(fd); ok && local == port {
			out = append(out, n)
		}
		unix.Close(fd)
	}
	return out
}

// connPort returns the local port of a connected TCP socket.
func connPort(fd int) (int, bool) {
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		return 0, false
	}
	if _, err := unix.Getpeername(fd); err != nil {
		return 0, false // listening, or not connected
	}
	switch sa, _ := unix.Getsockname(fd); a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port, true
	case *unix.SockaddrInet6:
		return a.Port, true
	}
	return 0, false
}
