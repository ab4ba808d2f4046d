//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net"
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

	"golang.org/x/sys/unix"
)

// manager stands in for systemd: the datagram socket clusterrun is told
// about with NOTIFY_SOCKET, and every message it received, in order.
type manager struct {
	t    *testing.T
	addr string
	conn *net.UnixConn

	mu      sync.Mutex
	msgs    []string
	changed chan struct{} // closed and replaced on every message
}

// newManager listens on a socket file, or on an abstract socket ("@...").
func newManager(t *testing.T, abstract bool) *manager {
	t.Helper()
	var addr string
	if abstract {
		addr = fmt.Sprintf("@clusterrun-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
	} else {
		// Short: a socket path has at most 107 bytes, and t.TempDir is
		// named after the test.
		dir, err := os.MkdirTemp("", "cr-sd-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		addr = filepath.Join(dir, "notify")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	m := &manager{t: t, addr: addr, conn: conn, changed: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			m.mu.Lock()
			m.msgs = append(m.msgs, strings.TrimSuffix(string(buf[:n]), "\n"))
			close(m.changed)
			m.changed = make(chan struct{})
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return m
}

// env is what systemd would set; SYSTEMD_EXEC_PID is cleared unless
// given, in case the tests themselves run under systemd.
func (m *manager) env(extra ...string) []string {
	return append([]string{"NOTIFY_SOCKET=" + m.addr, "SYSTEMD_EXEC_PID="}, extra...)
}

func (m *manager) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.msgs...)
}

// waitFor waits until a message after index *i matches pattern, skipping
// messages that match skip, and fails on any other message in between. It
// returns the match and moves *i past it.
func (m *manager) waitFor(i *int, skip, pattern string) string {
	m.t.Helper()
	re := regexp.MustCompile("^(?:" + pattern + ")$")
	sk := regexp.MustCompile("^(?:" + skip + ")$")
	deadline := time.After(60 * time.Second)
	for {
		m.mu.Lock()
		msgs, changed := m.msgs, m.changed
		m.mu.Unlock()
		for ; *i < len(msgs); *i++ {
			switch msg := msgs[*i]; {
			case re.MatchString(msg):
				*i++
				return msg
			case skip != "" && sk.MatchString(msg):
			default:
				m.t.Fatalf("message %d is %q, want %q; all so far: %q", *i, msg, pattern, msgs)
			}
		}
		select {
		case <-changed:
		case <-deadline:
			m.t.Fatalf("no message %q within 60s; all so far: %q", pattern, msgs)
		}
	}
}

// watchdogPing and extend are the messages sent on a clock of their own,
// which the sequences skip.
const (
	watchdogPing = `WATCHDOG=1`
	extend       = `EXTEND_TIMEOUT_USEC=\d+`
)

// monotonicUsec reads CLOCK_MONOTONIC, which is the same clock in every
// process, in microseconds.
func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Sec*1e6 + int64(ts.Nsec)/1e3
}

// expectReloading waits for RELOADING=1 and checks that its MONOTONIC_USEC
// was taken between since and now.
func (m *manager) expectReloading(i *int, since int64, skip string) {
	m.t.Helper()
	msg := m.waitFor(i, skip, `RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`)
	now := monotonicUsec(m.t)
	usec, _ := strconv.ParseInt(regexp.MustCompile(`MONOTONIC_USEC=(\d+)`).FindStringSubmatch(msg)[1], 10, 64)
	if usec < since || usec > now {
		m.t.Errorf("MONOTONIC_USEC=%d is not between the reload request (%d) and its receipt (%d)", usec, since, now)
	}
}

const sdApps = `
app "db" {
  command = ["{{helper}}", "notify", "READY=1"]
  ready {
    check   = "notify"
    timeout = "1m"
  }
}
app "web" {
  command    = ["{{helper}}", "notify", "READY=1"]
  instances  = 2
  depends_on = ["db"]
  ready {
    check   = "notify"
    timeout = "1m"
  }
}
`

