//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// Each example language runs as 4 instances on one shared port: every
// instance answers, with CLUSTERRUN_INSTANCE 0..3 and LISTEN_PID accepted
// by an unmodified systemd-protocol consumer.
func TestExamplesShareOnePort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lang, command, ready string
	}{
		{"go", `["{{goHTTP}}"]`, `check = "notify"`},
		{"python", `["python3", "{{repo}}/examples/python-http/server.py"]`, `check = "notify"`},
		{"node", `["node", "{{repo}}/examples/node-http/server.js"]`, `check = "notify"`},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			if _, err := exec.LookPath(strings.Trim(strings.SplitN(tc.command, ",", 2)[0], `["]`)); err != nil && tc.lang != "go" {
				t.Fatalf("%s is not installed: %v (.ci/run installs it)", tc.lang, err)
			}
			r := startRunner(t, fmt.Sprintf(`
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = %s
  instances = 4
  listeners = ["http"]
  ready {
    %s
  }
}
`, tc.command, tc.ready))
			port := r.port("http")
			r.waitLine(0, `web: 4 of 4 instances ready`, 60*time.Second)
			instancesAnswering(t, port, 4)
			a, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil || a.Lang != tc.lang || a.App != "web" {
				t.Errorf("answer %+v, %v; want lang %s app web", a, err, tc.lang)
			}
			r.signal(syscall.SIGTERM)
			if code := r.wait(30 * time.Second); code != 0 {
				t.Errorf("exit code after SIGTERM = %d, want 0", code)
			}
		})
	}
}

// What every instance receives (docs/config.md, "What every instance receives").
func TestInstanceEnvironment(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
env = { GREETING = "hello" }
listener "http" {
  address = "127.0.0.1:0"
}
listener "admin" {
  address = "127.0.0.1:0"
}
app "envy" {
  command   = ["{{helper}}", "env"]
  instances = 2
  listeners = ["http", "admin"]
}
`)
	port := r.port("http")
	// Each line is waited for: the instances count as ready after a
	// delay, which on a busy machine can pass before they have printed.
	for _, want := range []string{
		"envy.0 | LISTEN_FDS=2", "envy.1 | LISTEN_FDNAMES=http:admin", "envy.0 | CLUSTERRUN_APP=envy",
		"envy.1 | CLUSTERRUN_INSTANCE=1", "envy.0 | GREETING=hello", fmt.Sprintf("envy.1 | PORT=%d", port), "envy.0 | FD3=true",
	} {
		label, text, _ := strings.Cut(want, " | ")
		r.waitLine(0, `^`+regexp.QuoteMeta(label)+` +\| `+regexp.QuoteMeta(text)+`$`, 30*time.Second)
	}
	// LISTEN_PID must equal the pid of the program itself (the exec shim).
	for i := 0; i < 2; i++ {
		pidLine, _ := r.waitLine(0, fmt.Sprintf(`envy.%d +\| PID=`, i), 30*time.Second)
		lpLine, _ := r.waitLine(0, fmt.Sprintf(`envy.%d +\| LISTEN_PID=`, i), 30*time.Second)
		pid := pidLine[strings.Index(pidLine, "PID=")+4:]
		lp := lpLine[strings.Index(lpLine, "LISTEN_PID=")+11:]
		if pid != lp {
			t.Errorf("instance %d: LISTEN_PID=%s but pid %s", i, lp, pid)
		}
	}
}

// kill -9 of one instance: a replacement answers, and the port never stops
// answering meanwhile.
func TestKilledInstanceIsReplacedWithoutRefusals(t *testing.T) {
	heavy(t)
	r := startRunner(t, goWeb(4))
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	victim := before[2]

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *loadgen.Result)
	go func() {
		done <- loadgen.Run(ctx, loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: 4, Duration: time.Minute, MaxRequests: 200000})
	}()
	m := r.mark()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitLine(m, fmt.Sprintf(`web.2 \(pid %d\) was killed by SIGKILL, restarting in`, victim), 20*time.Second)
	r.waitLine(m, `web.2 ready after`, 20*time.Second)
	cancel()
	res := <-done
	// The port never stops answering: nothing is refused or hangs. Only a
	// request the killed instance was serving at that moment may be lost.
	c := loadgen.Counts(res.Samples)
	if c[loadgen.Refused] != 0 || c[loadgen.Timeout] != 0 || loadgen.Failed(res.Samples) > 4 || c[loadgen.OK] == 0 {
		t.Errorf("while an instance was killed and replaced: %s", loadgen.Summary(res, res.Samples))
	} else {
		t.Logf("while an instance was killed and replaced: %s", loadgen.Summary(res, res.Samples))
	}
	after := r.servingPids("web")
	if after[2] == victim || after[2] == 0 || !pidAlive(after[2]) {
		t.Errorf("instance 2: pid %d before, %d after; want a new live pid", victim, after[2])
	}
	for i := 0; i < 4; i++ {
		if i != 2 && after[i] != before[i] {
			t.Errorf("instance %d changed pid %d -> %d; only instance 2 should", i, before[i], after[i])
		}
	}
	instancesAnswering(t, port, 4)
}

// A crash-looping app gives up after max_restarts while the others keep
// serving.
func TestCrashLoopGivesUpOthersKeepServing(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 2
  listeners = ["http"]
  ready { check = "notify" }
}
app "flaky" {
  command = "echo about to crash >&2; exit 3"
  restart {
    backoff      = "10ms"
    max_backoff  = "40ms"
    max_restarts = 3
    window       = "1m"
  }
}
`)
	port := r.port("http")
	r.waitLine(0, `flaky.0 \(pid \d+\) exited with status 3 before it was ready, restarting in \d+ms \(crash 1 of 3 in 60s\)`, 30*time.Second)
	r.waitLine(0, `crash 3 of 3 in 60s`, 30*time.Second)
	r.waitLine(0, `flaky.0 \(pid \d+\) exited with status 3 before it was ready: 4 crashes in 60s, more than max_restarts = 3; giving up \(failed\)`, 30*time.Second)
	if !regexp.MustCompile(`flaky.0 +! about to crash`).MatchString(r.out.all()) {
		t.Errorf("stderr line of flaky is not shown marked with '!'")
	}
	instancesAnswering(t, port, 2)
	st := r.status()
	for _, a := range st.Apps {
		want := map[string]string{"web": "ready", "flaky": "failed"}[a.Name]
		if a.State != want {
			t.Errorf("app %s is %s, want %s", a.Name, a.State, want)
		}
	}
	select {
	case <-r.exited:
		t.Fatal("runner exited although web is still running")
	default:
	}
}

