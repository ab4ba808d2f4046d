//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

const reloadConfig = `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 4
  listeners = ["http"]
  env       = { %s }
  ready {
    check   = "notify"
    timeout = "20s"
  }
  reload { parallel = %d }
}
`

// load runs a Connection: close load against port in the background; stop
// ends it and returns what it saw.
func load(t *testing.T, port int) (stop func() *loadgen.Result) {
	t.Helper()
	return loadWith(t, loadgen.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: 8,
		Duration: 2 * time.Minute, MaxRequests: 2_000_000, Timeout: 10 * time.Second,
	})
}

// loadWith runs the load o describes in the background; stop ends it and
// returns what it saw.
func loadWith(t *testing.T, o loadgen.Options) (stop func() *loadgen.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *loadgen.Result, 1)
	go func() {
		done <- loadgen.Run(ctx, o)
	}()
	return func() *loadgen.Result {
		cancel()
		return <-done
	}
}

func requireNoFailures(t *testing.T, what string, res *loadgen.Result) {
	t.Helper()
	if n := loadgen.Failed(res.Samples); n != 0 || len(res.Samples) < 100 {
		t.Errorf("%s: %s", what, loadgen.Summary(res, res.Samples))
	} else {
		t.Logf("%s: %s", what, loadgen.Summary(res, res.Samples))
	}
}

// Three SIGHUP reloads under continuous load replace every pid, and not one
// request fails.
func TestReloadsUnderLoadLoseNothing(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 1))
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	stop := load(t, port)
	seen := map[int]bool{}
	pids := r.servingPids("web")
	for round := 1; round <= 3; round++ {
		m := r.mark()
		r.signal(syscall.SIGHUP)
		r.waitLine(m, `web: reload complete: 4 of 4 instances replaced`, 60*time.Second)
		now := r.servingPids("web")
		for i, p := range now {
			if p == pids[i] || seen[p] {
				t.Errorf("round %d: instance %d still has pid %d", round, i, p)
			}
			seen[p] = true
		}
		pids = now
	}
	res := stop()
	requireNoFailures(t, "3 reloads under load", res)
	answered := loadgen.PIDs(res.Samples)
	for _, p := range pids {
		if answered[p] == 0 {
			t.Errorf("final pid %d never answered", p)
		}
	}
}

// A release that takes 3s to boot is rolled out without a failed request:
// the old instances serve until the new ones are ready.
func TestSlowBootingReleaseLosesNothing(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 2))
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	stop := load(t, port)
	writeConfig(t, r.dir, fmt.Sprintf(reloadConfig, `BOOT_DELAY_MS = "3000"`, 2))
	m := r.mark()
	r.signal(syscall.SIGHUP)
	line, _ := r.waitLine(m, `web: reload complete: 4 of 4 instances replaced in`, 60*time.Second)
	res := stop()
	requireNoFailures(t, "slow-booting release", res)
	after := r.servingPids("web")
	for i := range before {
		if after[i] == before[i] {
			t.Errorf("instance %d not replaced", i)
		}
	}
	if !strings.Contains(line, "replaced in 6") && !strings.Contains(line, "replaced in 7") && !strings.Contains(line, "replaced in 8") {
		t.Logf("rollout took: %s (2 at a time, 3s boot each)", line)
	}
}

