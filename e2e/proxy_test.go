//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// Listener mode "proxy": the runner accepts and forwards to each ready
// instance's private socket, so apps that only read PORT get N instances,
// ready-only routing and reloads without a failed request.

const proxyPortConfig = `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["python3", "{{repo}}/e2e/testdata/portapp/server.py"]
  instances = %d
  listeners = ["http"]
  env       = { BOOT_DELAY_MS = "%d" }
  ready { timeout = "20s" }
  %s
}
`

// A PORT-only app (it binds $PORT itself) gets N instances behind one
// port, every one of them reached.
func TestProxyPortOnlyAppReachesEveryInstance(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(proxyPortConfig, 3, 0, ""))
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	instancesAnswering(t, port, 3)
	// status shows each instance's private address.
	out, _, _ := r.cli("status")
	if !strings.Contains(out, "proxy (least-conn)") {
		t.Errorf("status does not show the proxy listener:\n%s", out)
	}
}

// An unmodified Node app that calls listen(PORT) behind a proxy listener:
// the preload maps that onto the private socket the runner bound, so the
// instance listens on loopback only (Node's own listen(PORT) would take
// every interface) and is reported ready without a probe.
func TestProxyNodeListenPortUsesPrivateSocket(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["node", "{{repo}}/bench/reload/hello.js"]
  instances = 2
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	// Two reloads: a slot's replacement gets its second private socket,
	// and the one after it the first one again, which the previous
	// process listened on. Both must be on the address the proxy dials.
	for round := 0; round <= 2; round++ {
		if round > 0 {
			m := r.mark()
			r.signal(syscall.SIGHUP)
			r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
		}
		seen := instancesAnswering(t, port, 2)
		for _, a := range r.status().Apps {
			for _, p := range a.Procs {
				if p.Role != "serving" {
					continue // a replaced process still exiting
				}
				if seen[p.Instance] != p.PID {
					t.Errorf("after %d reloads: instance %d answered from pid %d, status says pid %d", round, p.Instance, seen[p.Instance], p.PID)
				}
				_, ps, err := net.SplitHostPort(p.Addr)
				if err != nil {
					t.Fatalf("instance %d: private address %q: %v", p.Instance, p.Addr, err)
				}
				priv, _ := strconv.Atoi(ps)
				if got := listeningOn(t, priv); len(got) != 1 || got[0] != "127.0.0.1" {
					t.Errorf("after %d reloads: instance %d: its private port %d listens on %v; want 127.0.0.1 only", round, p.Instance, priv, got)
				}
			}
		}
	}
}

// An app that takes fd 3 works in proxy mode too (the Go example listens on
// the private socket it is given), with round-robin.
func TestProxyFdAppRoundRobin(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
  balance = "round-robin"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 4
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)
	// Round-robin over 4: 8 sequential requests reach each instance twice.
	seen := map[int]int{}
	for i := 0; i < 8; i++ {
		a, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		seen[a.Instance]++
	}
	for i := 0; i < 4; i++ {
		if seen[i] != 2 {
			t.Errorf("round-robin: instances answered %v, want each twice", seen)
			break
		}
	}
}