// A required app that gives up drains the runner, which exits 1.
func TestRequiredAppFailureExitsOne(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "sleeper" {
  command = ["sleep", "1000"]
}
app "db" {
  command  = "exit 1"
  required = true
  restart {
    backoff      = "10ms"
    max_restarts = 2
  }
}
`)
	r.waitLine(0, `db is required and gave up: stopping every app`, 30*time.Second)
	if code := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

// SIGTERM while a 2-second request is in flight: the request completes and
// the runner exits 0.
func TestSigtermLetsInflightRequestFinish(t *testing.T) {
	t.Parallel()
	r := startRunner(t, goWeb(2))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	type result struct {
		a   answer
		err error
		d   time.Duration
	}
	res := make(chan result, 1)
	m := r.mark()
	go func() {
		t0 := time.Now()
		a, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/slow?ms=2000", port))
		res <- result{a, err, time.Since(t0)}
	}()
	// The request is in flight once an instance has accepted it (before
	// that it waits in the socket's queue, where a full shutdown ends it).
	waitAccepted(t, port, r.servingPids("web"))
	r.signal(syscall.SIGTERM)
	r.waitLine(m, `received SIGTERM: stopping every app`, 10*time.Second)
	got := <-res
	if got.err != nil {
		t.Fatalf("in-flight request failed: %v", got.err)
	}
	if got.d < 1900*time.Millisecond {
		t.Errorf("slow request took %s; the 2s wait did not happen", got.d)
	}
	if code := r.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// waitAccepted waits until one of pids holds an accepted connection on port.
func waitAccepted(t *testing.T, port int, pids map[int]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range pids {
			if len(acceptedConns(t, pid, port)) > 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no instance of %v accepted a connection on port %d within 10s", pids, port)
}

// An app that ignores SIGTERM is killed at its stop timeout, grandchildren
// included, and the unclean drain exits 1.
func TestIgnoredSigtermIsKilledWithGrandchildren(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "stubborn" {
  command = "trap '' TERM; sleep 1000 & a=$!; sleep 1000 & b=$!; echo children $a $b; wait"
  stop { timeout = "1s" }
}
`)
	line, _ := r.waitLine(0, `stubborn.0 +\| children `, 30*time.Second)
	var kids []int
	for _, f := range strings.Fields(line[strings.Index(line, "children ")+9:]) {
		if p, err := strconv.Atoi(f); err == nil {
			kids = append(kids, p)
		}
	}
	if len(kids) != 2 {
		t.Fatalf("want 2 grandchildren pids in %q", line)
	}
	t0 := time.Now()
	r.signal(syscall.SIGTERM)
	r.waitLine(0, `stubborn.0 \(pid \d+\) did not stop within 1s; killing its process group`, 10*time.Second)
	code := r.wait(30 * time.Second)
	if d := time.Since(t0); d < time.Second {
		t.Errorf("stopped after %s, before the 1s timeout", d)
	}
	if code != 1 {
		t.Errorf("exit code %d after a drain that needed SIGKILL, want 1", code)
	}
	for _, k := range kids {
		if pidAlive(k) {
			t.Errorf("grandchild %d survived", k)
		}
	}
}