// A release that crashes on boot aborts its rollout: the old pids keep
// serving, not one request fails, and a later good reload still works.
func TestCrashOnBootReleaseAborts(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 1))
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	stop := load(t, port)
	writeConfig(t, r.dir, fmt.Sprintf(reloadConfig, `BOOT_CRASH = "1"`, 1))
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web: reload aborted: the new web.0 \(pid \d+\) exited with status 1 before it was ready; 0 of 4 instances were replaced`, 60*time.Second)
	// Keep the load on while a few hundred more requests are answered
	// after the abort (a count, not a sleep).
	for i := 0; i < 300; i++ {
		if _, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatalf("request %d after the abort: %v", i, err)
		}
	}
	res := stop()
	requireNoFailures(t, "crash-on-boot release", res)
	after := r.servingPids("web")
	for i, p := range before {
		if after[i] != p {
			t.Errorf("instance %d: pid %d became %d; the old instances must keep serving", i, p, after[i])
		}
	}
	answered := loadgen.PIDs(res.Samples)
	if len(answered) != 4 {
		t.Errorf("answering pids %v, want the 4 old ones", answered)
	}
	// The CLI says it too, with exit 1.
	writeConfig(t, r.dir, fmt.Sprintf(reloadConfig, `BOOT_CRASH = "1"`, 1))
	out, errOut, code := r.cli("reload")
	if code != 1 || !strings.Contains(out+errOut, "reload aborted") {
		t.Errorf("clusterrun reload of a crashing release: exit %d, %q %q", code, out, errOut)
	}
	writeConfig(t, r.dir, fmt.Sprintf(reloadConfig, "", 1))
	out, errOut, code = r.cli("reload")
	if code != 0 || !strings.Contains(out, "web: reload complete: 4 of 4 instances replaced") {
		t.Errorf("clusterrun reload of a good release: exit %d, %q %q", code, out, errOut)
	}
}

// A broken file on SIGHUP changes nothing.
func TestBrokenConfigOnReloadChangesNothing(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 1))
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	os.WriteFile(r.cfg, []byte("app \"web\" {\n  command = 42\n  instances = -1\n}\nlistener {\n"), 0o644)
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `reload rejected; everything keeps running as it was`, 30*time.Second)
	r.waitLine(m, `on .*cluster.hcl line \d+`, 5*time.Second)
	after := r.servingPids("web")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("pids changed from %v to %v", before, after)
	}
	instancesAnswering(t, r.port("http"), 4)
	// Same through the CLI: exit 1 and the diagnostics.
	_, errOut, code := r.cli("reload")
	if code != 1 || !strings.Contains(errOut, "cluster.hcl line") {
		t.Errorf("reload of a broken file: exit %d, stderr %q", code, errOut)
	}
}

// Scale up and down through the CLI and through SIGTTIN/SIGTTOU; scaling
// down drains the highest-numbered instance.
func TestScale(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 1))
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	count := func() int { return len(r.servingPids("web")) }

	out, _, code := r.cli("scale", "web", "+2")
	if code != 0 || !strings.Contains(out, "web scaled to 6 instances") {
		t.Fatalf("scale +2: exit %d, %q", code, out)
	}
	r.waitLine(0, `web: 6 of 6 instances ready`, 30*time.Second)
	instancesAnswering(t, port, 6)

	before := r.servingPids("web")
	m := r.mark()
	if _, _, code := r.cli("scale", "web", "3"); code != 0 {
		t.Fatal("scale 3 failed")
	}
	for _, i := range []int{5, 4, 3} {
		r.waitLine(m, fmt.Sprintf(`web.%d \(pid %d\) exited with status 0`, i, before[i]), 30*time.Second)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d instances after scale 3", n)
	}

	m = r.mark()
	r.signal(syscall.SIGTTIN)
	r.waitLine(m, `web: scaling from 3 to 4 instances \(SIGTTIN\)`, 10*time.Second)
	r.waitLine(m, `web.3 ready after`, 30*time.Second)
	// Two signals sent at once may reach the runner as one (standard
	// signals do not queue), so wait for each.
	r.signal(syscall.SIGTTOU)
	r.waitLine(m, `web: scaling from 4 to 3 instances \(SIGTTOU\)`, 10*time.Second)
	r.signal(syscall.SIGTTOU)
	r.waitLine(m, `web: scaling from 3 to 2 instances \(SIGTTOU\)`, 10*time.Second)
	if n := count(); n != 2 {
		t.Fatalf("%d instances after SIGTTIN and 2 SIGTTOU, want 2", n)
	}
	if _, errOut, code := r.cli("scale", "web", "-5"); code != 1 || !strings.Contains(errOut, "cannot scale to -3") {
		t.Errorf("scale -5 from 2: exit %d, %q", code, errOut)
	}
	// An unknown app is a mistake on the command line: exit 2.
	if _, errOut, code := r.cli("scale", "nope", "2"); code != 2 || !strings.Contains(errOut, `no app "nope"`) {
		t.Errorf("scale of an unknown app: exit %d, %q", code, errOut)
	}
}

// status --json follows its schema.
func TestStatusJSONSchema(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 1))
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	out, _, code := r.cli("status", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	schema := map[string]string{"pid": "number", "config": "string", "apps": "array", "listeners": "array", "phase": "string",
		"goroutines": "number", "pss_bytes": "number", "uss_bytes": "number", "fds": "number", "counters": "object"}
	appSchema := map[string]string{"name": "string", "state": "string", "instances": "number", "listeners": "array", "procs": "array"}
	procSchema := map[string]string{
		"app": "string", "instance": "number", "pid": "number", "state": "string", "role": "string",
		"release": "number", "restarts": "number", "started": "string", "uptime_seconds": "number",
		"cpu_percent": "number", "pss_bytes": "number", "uss_bytes": "number",
	}
	checkSchema(t, "status", doc, schema)
	apps := doc["apps"].([]any)
	if len(apps) != 1 {
		t.Fatalf("%d apps", len(apps))
	}
	app := apps[0].(map[string]any)
	checkSchema(t, "app", app, appSchema)
	procs := app["procs"].([]any)
	if len(procs) != 4 {
		t.Fatalf("%d procs, want 4", len(procs))
	}
	for _, p := range procs {
		pm := p.(map[string]any)
		checkSchema(t, "proc", pm, procSchema)
		if pm["state"] != "ready" || pm["role"] != "serving" || pm["pss_bytes"].(float64) <= 0 || pm["uss_bytes"].(float64) <= 0 || pm["uss_bytes"].(float64) > pm["pss_bytes"].(float64) {
			t.Errorf("proc %v", pm)
		}
	}
	if doc["config"] != r.cfg {
		t.Errorf("config %v, want %s", doc["config"], r.cfg)
	}
	ls := doc["listeners"].([]any)
	if len(ls) != 1 {
		t.Fatalf("listeners %v", ls)
	}
	checkSchema(t, "listener", ls[0].(map[string]any), map[string]string{"name": "string", "address": "string", "mode": "string"})
	if addr := ls[0].(map[string]any)["address"]; addr != fmt.Sprintf("127.0.0.1:%d", r.port("http")) {
		t.Errorf("listener address %v, want the bound one", addr)
	}
	// The table names its columns.
	table, _, _ := r.cli("status")
	for _, col := range []string{"APP", "INST", "PID", "REL", "STATE", "RESTARTS", "LAST EXIT", "UPTIME", "CPU", "PSS", "USS", "runner + guard PSS", "LISTENER", "ADDRESS"} {
		if !strings.Contains(table, col) {
			t.Errorf("status table lacks %s:\n%s", col, table)
		}
	}
	ps, _, _ := r.cli("ps")
	if ps == "" || !strings.Contains(ps, "ready") {
		t.Errorf("ps printed %q", ps)
	}
}

func checkSchema(t *testing.T, what string, m map[string]any, schema map[string]string) {
	t.Helper()
	for k, typ := range schema {
		v, ok := m[k]
		if !ok {
			t.Errorf("%s: missing %q", what, k)
			continue
		}
		got := "other"
		switch v.(type) {
		case float64:
			got = "number"
		case string:
			got = "string"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		}
		if got != typ {
			t.Errorf("%s.%s is %s, want %s", what, k, got, typ)
		}
	}
}

// The control socket is private: 0600 in a 0700 directory, and another uid
// cannot use it.
func TestControlSocketIsPrivate(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "s" {
  command = ["sleep", "1000"]
}
`)
	r.waitLine(0, `s.0 started`, 30*time.Second)
	dir := filepath.Join(r.rt, "clusterrun")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("control dir %s: %v %v", dir, ents, err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("control dir mode %v, want 0700", fi.Mode().Perm())
	}
	sock, _ := os.Stat(filepath.Join(dir, ents[0].Name()))
	if sock.Mode()&os.ModeSocket == 0 || sock.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a 0600 socket", sock.Mode())
	}
	if os.Getuid() != 0 {
		t.Skip("checking another uid's refusal needs root to switch uid")
	}
	cmd := exec.Command(bin, "status", "-f", r.cfg)
	cmd.Env = r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("status as uid 65534 succeeded: %s", out)
	}
	if strings.Contains(string(out), "APP") {
		t.Errorf("uid 65534 saw the status table: %s", out)
	}
	// Even with the directory and socket opened up by mistake, the runner
	// checks the peer's uid itself.
	for _, d := range []string{r.rt, dir} {
		os.Chmod(d, 0o755)
	}
	os.Chmod(filepath.Join(dir, ents[0].Name()), 0o666)
	cmd = exec.Command(bin, "status", "-f", r.cfg)
	cmd.Env = r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "permission denied: uid 65534 does not own this runner") {
		t.Errorf("status as uid 65534 through an opened-up socket: exit %d, %s", cmd.ProcessState.ExitCode(), out)
	}
}

