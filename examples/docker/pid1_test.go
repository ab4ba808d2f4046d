//go:build linux

// The Docker image runs clusterrun as PID 1. Docker is not needed to test
// what that asks of it: unshare(1) gives a process a PID namespace of its
// own, where it is PID 1 exactly as in a container, with a /proc that shows
// that namespace only.
package docker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// namespaced starts `clusterrun up -f cfg` as PID 1 of a new PID namespace,
// as ENTRYPOINT ["clusterrun", "up"] runs in a container.
type namespaced struct {
	t      *testing.T
	cmd    *exec.Cmd // unshare
	env    []string
	bin    string
	cfg    string
	marker string

	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced on every line
	done  chan struct{} // closed when unshare has exited
	code  int
}

// unshareArgs make the namespace: --fork so that clusterrun, not unshare,
// is PID 1; --mount-proc for a /proc of the namespace; --kill-child so a
// failed test leaves nothing behind (unshare itself ignores SIGTERM and
// forwards nothing: signals go to clusterrun's own pid).
var unshareArgs = []string{"--pid", "--fork", "--mount-proc", "--kill-child"}

// needUnshare skips the test when PID namespaces cannot be made here.
func needUnshare(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipped: unshare (util-linux) is not installed; the PID 1 tests run clusterrun in a PID namespace of its own")
	}
	out, err := exec.Command(path, append(unshareArgs, "true")...).CombinedOutput()
	if err != nil {
		t.Skipf("skipped: unshare %s is not permitted here (%v: %s); it needs root, or CAP_SYS_ADMIN, or unprivileged user namespaces", strings.Join(unshareArgs, " "), err, bytes.TrimSpace(out))
	}
	return path
}

// build compiles pkg (relative to the repository root) into dir.
func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func startNamespaced(t *testing.T, unshare, bin, cfg string, extraEnv ...string) *namespaced {
	t.Helper()
	dir := filepath.Dir(cfg)
	rt := filepath.Join(dir, "rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	n := &namespaced{t: t, bin: bin, cfg: cfg, grew: make(chan struct{}), done: make(chan struct{})}
	n.marker = fmt.Sprintf("CLUSTERRUN_PID1_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	n.env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "NO_COLOR=1", n.marker)
	n.env = append(n.env, extraEnv...)
	n.cmd = exec.Command(unshare, append(unshareArgs, bin, "up", "-f", cfg)...)
	n.cmd.Dir = dir
	n.cmd.Env = n.env
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.feed(out)
		n.cmd.Wait()
		n.code = n.cmd.ProcessState.ExitCode()
		close(n.done)
	}()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			n.cmd.Process.Kill() // --kill-child takes the namespace with it
			<-n.done
		}
		if t.Failed() {
			t.Logf("clusterrun output:\n%s", strings.Join(n.snapshot(), "\n"))
		}
	})
	return n
}

func (n *namespaced) feed(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n.mu.Lock()
		n.lines = append(n.lines, sc.Text())
		close(n.grew)
		n.grew = make(chan struct{})
		n.mu.Unlock()
	}
}

func (n *namespaced) snapshot() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// waitLines waits until count lines match re and returns their submatches.
func (n *namespaced) waitLines(re string, count int, timeout time.Duration) [][]string {
	n.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		n.mu.Lock()
		var found [][]string
		for _, l := range n.lines {
			if m := rx.FindStringSubmatch(l); m != nil {
				found = append(found, m)
			}
		}
		grew := n.grew
		n.mu.Unlock()
		if len(found) >= count {
			return found
		}
		select {
		case <-grew:
		case <-n.done:
			n.t.Fatalf("clusterrun exited (status %d) before %d lines matched %q", n.code, count, re)
		case <-deadline:
			n.t.Fatalf("no %d lines matched %q within %s", count, re, timeout)
		}
	}
}

// runnerPID is clusterrun's pid as the test (outside the namespace) sees
// it: unshare's only child.
func (n *namespaced) runnerPID() int {
	n.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, p := range allPIDs() {
			if st, ok := readStat(p); ok && st.ppid == n.cmd.Process.Pid {
				return p
			}
		}
	}
	n.t.Fatal("found no child of unshare")
	return 0
}

// stop sends SIGTERM to clusterrun, as "docker stop" does, and returns its
// exit status (unshare exits with it).
func (n *namespaced) stop(pid int) int {
	n.t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		n.t.Fatalf("SIGTERM to clusterrun (pid %d): %v", pid, err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.t.Fatal("clusterrun did not exit within 30s of SIGTERM")
	}
	return n.code
}

// assertNoSurvivors fails if a process started in the namespace is alive:
// each carries the marker in its environment.
func (n *namespaced) assertNoSurvivors() {
	n.t.Helper()
	var alive []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		alive = alive[:0]
		for _, p := range allPIDs() {
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
			if err == nil && bytes.Contains(env, []byte(n.marker)) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return
		}
	}
	n.t.Errorf("processes of the namespace still alive after clusterrun exited: %v", alive)
}

type stat struct {
	ppid  int
	state string
	comm  string
}

func readStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return stat{ppid: ppid, state: f[0], comm: s[open+1 : end]}, true
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// descendants returns the processes below pid, as the host sees them.
func descendants(pid int) map[int]stat {
	children := make(map[int][]int)
	stats := make(map[int]stat)
	for _, p := range allPIDs() {
		if st, ok := readStat(p); ok {
			children[st.ppid] = append(children[st.ppid], p)
			stats[p] = st
		}
	}
	out := make(map[int]stat)
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out[c] = stats[c]
			queue = append(queue, c)
		}
	}
	return out
}

// The app "forker" double-forks: each "( ... &)" subshell starts a process
// and exits at once, so the process is orphaned and the kernel hands it to
// the namespace's PID 1 (also clusterrun's subreaper role outside a
// container). Five orphans print the parent they were handed to and exit,
// which leaves a zombie unless PID 1 reaps it; one more sleeps until the
// end and must be stopped with the rest.
const pid1Config = `
app "probe" {
  command = <<-EOT
    echo "ppid=$PPID"
    echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"
    echo "nproc=$(ls -d /proc/[0-9]* | wc -l)"
    exec sleep 1000
  EOT
}

app "forker" {
  command = <<-EOT
    for i in 1 2 3 4 5; do
      (sh -c 'sleep 0.3; read -r _ _ _ ppid _ < /proc/$$/stat; echo "orphan $$ ppid=$ppid"' &)
    done
    (exec sleep 1000 &)
    echo forked
    exec sleep 1000
  EOT
}
`

func TestPID1ReapsOrphansAndDrainsOnSIGTERM(t *testing.T) {
	unshare := needUnshare(t)
	dir := t.TempDir()
	bin := build(t, dir, "clusterrun", ".")
	cfg := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(cfg, []byte(pid1Config), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNamespaced(t, unshare, bin, cfg)
	runner := n.runnerPID()

	// clusterrun is PID 1 in the namespace: its own pid there...
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", runner))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^NSpid:\s+` + strconv.Itoa(runner) + `\s+1$`).Match(status) {
		t.Errorf("clusterrun (pid %d here) is not PID 1 of its namespace:\n%s", runner, status)
	}
	// ... the parent of its instances, and what the namespace's /proc
	// shows as PID 1.
	n.waitLines(`^probe\.0 +\| ppid=1$`, 1, 30*time.Second)
	if m := n.waitLines(`^probe\.0 +\| pid1=(.*)$`, 1, 10*time.Second); !strings.Contains(m[0][1], bin+" up -f "+cfg) {
		t.Errorf("/proc/1/cmdline in the namespace is %q, want clusterrun up", m[0][1])
	}

	// Every orphan was handed to PID 1, and PID 1 reaped it: no zombie
	// is left below clusterrun.
	orphans := n.waitLines(`^forker\.0 +\| orphan (\d+) ppid=(\d+)$`, 5, 30*time.Second)
	for _, m := range orphans {
		if m[2] != "1" {
			t.Errorf("orphan %s was handed to pid %s, not to PID 1 (clusterrun)", m[1], m[2])
		}
	}
	var zombies map[int]stat
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		zombies = make(map[int]stat)
		for p, st := range descendants(runner) {
			if st.state == "Z" {
				zombies[p] = st
			}
		}
		if len(zombies) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(zombies) > 0 {
		t.Errorf("zombies below clusterrun 10s after the orphans exited: %v", zombies)
	}
	// The long-lived orphan is still there, in forker's process group.
	var sleepers int
	for _, st := range descendants(runner) {
		if st.comm == "sleep" {
			sleepers++
		}
	}
	if sleepers != 3 {
		t.Errorf("%d sleep processes below clusterrun, want 3 (probe, forker, and forker's orphan)", sleepers)
	}

	// "docker stop": SIGTERM drains everything, orphan included, and
	// clusterrun exits 0.
	if code := n.stop(runner); code != 0 {
		t.Errorf("clusterrun exited with status %d after SIGTERM, want 0", code)
	}
	n.waitLines(`all instances stopped; exiting with status 0`, 1, time.Second)
	n.assertNoSurvivors()
}