// Issue 16: what clusterrun tells its own service manager at start, on a
// completed, an aborted and a rejected reload (by SIGHUP and by
// `clusterrun reload`), and when it drains; the watchdog pings all along.
func TestSdNotifyStartReloadsDrain(t *testing.T) {
	t.Parallel()
	mgr := newManager(t, false)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sdApps)
	r := startBinaryEnv(t, bin, dir, cfg, mgr.env("WATCHDOG_USEC=200000"))
	i := 0
	skip := watchdogPing + "|" + extend

	// The start: db first, web once db is ready.
	mgr.waitFor(&i, skip, `STATUS=0 of 2 apps ready`)
	mgr.waitFor(&i, skip, `STATUS=1 of 2 apps ready`)
	mgr.waitFor(&i, skip, `READY=1\nSTATUS=2 of 2 apps ready`)
	ready := i
	extends := 0
	for _, msg := range mgr.all()[:ready] {
		if regexp.MustCompile("^" + extend + "$").MatchString(msg) {
			usec, _ := strconv.ParseInt(strings.TrimPrefix(msg, "EXTEND_TIMEOUT_USEC="), 10, 64)
			// ready timeout 1m + the default max backoff, from the start of
			// an instance: a little less by the time it is sent.
			if usec <= 0 || usec > (60+60)*1e6 {
				t.Errorf("%s: not within the ready timeout plus the longest backoff", msg)
			}
			extends++
		}
	}
	if extends == 0 {
		t.Errorf("no EXTEND_TIMEOUT_USEC= before READY=1: %q", mgr.all()[:ready])
	}
	// The watchdog pings, from the runner's loop, at half WATCHDOG_USEC.
	mgr.waitFor(&i, "", watchdogPing)
	skip = watchdogPing // no EXTEND_TIMEOUT_USEC= after the start

	// A completed reload (SIGHUP, as systemctl reload sends it).
	since := monotonicUsec(t)
	r.signal(syscall.SIGHUP)
	mgr.expectReloading(&i, since, skip)
	mgr.waitFor(&i, skip, `READY=1\nSTATUS=reload completed; 2 of 2 apps ready`)

	// An aborted one (clusterrun reload): web's new release dies at once,
	// so its two instances keep serving.
	writeConfig(t, dir, strings.Replace(sdApps, `command    = ["{{helper}}", "notify", "READY=1"]`, `command    = ["{{helper}}", "no-such-mode"]`, 1))
	since = monotonicUsec(t)
	if out, errOut, code := r.cli("reload"); code != 1 {
		t.Errorf("reload of a release that cannot start: exit %d, want 1\n%s%s", code, out, errOut)
	}
	mgr.expectReloading(&i, since, skip)
	mgr.waitFor(&i, skip, `READY=1\nSTATUS=reload aborted, the old instances keep serving; 2 of 2 apps ready`)

	// A rejected one: the file does not parse; nothing changes.
	writeConfig(t, dir, sdApps+"\napp {\n")
	since = monotonicUsec(t)
	r.signal(syscall.SIGHUP)
	mgr.expectReloading(&i, since, skip)
	mgr.waitFor(&i, skip, `READY=1\nSTATUS=reload rejected, everything keeps running as it was: .+; 2 of 2 apps ready`)

	// The drain.
	r.signal(syscall.SIGTERM)
	mgr.waitFor(&i, skip, `STOPPING=1\nSTATUS=stopping: draining every app`)
	if code := r.wait(60 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	for _, msg := range mgr.all()[i:] {
		if msg != watchdogPing {
			t.Errorf("after STOPPING=1: %q", msg)
		}
	}
	t.Logf("messages: %q", mgr.all())
}

