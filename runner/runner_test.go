package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"os/signal"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// The test binary also plays the exec shim and the instance programs, as
// os/exec's own tests do: RUNNER_TEST_HELPER picks the part.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == listeners.ShimArg {
		os.Exit(listeners.ExecShim(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == proc.GuardArg {
		os.Exit(proc.RunGuard(os.Args[2:]))
	}
	if h := os.Getenv("RUNNER_TEST_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	r, err := proc.NewReaper()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reaper = r
	code := m.Run()
	r.Close()
	os.Exit(code)
}

// reaper is the test process's one Reaper.
var reaper *proc.Reaper

func helper(kind string) int {
	switch kind {
	case "serve":
		// An HTTP server on fd 3 when given one (listening on it if it is
		// a proxy's private socket, bound but not listening), else on $PORT.
		var ln net.Listener
		var err error
		if os.Getenv("LISTEN_FDS") == "1" && os.Getenv("HELPER_BIND_PORT") == "" {
			if v, _ := syscall.GetsockoptInt(3, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); v == 0 {
				syscall.Listen(3, 128)
			}
			ln, err = net.FileListener(os.NewFile(3, "listener"))
		} else {
			ln, err = net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			return 2
		}
		if os.Getenv("HELPER_NOTIFY") != "" {
			c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
			if err == nil {
				c.Write([]byte("READY=1\nSTATUS=serving"))
				c.Close()
			}
		}
		body := fmt.Sprintf("instance %s pid %d\n", os.Getenv("CLUSTERRUN_INSTANCE"), os.Getpid())
		fmt.Println("serving", body)
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
		waitTerm()
		return 0
	case "env":
		for _, k := range strings.Split(os.Getenv("HELPER_KEYS"), ",") {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		fd, _ := strconv.Atoi(os.Getenv("CLUSTERRUN_READY_FD"))
		os.NewFile(uintptr(fd), "ready").Write([]byte("READY=1\n"))
		waitTerm()
		return 0
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing")
		return 3
	}
	return 100
}

func waitTerm() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
}

// harness runs a real Runner on a config written as HCL.
type harness struct {
	t      *testing.T
	r      *Runner
	out    *syncBuf
	sigs   chan signals.Event
	exited chan struct{}
	code   int
	events chan status.Lifecycle
}

type syncBuf struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor waits until the output contains sub, and returns it.
func (s *syncBuf) waitFor(t *testing.T, sub string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		out := s.b.String()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if strings.Contains(out, sub) {
			return out
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q in the output within 20s", sub)
		}
	}
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHarness(t *testing.T, text string) *harness {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.hcl")
	text = strings.ReplaceAll(text, "{{exe}}", exe)
	os.WriteFile(path, []byte(text), 0o644)
	cfg, files, diags := hclconfig.Load(path)
	if diags.HasErrors() {
		var b strings.Builder
		hclconfig.WriteDiagnostics(&b, files, diags, 0, false)
		t.Fatalf("config: %s", b.String())
	}
	h := &harness{t: t, out: &syncBuf{}, sigs: make(chan signals.Event, 4), exited: make(chan struct{}), events: make(chan status.Lifecycle, 1024)}
	mux := logmux.New(logmux.Options{Out: h.out})
	h.r, err = New(Options{
		Config: cfg, Log: mux, Signals: h.sigs, Exe: exe, RuntimeDir: t.TempDir(), Reaper: reaper,
		Load: func() (*hclconfig.Config, error) {
			cfg, _, diags := hclconfig.Load(path)
			if diags.HasErrors() {
				return nil, diags
			}
			return cfg, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.r.Subscribe(func(ev status.Lifecycle) {
		select {
		case h.events <- ev:
		default:
		}
	})
	go func() {
		h.code = h.r.Run()
		close(h.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			h.sigs <- signals.Event{Kind: signals.Shutdown, Signal: syscall.SIGTERM}
			select {
			case <-h.exited:
			case <-time.After(20 * time.Second):
				t.Errorf("runner still running 20s after SIGTERM")
			}
		}
		if t.Failed() {
			t.Logf("runner output:\n%s", h.out.String())
		}
	})
	return h
}

// waitRoutable waits until n instances have become routable.
func (h *harness) waitRoutable(n int) map[InstanceID]status.Lifecycle {
	h.t.Helper()
	got := map[InstanceID]status.Lifecycle{}
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case ev := <-h.events:
			switch ev.Kind {
			case status.Routable:
				got[ev.ID] = ev
			case status.Unroutable, status.Gone:
				delete(got, ev.ID)
			}
		case <-deadline:
			h.t.Fatalf("%d of %d instances routable after 20s", len(got), n)
		}
	}
	return got
}

func (h *harness) stop() int {
	h.t.Helper()
	h.sigs <- signals.Event{Kind: signals.Shutdown, Signal: syscall.SIGTERM}
	select {
	case <-h.exited:
		return h.code
	case <-time.After(20 * time.Second):
		h.t.Fatal("runner still running 20s after SIGTERM")
	}
	return -1
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Proxy mode end to end: each instance gets a private socket (one takes
// fd 3 and listens on it, one binds PORT itself), the proxy routes to both
// once they pass their tcp check, and a drain ends everything cleanly.
func TestRunnerProxy(t *testing.T) {
	for _, bind := range []string{"", "1"} {
		h := startHarness(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["{{exe}}"]
  instances = 2
  listeners = ["http"]
  env       = { RUNNER_TEST_HELPER = "serve", HELPER_BIND_PORT = "`+bind+`" }
}
`)
		h.waitRoutable(2)
		addr := h.r.Addrs()[0]
		addr = strings.TrimSuffix(strings.Fields(addr)[2], "")
		seen := map[string]bool{}
		for i := 0; i < 200 && len(seen) < 2; i++ {
			seen[strings.Fields(getBody(t, "http://"+addr+"/"))[1]] = true
		}
		if len(seen) != 2 {
			t.Errorf("bind=%q: instances %v answered through the proxy, want 0 and 1", bind, seen)
		}
		st, err := h.r.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Apps[0].Procs {
			if p.Addr == "" || p.State != "ready" || p.PSSBytes <= 0 || p.USSBytes <= 0 || p.USSBytes > p.PSSBytes {
				t.Errorf("status of %d: %+v", p.Instance, p)
			}
		}
		if code := h.stop(); code != 0 {
			t.Errorf("exit %d", code)
		}
	}
}

// Shared mode with notify readiness; restart, scale and stop/start through
// the API the control socket uses.
func TestRunnerSharedNotifyAndCommands(t *testing.T) {
	h := startHarness(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["{{exe}}"]
  instances = 2
  listeners = ["http"]
  env       = { RUNNER_TEST_HELPER = "serve", HELPER_NOTIFY = "1" }
  ready { check = "notify" }
}
`)
	h.waitRoutable(2)
	ctx := context.Background()
	res, err := h.r.Restart(ctx, "web", 1)
	if err != nil || res.Err != nil || !strings.Contains(res.Summary, "restart complete") {
		t.Fatalf("restart web.1: %v %v %q", err, res.Err, res.Summary)
	}
	if n, err := h.r.Scale(ctx, "web", "+1"); err != nil || n != 3 {
		t.Fatalf("scale +1: %d %v", n, err)
	}
	if _, err := h.r.Scale(ctx, "web", "+100000"); err == nil || !strings.Contains(err.Error(), "1..4096") {
		t.Errorf("scale +100000: %v", err)
	}
	res, err = h.r.Reload(ctx, "")
	if err != nil || res.Err != nil {
		t.Fatalf("reload: %v %v %q", err, res.Err, res.Summary)
	}
	// The file's count (2) did not change since it was loaded, so the live
	// scale (3) stays, and every serving process runs the new release.
	st, _ := h.r.Snapshot(ctx)
	serving := 0
	for _, p := range st.Apps[0].Procs {
		if p.Role == "serving" {
			serving++
			if p.Release != st.Apps[0].Release || p.Message != "serving" {
				t.Errorf("after the reload: %+v", p)
			}
		}
	}
	if serving != 3 || st.Apps[0].InstancesFrom != status.CountScale {
		t.Errorf("%d serving after the reload (count from %q), want 3 from scale: %+v", serving, st.Apps[0].InstancesFrom, st.Apps[0].Procs)
	}
	if err := h.r.StopApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := h.r.StartApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	h.waitRoutable(3)
	if code := h.stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if _, err := h.r.Snapshot(ctx); err != errStopped {
		t.Errorf("Snapshot after the end: %v", err)
	}
}

// What an instance receives, and the ready pipe.
func TestRunnerInstanceEnv(t *testing.T) {
	h := startHarness(t, `
env = { GLOBAL = "g", SHARED = "global" }
listener "http" {
  address = "127.0.0.1:0"
}
app "w" {
  command   = ["{{exe}}"]
  listeners = ["http"]
  env = {
    RUNNER_TEST_HELPER = "env"
    SHARED             = "app"
    NODE_OPTIONS       = "--max-old-space-size=64"
    HELPER_KEYS        = "GLOBAL,SHARED,LISTEN_FDS,LISTEN_FDNAMES,CLUSTERRUN_APP,CLUSTERRUN_INSTANCE,NODE_OPTIONS,LISTEN_PID"
  }
  ready { check = "notify" }
}
`)
	h.waitRoutable(1)
	out := h.out.waitFor(t, "LISTEN_PID=")
	for _, want := range []string{"GLOBAL=g", "SHARED=app", "LISTEN_FDS=1", "LISTEN_FDNAMES=http", "CLUSTERRUN_APP=w",
		"CLUSTERRUN_INSTANCE=0", "--max-old-space-size=64", "node-preload.js"} {
		if !strings.Contains(out, want) {
			t.Errorf("instance output lacks %q:\n%s", want, out)
		}
	}
	st, _ := h.r.Snapshot(context.Background())
	if pid := st.Apps[0].Procs[0].PID; !strings.Contains(out, "LISTEN_PID="+strconv.Itoa(pid)) {
		t.Errorf("LISTEN_PID is not the instance's pid %d:\n%s", pid, out)
	}
	h.stop()
}

// A program that cannot be started is reported by name (not the exec
// shim's), and restarted under the policy.
func TestRunnerSpawnFailureNamesTheProgram(t *testing.T) {
	cfg := testConfig(1, web("good", 1))
	cfg.Apps[0].Command = []string{"/nonexistent/program"}
	cfg.Apps[0].Restart.MaxRestarts = 0
	out := &syncBuf{}
	exe, _ := os.Executable()
	r, err := New(Options{Config: cfg, Log: logmux.New(logmux.Options{Out: out}), Exe: exe, RuntimeDir: t.TempDir(), Reaper: reaper})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- r.Run() }()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("exit %d, want 1 (the only app failed)", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runner did not give up")
	}
	if s := out.String(); !strings.Contains(s, `cannot run "/nonexistent/program"`) || strings.Contains(s, "runner.test") {
		t.Errorf("log:\n%s", s)
	}
}

func TestProber(t *testing.T) {
	var code sync.Mutex
	status := 503
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code.Lock()
		defer code.Unlock()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	got := make(chan ProbeResult, 16)
	p := newProber(func(ev Event) { got <- ev.(ProbeResult) })
	defer p.close()
	next := func() ProbeResult {
		select {
		case r := <-got:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no probe result in 10s")
		}
		return ProbeResult{}
	}
	// tcp: ready at once.
	p.Ready(1, addr, hclconfig.ReadyTCP, "")
	if r := next(); !r.OK || r.Health || r.ID != 1 {
		t.Errorf("tcp ready: %+v", r)
	}
	// http: not ready while 503, ready once 200.
	p.Ready(2, addr, hclconfig.ReadyHTTP, "/healthz")
	select {
	case r := <-got:
		t.Fatalf("ready on 503: %+v", r)
	case <-time.After(3 * readyPoll):
	}
	code.Lock()
	status = 200
	code.Unlock()
	if r := next(); !r.OK || r.ID != 2 {
		t.Errorf("http ready: %+v", r)
	}
	// health: a refused connection fails with a reason, repeatedly, until
	// Stop.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p.Health(3, dead, hclconfig.Health{Check: hclconfig.HealthTCP, Interval: 20 * time.Millisecond, Timeout: time.Second, Failures: 3})
	for i := 0; i < 2; i++ {
		if r := next(); r.OK || !r.Health || !strings.Contains(r.Detail, "refused") {
			t.Errorf("health of a dead address: %+v", r)
		}
	}
	p.Stop(3)
	// Drain what raced the stop, then expect silence.
	deadline := time.After(5 * 20 * time.Millisecond)
	for {
		select {
		case <-got:
			continue
		case <-deadline:
		}
		break
	}
	select {
	case r := <-got:
		t.Errorf("a result after Stop: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// A user or group may be written as a name or as a numeric id, as check
// accepts it.
func TestCredentialByNameOrID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching accounts needs root")
	}
	for _, tc := range []struct{ user, group string }{{"nobody", ""}, {"65534", ""}, {"nobody", "65534"}, {"65534", "nogroup"}} {
		c, err := credential(&hclconfig.App{Name: "a", User: tc.user, Group: tc.group})
		if err != nil || c.Uid != 65534 {
			t.Errorf("user %q group %q: %+v, %v", tc.user, tc.group, c, err)
		}
	}
	if _, err := credential(&hclconfig.App{Name: "a", User: "4000000"}); err == nil {
		t.Error("a uid with no account was accepted")
	}
}