// A second SIGINT kills at once.
func TestSecondSignalKillsAtOnce(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "stubborn" {
  command = "trap '' TERM INT; echo up; while :; do sleep 1; done"
  stop { timeout = "10m" }
}
`)
	r.waitLine(0, `stubborn.0 +\| up`, 30*time.Second)
	r.signal(syscall.SIGINT)
	_, m := r.waitLine(0, `received SIGINT: stopping every app`, 10*time.Second)
	t0 := time.Now()
	// A second signal within signals.SameSend of the first is the same
	// send; the runner says so, and the next one kills.
	for {
		r.signal(syscall.SIGINT)
		line, next := r.waitLine(m, `received SIGINT again`, 10*time.Second)
		m = next
		if strings.Contains(line, "killing every instance now") {
			break
		}
		if !strings.Contains(line, "the same request to stop") || time.Since(t0) > time.Minute {
			t.Fatalf("after a second SIGINT: %q", line)
		}
	}
	// The app ignores SIGTERM and has 10 minutes to stop: exiting at all
	// within the (generous) wait means it was killed.
	if code := r.wait(2 * time.Minute); code != 1 {
		t.Errorf("exit code %d after a forced stop, want 1", code)
	}
}

// A second "up" of the same file is refused, naming the runner's pid and
// file so that the user can find it.
func TestSecondUpNamesTheRunner(t *testing.T) {
	t.Parallel()
	r := startRunner(t, sleepers(1))
	r.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	cmd := exec.Command(bin, "up", "-f", r.cfg)
	cmd.Env = r.env
	out, _ := cmd.CombinedOutput()
	want := fmt.Sprintf("a runner for this file is already running: pid %d, on %s", r.cmd.Process.Pid, r.cfg)
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), want) || !strings.Contains(string(out), fmt.Sprintf("kill %d", r.cmd.Process.Pid)) {
		t.Errorf("a second up: exit %d, %q; want exit 1 and %q", code, out, want)
	}
}

// GNU timeout signals its child and then its own process group, which
// holds the child too: "timeout -s INT 5 clusterrun up" delivers SIGINT to
// the runner twice in the same instant. That is one request to stop: the
// runner drains (a request in flight is answered), every instance exits
// 0, and so does the runner. SIGALRM to timeout is what its own timer
// sends when the duration is up, so the test picks the moment instead of
// guessing how long the start takes.
func TestTimeoutsDoubleSignalDrains(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Fatalf("GNU timeout (coreutils) is not installed: %v", err)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, goWeb(2))
	r := startRunnerWith(t, dir, cfg, spawnOpts{wrap: []string{"timeout", "--preserve-status", "-s", "INT", "10m"}})
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	pids := r.servingPids("web")
	res := make(chan error, 1)
	go func() {
		_, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/slow?ms=2000", port))
		res <- err
	}()
	waitAccepted(t, port, pids)
	m := r.mark()
	r.signal(syscall.SIGALRM) // to timeout: the duration is up
	r.waitLine(m, `received SIGINT: stopping every app`, 10*time.Second)
	if err := <-res; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d (through timeout --preserve-status), want 0", code)
	}
	out := r.out.all()
	if strings.Contains(out, "killing every instance now") {
		t.Errorf("timeout's two SIGINTs were taken as two requests: everything was killed")
	}
	if !strings.Contains(out, "received SIGINT again within") {
		t.Logf("the runner saw one SIGINT this time: a signal that arrives while one of its kind is still pending is merged with it")
	}
	r.requireCleanExits()
}

// A 1 MiB line and a long stream without newline pass through in pieces
// and wedge neither the app nor the runner.
func TestLongLinesDoNotWedge(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "long" {
  command = "head -c 1048576 /dev/zero | tr '\\0' a; echo; echo after-long-line; sleep 1000"
}
app "stream" {
  command = "head -c 3000000 /dev/zero | tr '\\0' b; echo after-stream; sleep 1000"
}
app "chatty" {
  command = "i=0; while [ $i -lt 5 ]; do echo tick $i; i=$((i+1)); done; sleep 1000"
}
`)
	r.waitLine(0, `long.0 +\| after-long-line$`, 60*time.Second)
	r.waitLine(0, `stream.0 +\| .*after-stream$`, 60*time.Second)
	r.waitLine(0, `chatty.0 +\| tick 4$`, 60*time.Second)
	lines, _, _ := r.out.snapshot()
	aBytes, cut := 0, 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "long.0 ") || strings.HasSuffix(l, "after-long-line") {
			continue
		}
		if len(l) > 17*1024 {
			t.Fatalf("an output line is %d bytes, over the cut bound", len(l))
		}
		body := l[strings.Index(l, "| ")+2:]
		if strings.HasSuffix(body, " …") {
			cut++
			body = strings.TrimSuffix(body, " …")
		}
		aBytes += strings.Count(body, "a")
	}
	if aBytes != 1<<20 || cut == 0 {
		t.Errorf("the 1 MiB line came through as %d bytes of 'a' in %d cut pieces", aBytes, cut)
	}
	if _, _, code := r.cli("status"); code != 0 {
		t.Error("status does not answer after the long lines")
	}
}