// A command with no runner up says so in one line and exits 1.
func TestNoRunnerUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "app \"a\" {\n  command = [\"true\"]\n}\n")
	for _, args := range [][]string{{"status"}, {"reload"}, {"scale", "a", "2"}, {"logs"}} {
		cmd := exec.Command(bin, append(args, "-f", cfg)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 ||
			!strings.Contains(string(out), "no runner is up") {
			t.Errorf("%v with no runner: exit %d, %q", args, cmd.ProcessState.ExitCode(), out)
		}
	}
}

// `clusterrun logs` attaches to the live stream; a client that stops
// reading never blocks the runner.
func TestLogsAttachAndSlowClient(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "talk" {
  command = "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done"
}
app "flood" {
  command = "sleep 1; while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done | head -n 300000; echo flood-done; sleep 1000"
}
`)
	r.waitLine(0, `talk.0 +\| line 1$`, 30*time.Second)
	cmd := exec.Command(bin, "logs", "talk", "-f", r.cfg)
	cmd.Env = r.env
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := newLineLog()
	go client.feed(stdout)
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines, changed, _ := client.snapshot()
		if len(lines) > 0 && strings.Contains(strings.Join(lines, "\n"), "talk.0") {
			break
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("logs client saw no talk.0 line within 20s: %q", lines)
		}
	}
	// Freeze the client: it stops reading. The runner must go on.
	cmd.Process.Signal(syscall.SIGSTOP)
	defer cmd.Process.Signal(syscall.SIGCONT)
	r.waitLine(0, `flood.0 +\| flood-done`, 60*time.Second)
	m := r.mark()
	r.waitLine(m, `talk.0 +\| line \d+`, 10*time.Second)
	if _, _, code := r.cli("status"); code != 0 {
		t.Error("status does not answer while a logs client is frozen")
	}
}

// After reloads, restarts and a scale up and down, the runner is back to
// the goroutines and file descriptors it had: nothing leaks per instance.
func TestNoGoroutineOrFdLeaks(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 2))
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	// A status call runs a connection goroutine of its own; count from a
	// second one, when the first has settled.
	r.status()
	fds := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.cmd.Process.Pid))
		return len(ents)
	}
	baseG, baseF := r.status().Goroutines, fds()
	for i := 0; i < 3; i++ {
		if _, errOut, code := r.cli("reload"); code != 0 {
			t.Fatalf("reload: %s", errOut)
		}
	}
	if _, _, code := r.cli("restart", "web.1"); code != 0 {
		t.Fatal("restart failed")
	}
	r.cli("scale", "web", "+3")
	r.waitLine(0, `web: 7 of 7 instances ready`, 30*time.Second)
	r.cli("scale", "web", "4")
	pids := r.servingPids("web")
	syscall.Kill(pids[0], syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.status()
		procs := 0
		for _, p := range st.Apps[0].Procs {
			if p.State == "ready" && p.Role == "serving" {
				procs++
			}
		}
		g, f := st.Goroutines, fds()
		if procs == 4 && len(st.Apps[0].Procs) == 4 && g <= baseG && f <= baseF {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the churn: %d goroutines (was %d), %d fds (was %d), %d serving of %d procs", g, baseG, f, baseF, procs, len(st.Apps[0].Procs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A reload that moves a listener binds the new address before the old
// socket closes: the new instances answer on the new port, and the old
// port is given back once the rollout is complete.
func TestReloadMovesListener(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(reloadConfig, "", 2))
	oldPort := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	old := r.servingPids("web")
	newPort := freePort(t)
	writeConfig(t, r.dir, strings.Replace(fmt.Sprintf(reloadConfig, "", 2), "127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", newPort), 1))
	out, errOut, code := r.cli("reload")
	if code != 0 || !strings.Contains(out, "reload complete: 4 of 4") {
		t.Fatalf("reload: exit %d %q %q", code, out, errOut)
	}
	instancesAnswering(t, newPort, 4)
	// The runner closes its copy of the old socket when the rollout
	// completes; the old instances, still draining then, hold theirs until
	// they exit.
	for _, pid := range old {
		r.waitLine(0, fmt.Sprintf(`\(pid %d\) exited`, pid), 30*time.Second)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", oldPort)); err == nil {
		c.Close()
		t.Errorf("old port %d still accepts after the rollout", oldPort)
	}
}

// freePort returns a TCP port that is free on every interface, for a test
// that must write a port number (a Procfile's base, systemd's -l), not
// ":0". It is below the ephemeral range (ip_local_port_range), which every
// outgoing connection on the machine draws its local port from: a port
// from there can be taken between this check and the runner's bind (by a
// load generator beside it, say), and then the bind fails. And it is never
// the same twice in one run.
func freePort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, _ = strconv.Atoi(f[0])
		}
	}
	const first = 10000 // above the ports services commonly use
	freePorts.Lock()
	defer freePorts.Unlock()
	if lo-first > 1000 {
		for range 1000 {
			p := first + rand.IntN(lo-first)
			if freePorts.given[p] {
				continue
			}
			if l, err := net.Listen("tcp", fmt.Sprintf(":%d", p)); err == nil {
				l.Close()
				freePorts.given[p] = true
				return p
			}
		}
	}
	// No room below the ephemeral range: a port from the kernel.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var freePorts = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// A new instance that is not ready within ready.timeout aborts the rollout;
// the old ones keep serving.
func TestReadyTimeoutAbortsReload(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(reloadConfig, `timeout = "20s"`, `timeout = "1s"`, 1)
	r := startRunner(t, fmt.Sprintf(cfg, "", 1))
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	writeConfig(t, r.dir, fmt.Sprintf(cfg, `BOOT_DELAY_MS = "5000"`, 1))
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web.0 \(pid \d+\) was not ready within 1s \(ready.check = "notify"\); stopping it`, 20*time.Second)
	r.waitLine(m, `web: reload aborted: the new web.0 \(pid \d+\) was not ready within 1s \(ready.check = "notify"\) and was stopped; 0 of 4 instances were replaced`, 20*time.Second)
	if after := r.servingPids("web"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("pids changed from %v to %v", before, after)
	}
}