// A release that takes 3s to boot makes no request wait and none fail:
// only ready instances get connections, and a replaced one gets none once
// it is told to stop. In both traffic shapes.
func TestProxyReloadsLoseNothing(t *testing.T) {
	heavy(t)
	for _, keepAlive := range []bool{false, true} {
		r := startRunner(t, fmt.Sprintf(proxyPortConfig, 2, 0, "reload { parallel = 1 }"))
		port := r.port("http")
		r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
		before := r.servingPids("web")
		writeConfig(t, r.dir, fmt.Sprintf(proxyPortConfig, 2, 3000, "reload { parallel = 1 }"))
		stop := loadWith(t, loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: 4,
			Duration: 2 * time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second, KeepAlive: keepAlive})
		for round := 0; round < 2; round++ {
			m := r.mark()
			r.signal(syscall.SIGHUP)
			r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
		}
		res := stop()
		what := fmt.Sprintf("2 reloads of a 3s-booting release, keep-alive %v", keepAlive)
		requireNoFailures(t, what, res)
		// No connection went to an instance still booting: it binds its
		// port only once booted, so a connection sent there would have
		// been refused, and the proxy says so in the log before it tries
		// another instance. (The latency says nothing on a busy machine:
		// a refused connect is retried within a millisecond.)
		if strings.Contains(r.out.all(), "cannot connect to backend") {
			t.Errorf("%s: the proxy tried an instance that was not ready:\n%s", what, r.out.all())
		}
		var worst time.Duration
		for _, s := range res.Samples {
			worst = max(worst, s.Latency)
		}
		t.Logf("%s: slowest request %s", what, worst)
		after := r.servingPids("web")
		for i := range before {
			if after[i] == before[i] {
				t.Errorf("instance %d not replaced", i)
			}
		}
		r.signal(syscall.SIGTERM)
		if code := r.wait(30 * time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
	}
}

// kill -9 of one instance under load fails at most the requests in flight
// on it; new connections go to the others at once.
func TestProxyKilledInstanceFailsOnlyItsInflight(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(proxyPortConfig, 3, 0, ""))
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	pids := r.servingPids("web")
	const workers = 6
	stop := loadWith(t, loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: workers,
		Duration: time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
	// Some load first, then the kill, then until the replacement serves.
	for i := 0; i < 200; i++ {
		if _, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatal(err)
		}
	}
	m := r.mark()
	syscall.Kill(pids[1], syscall.SIGKILL)
	r.waitLine(m, `web.1 ready after`, 30*time.Second)
	for i := 0; i < 200; i++ {
		if _, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatal(err)
		}
	}
	res := stop()
	failed := loadgen.Failed(res.Samples)
	t.Logf("kill -9 of one of 3 instances under load: %s", loadgen.Summary(res, res.Samples))
	if failed > workers {
		t.Errorf("%d requests failed; at most the %d in flight may", failed, workers)
	}
}

// An instance that stops answering its health check is replaced, new one
// first, and status counts it as a health restart.
func TestProxyHealthReplacesUnhealthyInstance(t *testing.T) {
	t.Parallel()
	r := startRunner(t, fmt.Sprintf(proxyPortConfig, 2, 0, `health {
    check    = "http"
    path     = "/healthz"
    interval = "200ms"
    timeout  = "150ms"
    failures = 2
  }`))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	sick := r.servingPids("web")[0]
	m := r.mark()
	os.WriteFile(filepath.Join(r.dir, "sick-"+strconv.Itoa(sick)), nil, 0o644)
	r.waitLine(m, fmt.Sprintf(`web.0 \(pid %d\) failed 2 http checks in a row; its replacement web.0 is starting`, sick), 30*time.Second)
	_, i := r.waitLine(m, `web.0 ready after .*, replacement for one that failed its health check`, 30*time.Second)
	r.waitLine(i, fmt.Sprintf(`web.0 \(pid %d\) exited with status 0`, sick), 30*time.Second)
	instancesAnswering(t, port, 2)
	out, _, _ := r.cli("status", "--json")
	if !strings.Contains(out, `"health": 1`) {
		t.Errorf("status does not count the health restart:\n%s", out)
	}
}

