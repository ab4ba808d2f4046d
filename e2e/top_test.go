//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmuxPane is one tmux server (a private socket) with one 80x24 window
// running a shell, as a person's terminal.
type tmuxPane struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T, env ...string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (CI installs it)")
	}
	p := &tmuxPane{t: t, socket: fmt.Sprintf("cr-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := []string{"new-session", "-d", "-x", "80", "-y", "24"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	p.run(append(args, "sh")...)
	t.Cleanup(func() { exec.Command("tmux", "-L", p.socket, "kill-server").Run() })
	return p
}

func (p *tmuxPane) run(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", p.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (p *tmuxPane) keys(keys ...string) { p.run(append([]string{"send-keys"}, keys...)...) }

func (p *tmuxPane) screen() string { return p.run("capture-pane", "-p") }

// waitScreen waits until the screen matches pattern, with a bound, and
// returns it.
func (p *tmuxPane) waitScreen(bound time.Duration, what, pattern string) string {
	p.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(bound)
	for {
		s := p.screen()
		if re.MatchString(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %s for %s (%s); the screen:\n%s", bound, what, pattern, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// top in a real terminal: the table shows every instance, a crash shows
// with its restart count, r reloads and the status line says how it went,
// ? helps, / searches the log pane, a resize redraws with the wider
// columns, and q gives the terminal back as it was.
func TestTopInTmux(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "web" {
  command   = "echo hello from web $CLUSTERRUN_INSTANCE; exec sleep 1000"
  instances = 2
  ready {
    check = "delay"
    delay = "100ms"
  }
}
app "worker" {
  command = "echo worker up; exec sleep 1000"
}
`)
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	r.waitLine(0, `worker: 1 of 1 instances ready`, 30*time.Second)
	p := newTmux(t, "XDG_RUNTIME_DIR="+r.rt, "NO_COLOR=1")
	p.keys(fmt.Sprintf("%s top -f %s; echo TOP-EXIT-$?", bin, r.cfg), "Enter")
	pids := r.servingPids("web")
	p.waitScreen(30*time.Second, "the table with every instance",
		fmt.Sprintf(`(?s)APP +INST +PID.*\nweb +0 +%d +1 +ready .*\nweb +1 +%d +1 +ready .*\nworker +0 +\d+ +1 +ready`, pids[0], pids[1]))

	// A crash: the table shows the restart count.
	t0 := time.Now()
	syscall.Kill(pids[0], syscall.SIGKILL)
	p.waitScreen(30*time.Second, "web.0's restart", `\nweb +0 +\d+ +1 +\S+ +1 +KILL `)
	t.Logf("the crash showed with its restart count after %s", time.Since(t0).Round(time.Millisecond))

	// r: a rolling reload of the selected app (web, the first row).
	r.waitLine(0, `web.0 ready after`, 30*time.Second)
	p.keys("r")
	p.waitScreen(60*time.Second, "the reload's outcome on the status line", `reload web: web: reload complete: 2 of 2 instances replaced`)
	p.waitScreen(30*time.Second, "the new release in the table", `\nweb +0 +\d+ +2 +ready`)

	// ?: the help, any key closes it.
	p.keys("?")
	p.waitScreen(10*time.Second, "the help", `rolling reload of the selected app`)
	p.keys("x")
	p.waitScreen(10*time.Second, "the table again", `\nAPP +INST`)

	// /: only matching log lines.
	p.keys("/", "hello from web 1", "Enter")
	s := p.waitScreen(10*time.Second, "the search", `search: hello from web 1`)
	if strings.Contains(s, "hello from web 0") {
		t.Errorf("the search shows lines that do not match:\n%s", s)
	}
	p.keys("Escape")

	// A resize redraws: at 120 columns the ROLE and CONNS columns fit.
	p.run("resize-window", "-x", "120", "-y", "30")
	p.waitScreen(10*time.Second, "the wider table", `APP +INST +PID +REL +STATE +ROLE +RST .* CONNS`)

	// q: the terminal is the shell's again, in the normal screen, and
	// echoes what is typed.
	p.keys("q")
	p.waitScreen(10*time.Second, "top's exit", `TOP-EXIT-0`)
	if alt := strings.TrimSpace(p.run("display", "-p", "#{alternate_on}")); alt != "0" {
		t.Errorf("the alternate screen is still on after q (alternate_on=%s)", alt)
	}
	p.keys("echo typed-$((40+2))", "Enter")
	p.waitScreen(10*time.Second, "the shell to echo and run a typed line", `echo typed-\$\(\(40\+2\)\)\ntyped-42`)
}

// When the runner goes away, top says so and waits; when it comes back on
// the same file, top shows it again; q then quits cleanly.
func TestTopWaitsForRunnerToComeBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sleepers(1))
	r := startRunnerIn(t, dir, cfg)
	r.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	p := newTmux(t, "XDG_RUNTIME_DIR="+r.rt, "NO_COLOR=1")
	p.keys(fmt.Sprintf("%s top -f %s; echo TOP-EXIT-$?", bin, cfg), "Enter")
	p.waitScreen(30*time.Second, "the table", `\nweb +0 +\d+ +1 +ready`)
	r.signal(syscall.SIGTERM)
	r.wait(30 * time.Second)
	p.waitScreen(30*time.Second, "top to say the runner is gone", `the runner is gone: waiting for it to come back \(q quits\)`)
	r2 := startRunnerRT(t, dir, cfg, r.rt)
	r2.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	p.waitScreen(30*time.Second, "top to show the runner again", fmt.Sprintf(`top  pid %d running`, r2.cmd.Process.Pid))
	p.keys("q")
	p.waitScreen(10*time.Second, "top's exit", `TOP-EXIT-0`)
}

// top --addr watches a runner over TCP with a token; with the read-only
// token a key that changes something is refused on the status line.
func TestTopRemote(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const ro = "read-only-secret-0123456789"
	os.WriteFile(dir+"/full.token", []byte("full-secret-0123456789abcdef\n"), 0o600)
	os.WriteFile(dir+"/ro.token", []byte(ro+"\n"), 0o600)
	r := startRunnerIn(t, dir, writeConfig(t, dir, sleepers(2)+`
control {
  address              = "127.0.0.1:0"
  token_file           = "full.token"
  read_only_token_file = "ro.token"
}
`))
	port := boundPort(t, r, `control API: http://127\.0\.0\.1:\d+/v1/`)
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	// Another XDG_RUNTIME_DIR: top cannot reach the unix socket.
	p := newTmux(t, "XDG_RUNTIME_DIR="+t.TempDir(), "NO_COLOR=1")
	p.keys(fmt.Sprintf("%s top --addr 127.0.0.1:%d --token-file %s/ro.token; echo TOP-EXIT-$?", bin, port, dir), "Enter")
	p.waitScreen(30*time.Second, "the remote table", `\nweb +1 +\d+ +1 +ready`)
	p.keys("+")
	p.waitScreen(30*time.Second, "the refusal on the status line", `scale web \+1: the read-only token allows GET requests only`)
	p.keys("q")
	p.waitScreen(10*time.Second, "top's exit", `TOP-EXIT-0`)
}