// An abstract NOTIFY_SOCKET ("@name") works; MAINPID= is sent when the
// manager started another process (SYSTEMD_EXEC_PID); a WATCHDOG_PID that
// names another process means no pings; and no instance inherits
// clusterrun's own NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID.
func TestSdNotifyAbstractSocketMainPIDAndEnv(t *testing.T) {
	t.Parallel()
	mgr := newManager(t, true)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
app "env" {
  command = ["{{helper}}", "env"]
  ready { delay = "10ms" }
}
`)
	wrapper := os.Getpid() // a process that is not clusterrun
	r := startBinaryEnv(t, bin, dir, cfg, append(mgr.env(),
		"SYSTEMD_EXEC_PID="+strconv.Itoa(wrapper), "WATCHDOG_USEC=20000", "WATCHDOG_PID="+strconv.Itoa(wrapper)))
	i := 0
	first := mgr.waitFor(&i, "", `MAINPID=\d+\nSTATUS=0 of 1 app ready`)
	mgr.waitFor(&i, extend, `READY=1\nSTATUS=1 of 1 app ready`)
	if want := fmt.Sprintf("MAINPID=%d\n", r.cmd.Process.Pid); !strings.HasPrefix(first, want) {
		t.Errorf("first message %q, want it to start with %q", first, want)
	}
	r.waitLine(0, `env\.0 +\| WATCHDOG_PID=`, 30*time.Second)
	for _, want := range []string{`NOTIFY_SOCKET=/`, `WATCHDOG_USEC=$`, `WATCHDOG_PID=$`, `LISTEN_FDS=$`} {
		line, _ := r.waitLine(0, `env\.0 +\| `+strings.SplitN(want, "=", 2)[0]+`=`, 30*time.Second)
		if !regexp.MustCompile(`\| ` + want).MatchString(line) {
			t.Errorf("instance environment: %q, want %s", line, want)
		}
		if strings.Contains(line, mgr.addr) {
			t.Errorf("the instance inherited clusterrun's own NOTIFY_SOCKET: %q", line)
		}
	}
	// A reload takes the loop through many events: with the watchdog on
	// at 10ms ticks, pings would be among its messages.
	since := monotonicUsec(t)
	r.signal(syscall.SIGHUP)
	mgr.expectReloading(&i, since, "")
	mgr.waitFor(&i, "", `READY=1\nSTATUS=reload completed; 1 of 1 app ready`)
	r.signal(syscall.SIGTERM)
	mgr.waitFor(&i, "", `STOPPING=1\nSTATUS=stopping: draining every app`)
	r.wait(60 * time.Second)
	for _, msg := range mgr.all() {
		if msg == watchdogPing {
			t.Fatalf("WATCHDOG=1 sent although WATCHDOG_PID names another process: %q", mgr.all())
		}
	}
}

// The watchdog watches the runner's loop: while the loop is stuck, no
// WATCHDOG=1 goes out, and the pings resume when it moves again. The loop
// is stuck the way a real one gets stuck: its stdout (the journal, under
// systemd) stops taking lines, so the runner's next log line blocks. An
// instance floods that stdout, and SIGHUP makes the loop log.
func TestSdNotifyWatchdogStopsWhileTheLoopIsStuck(t *testing.T) {
	t.Parallel()
	mgr := newManager(t, false)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
app "flood" {
  command = ["{{helper}}", "flood", "1000000"]
  ready { check = "notify" }
}
`)
	const every = 50 * time.Millisecond // WATCHDOG_USEC=100ms
	cmd := exec.Command(bin, "up", "-f", cfg)
	cmd.Dir = dir
	rt, err := os.MkdirTemp("", "cr-rt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(rt)
	cmd.Env = append(os.Environ(), append(mgr.env("WATCHDOG_USEC=100000"), "XDG_RUNTIME_DIR="+rt, "NO_COLOR=1")...)
	// Nobody reads stdout until the test says so.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	read := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-read
		io.Copy(io.Discard, pr)
	}()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-read:
		default:
			close(read)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		pr.Close()
	}()

	i := 0
	mgr.waitFor(&i, extend+"|"+watchdogPing+"|STATUS=.*", `READY=1\nSTATUS=1 of 1 app ready`)
	mgr.waitFor(&i, "", watchdogPing)

	// Fill the pipe, then give the loop something to log.
	cmd.Process.Signal(syscall.SIGUSR1)
	cmd.Process.Signal(syscall.SIGHUP)
	// Wait for the pings to stop: a silence of 20 ticks. A watchdog fed
	// by a timer of its own would go on pinging, and this would time out.
	mgr.quiet(20 * every)
	stuck := len(mgr.all())
	// Unstick it: the loop logs on, pings again, and finishes the reload.
	close(read)
	mgr.waitFor(&i, watchdogPing+"|"+`RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`, `READY=1\nSTATUS=reload completed; 1 of 1 app ready`)
	j := stuck
	mgr.waitFor(&j, `(?s)(?:RELOADING|READY|STATUS)=.*`, watchdogPing)
}

// quiet waits until no message has come for d, for at most 60s.
func (m *manager) quiet(d time.Duration) {
	m.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		m.mu.Lock()
		changed := m.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(d):
			return
		case <-deadline:
			m.t.Fatalf("messages kept coming for 60s, never a pause of %s: %d so far", d, len(m.all()))
		}
	}
}