// depends_on: an app starts after its dependency is ready; a run-once
// dependency counts once it exited 0. Shutdown stops dependents first.
func TestDependsOnOrder(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "build" {
  command = "echo building; sleep 0.3; echo built"
  restart { policy = "never" }
}
app "db" {
  command    = ["{{helper}}", "notify", "READY=1"]
  depends_on = ["build"]
  ready { check = "notify" }
}
app "web" {
  command    = ["sleep", "1000"]
  depends_on = ["db"]
  ready {
    check = "delay"
    delay = "100ms"
  }
}
`)
	_, i1 := r.waitLine(0, `build.0 \(pid \d+\) exited with status 0; done`, 30*time.Second)
	_, i2 := r.waitLine(i1, `db.0 started`, 10*time.Second)
	_, i3 := r.waitLine(i2, `db.0 ready after .* \(READY=1\)`, 10*time.Second)
	r.waitLine(i3, `web.0 started`, 10*time.Second)
	r.waitLine(0, `web: 1 of 1 instances ready`, 10*time.Second)
	if strings.Contains(strings.Join(r.outBefore(i1), "\n"), "db.0 started") {
		t.Error("db started before build finished")
	}
	m := r.mark()
	r.signal(syscall.SIGTERM)
	_, j := r.waitLine(m, `web.0 \(pid \d+\) was killed by SIGTERM`, 20*time.Second)
	r.waitLine(j, `db.0 \(pid \d+\) was killed by SIGTERM`, 20*time.Second)
	if code := r.wait(20 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func (r *runner) outBefore(i int) []string {
	lines, _, _ := r.out.snapshot()
	return lines[:i]
}

// STOPPING=1 starts the replacement before the dying instance exits.
func TestStoppingStartsReplacementFirst(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "w" {
  command = ["{{helper}}", "stopping", "1s"]
  ready { check = "notify" }
  restart { backoff = "5s" }
}
`)
	line, _ := r.waitLine(0, `w.0 started \(pid \d+\)`, 30*time.Second)
	first := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(line)[1]
	_, i := r.waitLine(0, `w.0 \(pid `+first+`\) announced STOPPING=1; its replacement w.0 is starting`, 30*time.Second)
	line, i = r.waitLine(i, `w.0 started \(pid \d+\), replacement for one that announced STOPPING=1`, 30*time.Second)
	second := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(line)[1]
	// The replacement is ready before the dying instance exits (it dies
	// 500ms after STOPPING=1), and the runner does not signal it: it is
	// already on its way out.
	_, i = r.waitLine(i, `w.0 ready after .*, replacement for one that announced STOPPING=1`, 30*time.Second)
	r.waitLine(i, `w.0 \(pid `+first+`\) exited with status 1 after announcing STOPPING=1`, 30*time.Second)
	if st := r.status(); st.Apps[0].Procs[0].PID == 0 || fmt.Sprint(st.Apps[0].Procs[0].PID) == first {
		t.Errorf("after the exit, instance 0 is %+v; want the replacement (pid %s) serving", st.Apps[0].Procs[0], second)
	}
	if strings.Contains(r.out.all(), "restarting in") {
		t.Error("the dying instance went through backoff; its replacement should already run")
	}
}

