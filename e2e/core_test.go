//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The supervisor's defects found in the field, each tried here as a user
// would meet it.

const asyncioConfig = `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["python3", "{{repo}}/e2e/testdata/asyncio/server.py"]
  instances = 2
  listeners = ["http"]
  env       = { BOOT_DELAY_MS = "%d" }
  ready {
    check   = "notify"
    timeout = "20s"
  }
}
`

// An asyncio server sets O_NONBLOCK on the socket every instance shares. A
// reload that set the flag back cleared it under the running instances:
// the next accept() that lost the race blocked the whole event loop, and
// sequential requests stalled for seconds during reloads of a slow
// release. Not one request may stall or fail now.
func TestAsyncioNeverStallsDuringReloads(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(asyncioConfig, 0))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	writeConfig(t, r.dir, fmt.Sprintf(asyncioConfig, 2000))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var worst time.Duration
	var n, failed int
	var firstErr error
	wg.Go(func() {
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			_, err := get(t, url)
			d := time.Since(t0)
			n++
			worst = max(worst, d)
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
	})
	for round := 0; round < 2; round++ {
		m := r.mark()
		r.signal(syscall.SIGHUP)
		r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
		// The cause of the stalls, checked where it lives: O_NONBLOCK on
		// the open file description every instance shares. (A stall's
		// length is no evidence on a busy machine.)
		for i, pid := range r.servingPids("web") {
			if !nonblocking(t, pid, 3) {
				t.Errorf("after reload %d: fd 3 of web.%d (pid %d) lost O_NONBLOCK", round+1, i, pid)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d sequential requests during 2 reloads, slowest %s", n, worst)
	if failed > 0 || n < 20 {
		t.Errorf("%d of %d requests failed (first: %v), slowest took %s", failed, n, firstErr, worst)
	}
}

// nonblocking reports whether fd of pid has O_NONBLOCK, from the flags of
// its open file description in /proc/PID/fdinfo.
func nonblocking(t *testing.T, pid, fd int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		t.Fatalf("cannot read the flags of fd %d of pid %d: %v", fd, pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("fdinfo of pid %d fd %d: flags %q", pid, fd, v)
			}
			return flags&syscall.O_NONBLOCK != 0
		}
	}
	t.Fatalf("fdinfo of pid %d fd %d has no flags line:\n%s", pid, fd, b)
	return false
}

// The runner held the listening socket in its own epoll set and was woken
// by every connection meant for its instances. It must sleep through
// traffic: a few context switches for thousands of connections.
func TestRunnerNotWokenByTraffic(t *testing.T) {
	heavy(t)
	r := startRunner(t, goWeb(2))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	pid := r.cmd.Process.Pid
	before := ctxSwitches(t, pid)
	const conns = 2000
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	t0 := time.Now()
	for i := 0; i < conns; i++ {
		if _, err := get(t, url); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	elapsed := time.Since(t0)
	woken := ctxSwitches(t, pid) - before
	t.Logf("%d connections in %s woke the runner %d times", conns, elapsed.Round(time.Millisecond), woken)
	// A runner on the data path is woken at least once per connection (to
	// accept it, or to read it). Off it, what wakes it is its own: its
	// timers (a 2s usage sample) and the Go runtime's monitor thread, which
	// polls up to every 10ms until the process has been idle for a while
	// (58 wakes in 313ms right after start, seen in CI). A tenth of the
	// connections tells the two apart with room on both sides.
	if limit := conns/10 + int(elapsed/time.Second)*40; woken > limit {
		t.Errorf("the runner was woken %d times by %d connections (limit %d): it is on the data path", woken, conns, limit)
	}
}

// ctxSwitches sums the voluntary context switches of every thread of pid:
// the times it slept and was woken. (Involuntary ones are preemptions,
// which a busy machine multiplies without waking anything.)
func ctxSwitches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Skipf("cannot read /proc/%d/task: %v", pid, err)
	}
	total := 0
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that just ended
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("voluntary_ctxt_switches:")); ok {
				n, _ := strconv.Atoi(string(bytes.TrimSpace(v)))
				total += n
			}
		}
	}
	return total
}

// During a reload the old and new process of a slot logged under the same
// prefix. A replacement still starting is "web.0+", a replaced process
// draining "web.0-".
//
// The tag is read when the runner reads a line, not when the app wrote it,
// so a line written just before READY=1 may already show the serving
// prefix. The app here writes its "booting" line a second before it is
// ready, which leaves the log reader a second to see it as "+".
func TestReplacementPrefixes(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["sh", "-c", "echo booting; exec \"$0\"", "{{goHTTP}}"]
  instances = 4
  listeners = ["http"]
  env       = { BOOT_DELAY_MS = "1000" }
  ready {
    check   = "notify"
    timeout = "20s"
  }
}
`)
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `^web\.0\+ +\| booting$`, 30*time.Second)
	r.waitLine(m, `^web\.0- +\| .*got SIGTERM, draining`, 30*time.Second)
	r.waitLine(m, `web: reload complete`, 60*time.Second)
}

// A Node app whose listen(port) matches none of its listeners gets one
// clear line naming the port and the listeners, not a crash loop on
// EADDRINUSE.
func TestNodeListenOnForeignPortIsOneClearLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freePort(t)
	app := filepath.Join(dir, "app.js")
	os.WriteFile(app, []byte(fmt.Sprintf(`
const http = require('http');
http.createServer((q, s) => s.end('hi\n')).listen(Number(process.env.PORT));
http.createServer((q, s) => s.end('admin\n')).listen(%d);
`, port)), 0o644)
	r := startRunnerIn(t, dir, writeConfig(t, dir, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["node", "`+app+`"]
  instances = 2
  listeners = ["http"]
  ready { check = "notify" }
}
`))
	r.waitLine(0, fmt.Sprintf(`web.\d \(pid \d+\) exited with status 1: listen\(%d\) matches none of this app's listeners \(port \d+\).*; not restarting it`, port), 30*time.Second)
	if strings.Contains(r.out.all(), "restarting in") {
		t.Errorf("the instance was restarted in a loop:\n%s", r.out.all())
	}
}

// A string command that is one simple command is exec'd by the shell:
// status shows the program's pid, the stop signal reaches the program,
// and a program that handles it exits with its own status, not "killed by
// SIGTERM" of a shell in between.
func TestSimpleStringCommandIsExeced(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "py" {
  command = "python3 -c 'import signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); print(\"up\", flush=True); time.sleep(1000)'"
}
`)
	r.waitLine(0, `py.0 +\| up`, 30*time.Second)
	pid := r.servingPids("py")[0]
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if !strings.HasPrefix(string(comm), "python3") {
		t.Errorf("status shows pid %d, which is %q; want the program, not the shell", pid, comm)
	}
	m := r.mark()
	r.cli("stop", "py")
	r.waitLine(m, fmt.Sprintf(`py.0 \(pid %d\) exited with status 0`, pid), 30*time.Second)
}