// The image's own cluster.hcl, run as the image runs it: go-http on PATH,
// clusterrun PID 1. Only the port changes, to one nothing else uses.
func TestImageConfigAsPID1(t *testing.T) {
	unshare := needUnshare(t)
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := build(t, binDir, "clusterrun", ".")
	build(t, binDir, "go-http", "./examples/go-http")
	src, err := os.ReadFile("cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), `address = "0.0.0.0:8080"`, `address = "127.0.0.1:0"`, 1)
	if text == string(src) {
		t.Fatal(`cluster.hcl has no address = "0.0.0.0:8080" to move to a free port`)
	}
	cfg := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNamespaced(t, unshare, bin, cfg, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	runner := n.runnerPID()

	// Every instance ready, seen through the control socket the way
	// "docker exec CONTAINER clusterrun status" sees it.
	var st struct {
		PID       int `json:"pid"`
		Listeners []struct {
			Address string `json:"address"`
		} `json:"listeners"`
		Apps []struct {
			Instances int `json:"instances"`
			Procs     []struct {
				State string `json:"state"`
			} `json:"procs"`
		} `json:"apps"`
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, bin, "status", "--json", "-f", cfg)
		cmd.Env = n.env
		out, err := cmd.Output()
		cancel()
		ready := 0
		if err == nil && json.Unmarshal(out, &st) == nil && len(st.Apps) == 1 {
			for _, p := range st.Apps[0].Procs {
				if p.State == "ready" {
					ready++
				}
			}
			if ready == st.Apps[0].Instances && ready > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every instance ready within 60s: %v %s", err, out)
		}
	}
	if st.PID != 1 {
		t.Errorf("status says the runner's pid is %d, want 1 (PID 1 of the namespace)", st.PID)
	}
	if len(st.Listeners) != 1 {
		t.Fatalf("listeners: %+v", st.Listeners)
	}
	resp, err := newClient(10 * time.Second).Get("http://" + st.Listeners[0].Address + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"lang":"go"`) {
		t.Errorf("GET /: %s %s", resp.Status, body)
	}

	// The image's HEALTHCHECK, run as Docker runs it: in the WORKDIR, where
	// cluster.hcl is, with the image's PATH.
	health := func() (int, string) {
		t.Helper()
		hc := healthcheck(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, hc[0]), hc[1:]...) // the image's PATH
		cmd.Dir, cmd.Env = dir, n.env
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), strings.TrimSpace(string(out))
	}
	if code, out := health(); code != 0 || out != "ready" {
		t.Errorf("HEALTHCHECK with every instance ready: exit %d %q, want 0 \"ready\"", code, out)
	}

	// "docker kill -s HUP": a rolling reload with a request in flight.
	url := "http://" + st.Listeners[0].Address
	slow := inFlight(url + "/slow?ms=1000")
	syscall.Kill(runner, syscall.SIGHUP)
	n.waitLines(`web: reload complete`, 1, 60*time.Second)
	if err := <-slow; err != nil {
		t.Errorf("request in flight during the reload: %v", err)
	}
	if code, out := health(); code != 0 {
		t.Errorf("HEALTHCHECK after the reload: exit %d %q", code, out)
	}

	// "docker stop": SIGTERM with a request in flight, which finishes; the
	// health check says not ready while the runner drains.
	slow = inFlight(url + "/slow?ms=3000")
	_, port, _ := strings.Cut(st.Listeners[0].Address, ":")
	waitAccepted(t, port, slow)
	syscall.Kill(runner, syscall.SIGTERM)
	n.waitLines(`received SIGTERM`, 1, 10*time.Second)
	if code, out := health(); code != 1 || !strings.HasPrefix(out, "not ready") {
		t.Errorf("HEALTHCHECK while draining: exit %d %q, want 1 \"not ready: ...\"", code, out)
	}
	if err := <-slow; err != nil {
		t.Errorf("request in flight at SIGTERM: %v", err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("clusterrun did not exit within 30s of SIGTERM")
	}
	if n.code != 0 {
		t.Errorf("clusterrun exited with status %d after SIGTERM, want 0", n.code)
	}
	n.assertNoSurvivors()
}

// healthcheck is the Dockerfile's HEALTHCHECK CMD, exec form.
func healthcheck(t *testing.T) []string {
	t.Helper()
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("the Dockerfile has no HEALTHCHECK ... CMD [...] (exec form)")
	}
	var argv []string
	if err := json.Unmarshal(m[1], &argv); err != nil || len(argv) == 0 {
		t.Fatalf("HEALTHCHECK CMD %s: %v", m[1], err)
	}
	return argv
}

// newClient makes a client that opens a new connection per request, as a
// new visitor does: a connection kept alive from an earlier request may lead
// to an instance that is draining, not to one the listener hands it to.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// inFlight sends a GET and delivers its outcome.
func inFlight(url string) <-chan error {
	done := make(chan error, 1)
	go func() {
		resp, err := newClient(60 * time.Second).Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("%s", resp.Status)
			}
		}
		done <- err
	}()
	return done
}

// waitAccepted waits until a connection to port has been accepted: an
// established socket with that local port that has an inode, which a
// connection still in the listening socket's queue does not (the kernel
// gives it one when a process accepts it). Only instances accept from the
// shared socket, so the request is in an instance, not in the queue, where
// a stop would end it.
func waitAccepted(t *testing.T, port string, slow <-chan error) {
	t.Helper()
	p, _ := strconv.Atoi(port)
	local := fmt.Sprintf(":%04X", p)
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		seen = seen[:0]
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				// local address, state (01: established), inode
				if fs := strings.Fields(line); len(fs) > 9 && strings.HasSuffix(fs[1], local) && fs[3] == "01" {
					if fs[9] != "0" {
						return
					}
					seen = append(seen, fs[1]+" "+fs[2])
				}
			}
		}
		select {
		case err := <-slow:
			t.Fatalf("the request in flight ended (%v) before it was seen accepted on port %s; established, not accepted: %q", err, port, seen)
		default:
		}
	}
	t.Fatalf("no connection to port %s was accepted within 30s; established, not accepted: %q", port, seen)
}