// A Procfile's web line is served through the runner's proxy on foreman's
// port: an app that binds $PORT reloads and scales with zero failed
// requests.
func TestProcfileWebReloadsAndScalesLosingNothing(t *testing.T) {
	heavy(t)
	dir := t.TempDir()
	pf := filepath.Join(dir, "Procfile")
	os.WriteFile(pf, []byte("web: exec python3 "+repo+"/e2e/testdata/portapp/server.py\n"), 0o644)
	// The Procfile's base port comes from PORT (foreman's 5000 without it):
	// a free one keeps this test off a port something else on the machine
	// may hold. The runner reads it again at every reload.
	r := startRunnerWith(t, dir, pf, spawnOpts{env: []string{"PORT=" + strconv.Itoa(freePort(t))}})
	line, _ := r.waitLine(0, `listening: web on 0.0.0.0:(\d+) \(proxy\)`, 30*time.Second)
	pub := line[strings.LastIndex(line, ":")+1 : strings.Index(line, " (proxy)")]
	r.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	p, _ := strconv.Atoi(pub)
	stop := load(t, p)
	for round := 0; round < 2; round++ {
		m := r.mark()
		r.signal(syscall.SIGHUP)
		r.waitLine(m, `web: reload complete: 1 of 1 instances replaced`, 60*time.Second)
	}
	if out, _, code := r.cli("scale", "web", "3"); code != 0 {
		t.Fatalf("scale web 3: %s", out)
	}
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	res := stop()
	requireNoFailures(t, "Procfile web: 2 reloads and a scale", res)
	instancesAnswering(t, p, 3)
}

// An app without listeners that binds a fixed port itself cannot run old
// and new side by side: start-first aborts on "address in use", and
// reload { order = "stop-first" } replaces it (the old stops, then the new
// starts).
func TestStopFirstReloadOfAFixedPortApp(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := fmt.Sprintf(`
app "fixed" {
  command = ["python3", "{{repo}}/e2e/testdata/portapp/server.py"]
  env     = { PORT = "%d", NOTIFY_READY = "1" }
  # Ready once it has bound the port: a new instance that cannot bind it
  # is never ready. (With a delay, one that takes longer than the delay to
  # fail on a busy machine would count as ready.)
  ready { check = "notify" }
  reload { order = "%%s" }
}
`, port)
	r := startRunner(t, fmt.Sprintf(cfg, "start-first"))
	r.waitLine(0, `fixed: 1 of 1 instances ready`, 30*time.Second)
	before := r.servingPids("fixed")[0]
	_, errOut, code := r.cli("reload")
	if code != 1 || !strings.Contains(errOut, "did not complete") {
		t.Errorf("start-first reload of a fixed-port app: exit %d, %q; want an abort", code, errOut)
	}
	writeConfig(t, r.dir, fmt.Sprintf(cfg, "stop-first"))
	out, errOut, code := r.cli("reload")
	if code != 0 || !strings.Contains(out, "fixed: reload complete: 1 of 1 instances replaced") {
		t.Fatalf("stop-first reload: exit %d, %q %q", code, out, errOut)
	}
	if after := r.servingPids("fixed")[0]; after == before {
		t.Error("the instance was not replaced")
	}
	if _, err := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
		t.Errorf("the new instance does not answer: %v", err)
	}
}

// A tcp check of an app's own fixed PORT cannot tell old from new: such an
// app is replaced stop-first whatever the file says, and the log says why.
func TestFixedPortProbeReplacesStopFirst(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := startRunner(t, fmt.Sprintf(`
app "fixed" {
  command = ["python3", "{{repo}}/e2e/testdata/portapp/server.py"]
  env     = { PORT = "%d" }
  ready { check = "tcp" }
}
`, port))
	r.waitLine(0, `fixed: 1 of 1 instances ready`, 30*time.Second)
	out, errOut, code := r.cli("reload")
	if code != 0 || !strings.Contains(out, "fixed: reload complete: 1 of 1 instances replaced") {
		t.Fatalf("reload: exit %d, %q %q", code, out, errOut)
	}
	r.waitLine(0, fmt.Sprintf(`stop-first: its ready tcp check probes PORT %d, which old and new would share`, port), time.Second)
	if strings.Contains(r.out.all(), "Address already in use") {
		t.Errorf("old and new ran side by side:\n%s", r.out.all())
	}
}
