package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary impersonates a process that runs nothing but a Proxy, so
// that a test can measure that process alone: its syscalls under strace, its
// RSS. The parent passes the backends in helperBackendsEnv and reads the
// proxy's address from the first line of its stdout; each line "stats" on
// stdin is answered with one line of figures; EOF on stdin ends it.
const (
	helperEnv         = "CLUSTERRUN_PROXY_TEST_HELPER"
	helperBackendsEnv = "CLUSTERRUN_PROXY_TEST_BACKENDS"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "proxy" {
		os.Exit(proxyProcess())
	}
	os.Exit(m.Run())
}

func proxyProcess() int {
	var bs []Backend
	for f := range strings.FieldsSeq(os.Getenv(helperBackendsEnv)) {
		id, addr, _ := strings.Cut(f, "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad backend %q\n", f)
			return 2
		}
		bs = append(bs, Backend{ID: n, Addr: addr})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := New(ln, Options{Logf: func(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }})
	p.SetBackends(bs)
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	fmt.Printf("%s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			fmt.Println(processStats(p))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := <-served; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// processStats is one line of key=value figures about this process.
func processStats(p *Proxy) string {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := -1
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				rss, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	open := totalActive(p)
	return fmt.Sprintf("rss_kb=%d heap_inuse=%d stack_inuse=%d sys=%d goroutines=%d fds=%d active=%d",
		rss, ms.HeapInuse, ms.StackInuse, ms.Sys, runtime.NumGoroutine(), countFDs(), open)
}

// proxyProc is a running proxyProcess, seen from the test.
type proxyProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	stdin  io.WriteCloser
	stdout *bufio.Reader
	exited chan error
}

// startProxyProcess runs proxyProcess in a child, under the command in
// wrapper (e.g. strace and its flags) when there is one.
func startProxyProcess(t testing.TB, bs []Backend, wrapper ...string) *proxyProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, wrapper...), self, "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	var spec []string
	for _, b := range bs {
		spec = append(spec, fmt.Sprintf("%d=%s", b.ID, b.Addr))
	}
	cmd.Env = append(os.Environ(), helperEnv+"=proxy", helperBackendsEnv+"="+strings.Join(spec, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start the proxy process: %v", err)
	}
	pp := &proxyProc{t: t, cmd: cmd, stdin: stdin, stdout: bufio.NewReader(out), exited: make(chan error, 1)}
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-pp.exited:
		case <-time.After(waitLimit):
			cmd.Process.Kill()
			t.Errorf("the proxy process did not exit within %v of its stdin closing; killed it", waitLimit)
		}
	})
	addr := pp.line("the proxy process's address")
	go func() { pp.exited <- cmd.Wait() }()
	pp.addr = addr
	return pp
}

// line reads one line of the child's stdout, bounded by waitLimit.
func (pp *proxyProc) line(what string) string {
	pp.t.Helper()
	got := make(chan string, 1)
	go func() {
		s, _ := pp.stdout.ReadString('\n')
		got <- strings.TrimSpace(s)
	}()
	select {
	case s := <-got:
		if s == "" {
			pp.t.Fatalf("the proxy process ended before printing %s", what)
		}
		return s
	case <-time.After(waitLimit):
		pp.cmd.Process.Kill()
		pp.t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
	panic("unreachable")
}

// stats asks the child for its figures.
func (pp *proxyProc) stats() map[string]int {
	pp.t.Helper()
	if _, err := io.WriteString(pp.stdin, "stats\n"); err != nil {
		pp.t.Fatalf("cannot ask the proxy process for stats: %v", err)
	}
	m := map[string]int{}
	for f := range strings.FieldsSeq(pp.line("the proxy process's stats")) {
		k, v, _ := strings.Cut(f, "=")
		m[k], _ = strconv.Atoi(v)
	}
	return m
}

// stop closes the child's stdin and waits for it to exit.
func (pp *proxyProc) stop() {
	pp.t.Helper()
	pp.stdin.Close()
	select {
	case err := <-pp.exited:
		pp.exited <- err // for the cleanup
		if err != nil {
			pp.t.Fatalf("the proxy process: %v", err)
		}
	case <-time.After(waitLimit):
		pp.t.Fatalf("timed out after %v waiting for the proxy process to exit", waitLimit)
	}
}