// Bad config: exit 2, nothing started, every error with its position.
func TestInvalidConfigExitsTwo(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "web" {
  command = ["sleep", "1000"]
  listeners = ["nope"]
  stop { signal = "SIGFOO" }
}
`)
	if code := r.wait(30 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	errs := r.errs.all()
	for _, want := range []string{"cluster.hcl:4", "nope", "cluster.hcl:5", "SIGFOO"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(r.out.all(), "started") {
		t.Error("something was started from an invalid config")
	}
}

// If the runner itself is killed with SIGKILL, its instances die with it.
func TestKilledRunnerTakesInstancesAlong(t *testing.T) {
	t.Parallel()
	r := startRunner(t, goWeb(2))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	pids := r.servingPids("web")
	r.signal(syscall.SIGKILL)
	r.wait(10 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for pidAlive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("instance pid %d survived its runner's SIGKILL", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// JSON log format: one object per line with the documented fields.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "hi" {
  command = "echo hello json; echo oops >&2; sleep 1000"
}
`, "--log-format", "json")
	line, _ := r.waitLine(0, `"line":"hello json"`, 30*time.Second)
	for _, f := range []string{`"app":"hi"`, `"instance":0`, `"stream":"stdout"`, `"time":"`, `"pid":`} {
		if !strings.Contains(line, f) {
			t.Errorf("%s lacks %s", line, f)
		}
	}
	r.waitLine(0, `"stream":"stderr".*"line":"oops"`, 10*time.Second)
	r.waitLine(0, `"app":"clusterrun".*"stream":"runner"`, 10*time.Second)
}

// A Procfile is a config: one instance per line, PORT assigned like
// foreman. Its web line is served through the runner's proxy on foreman's
// port, while the app binds the private PORT it was given.
func TestProcfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pf := dir + "/Procfile"
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the procfile dir\n"), 0o644)
	os.WriteFile(pf, []byte("# comment\nweb: echo web port $PORT; exec python3 -u -m http.server $PORT --bind 127.0.0.1\nworker: echo worker port $PORT; sleep 1000\n"), 0o644)
	// The base port comes from PORT, as foreman's does; without it, 5000
	// (hclconfig's tests check that default without binding a port that
	// another test run on this machine may hold).
	base := freePort(t)
	r := startRunnerWith(t, dir, pf, spawnOpts{env: []string{"PORT=" + strconv.Itoa(base)}})
	r.waitLine(0, fmt.Sprintf(`listening: web on 0.0.0.0:%d \(proxy\)`, base), 30*time.Second)
	line, _ := r.waitLine(0, `web.0 +\| web port \d+$`, 30*time.Second)
	if strings.HasSuffix(line, fmt.Sprintf(" %d", base)) {
		t.Errorf("web got foreman's public port as PORT (%q); it must get a private one", line)
	}
	r.waitLine(0, fmt.Sprintf(`worker.0 +\| worker port %d$`, base+100), 30*time.Second)
	r.waitLine(0, `web.0 ready after .* \(tcp check\)`, 30*time.Second)
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/hello.txt", base))
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from the procfile dir\n" {
		t.Errorf("GET through the proxy: %s %q", resp.Status, body)
	}
}