// stop and start one app leave the others alone.
func TestStopStartApp(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "a" {
  command = ["sleep", "1000"]
}
app "b" {
  command = ["sleep", "1000"]
}
`)
	r.waitLine(0, `a: 1 of 1 instances ready`, 30*time.Second)
	r.waitLine(0, `b: 1 of 1 instances ready`, 30*time.Second)
	bPid := r.servingPids("b")[0]
	if out, _, code := r.cli("stop", "a"); code != 0 || !strings.Contains(out, "stopping a") {
		t.Fatalf("stop a: %d %q", code, out)
	}
	r.waitLine(0, `a.0 \(pid \d+\) was killed by SIGTERM`, 20*time.Second)
	st := r.status()
	for _, a := range st.Apps {
		want := map[string]string{"a": "stopped", "b": "ready"}[a.Name]
		if a.State != want {
			t.Errorf("%s is %s, want %s", a.Name, a.State, want)
		}
	}
	if _, errOut, code := r.cli("stop", "a"); code != 1 || !strings.Contains(errOut, "a is not running") {
		t.Errorf("stopping a stopped app: %d %q", code, errOut)
	}
	m := r.mark()
	if _, _, code := r.cli("start", "a"); code != 0 {
		t.Fatal("start a failed")
	}
	r.waitLine(m, `a: 1 of 1 instances ready`, 30*time.Second)
	if r.servingPids("b")[0] != bPid {
		t.Error("b was restarted by stop/start of a")
	}
}