// Signals other than the runner's own are forwarded to every instance.
func TestForwardsOtherSignals(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "w" {
  command   = "trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.1; done"
  instances = 2
}
`)
	r.waitLine(0, `w.1 +\| ready`, 30*time.Second)
	r.waitLine(0, `w.0 +\| ready`, 30*time.Second)
	r.signal(syscall.SIGUSR1)
	r.waitLine(0, `w.0 +\| got USR1`, 10*time.Second)
	r.waitLine(0, `w.1 +\| got USR1`, 10*time.Second)
}

// When every app has finished on its own, the runner exits.
func TestExitsWhenEverythingFinished(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "once" {
  command = "echo one-shot"
}
`)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	r.waitLine(0, `every app has finished`, time.Second)
}

// An unmodified Node app that calls server.listen(PORT) itself, as pm2's
// cluster mode allows, shares the runner's socket (through the preload) and
// is ready when it listens.
func TestNodeZeroChangeListen(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "hello" {
  command   = ["node", "{{repo}}/bench/reload/hello.js"]
  instances = 4
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `hello: 4 of 4 instances ready`, 60*time.Second)
	for i := 0; i < 4; i++ {
		r.waitLine(0, fmt.Sprintf(`hello.%d ready after .* \(READY=1\)`, i), time.Second)
	}
	instancesAnswering(t, port, 4)
}

// The ready pipe is an sd_notify channel any program can write to.
func TestReadyPipe(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "sh" {
  command = "sleep 0.2; echo READY=1 >&$CLUSTERRUN_READY_FD; echo STATUS=warm >&$CLUSTERRUN_READY_FD; sleep 1000"
  ready { check = "notify" }
}
`)
	r.waitLine(0, `sh.0 ready after .* \(READY=1\)`, 30*time.Second)
}

// Colors follow --color and NO_COLOR; --timestamps prefixes a time; a last
// line without a newline is still shown.
func TestColorsTimestampsPartialLine(t *testing.T) {
	t.Parallel()
	app := `
app "p" {
  command = "printf 'first\n'; printf 'no newline at the end'"
  restart { policy = "never" }
}
`
	plain := startRunner(t, app)
	plain.wait(30 * time.Second)
	plain.waitLine(0, `^p\.0 +\| no newline at the end$`, time.Second)
	if strings.Contains(plain.out.all(), "\x1b[") {
		t.Error("NO_COLOR output has escape codes")
	}
	colored := startRunner(t, app, "--color", "always", "--timestamps")
	colored.wait(30 * time.Second)
	colored.waitLine(0, `^\d\d:\d\d:\d\d\.\d{3} \x1b\[[0-9;]+mp\.0 +\|\x1b\[0m first$`, time.Second)
}

// check prints a summary of a valid file, and the diagnostics and exit 2
// for a broken one.
func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
listener "http" {
  address = "127.0.0.1:8080"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 3
  listeners = ["http"]
}
`)
	out, err := exec.Command(bin, "check", "-f", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("check of a valid file: %v\n%s", err, out)
	}
	for _, want := range []string{"is valid", "web", "127.0.0.1:8080", "shared", "3"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	os.WriteFile(cfg, []byte("app \"web\" {\n  instances = \"lots\"\n}\n"), 0o644)
	cmd := exec.Command(bin, "check", "-f", cfg)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "cluster.hcl:2:") {
		t.Errorf("check of a broken file: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// user/group drop privileges after the runner bound the sockets; the
// instance can still reach its notify socket and its inherited listener.
func TestUserDropsPrivileges(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("switching users needs root")
	}
	// The instances' working directory must be open to them.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	r := startRunnerIn(t, dir, writeConfig(t, dir, `
listener "http" {
  address = "127.0.0.1:0"
}
app "low" {
  command   = ["{{helper}}", "notify", "READY=1"]
  user      = "nobody"
  listeners = ["http"]
  ready { check = "notify" }
}
app "who" {
  command = "echo uid $(id -u) gid $(id -g); sleep 1000"
  user    = "nobody"
  group   = "nogroup"
}
`))
	r.waitLine(0, `low.0 ready after .* \(READY=1\)`, 30*time.Second)
	r.waitLine(0, `who.0 +\| uid 65534 gid 65534$`, 30*time.Second)
}
