//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
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

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// Listener mode "http": the runner reads every request and forwards it to
// a ready instance over connections it keeps, so a client's keep-alive
// connection outlives reloads and crashes, a request a crash cut off is
// sent again, and naive apps reload without a failed request.

const httpGoConfig = `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "http"
  %s
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = %d
  listeners = ["http"]
  ready { timeout = "20s" }
}
`

// kill -9 of one of three instances under GET load fails no request, in
// either traffic shape: what was in flight on it, or on its way to it, is
// sent to another instance.
func TestHTTPKillNineFailsNothing(t *testing.T) {
	heavy(t)
	r := startRunner(t, fmt.Sprintf(httpGoConfig, "", 3))
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	keep := loadWith(t, loadgen.Options{Addr: addr, Workers: 4, KeepAlive: true, Duration: time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
	closing := loadWith(t, loadgen.Options{Addr: addr, Workers: 4, Duration: time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
	for round := 0; round < 2; round++ {
		pids := r.servingPids("web")
		waitServed(t, port, 300)
		m := r.mark()
		syscall.Kill(pids[1], syscall.SIGKILL)
		r.waitLine(m, `web\.1 ready after`, 30*time.Second)
	}
	waitServed(t, port, 300)
	requireNoFailures(t, "kill -9 of one of 3 instances under keep-alive GET load, twice", keep())
	requireNoFailures(t, "kill -9 of one of 3 instances under close GET load, twice", closing())
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// waitServed sends n requests of its own, one after another: time for the
// load to run, measured in requests rather than a sleep.
func waitServed(t *testing.T, port, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := getAny(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// getAny GETs url on a new connection and wants a 200, whatever the body.
func getAny(url string) (string, error) {
	b, err := getBody(client, url)
	return string(b), err
}

// exitAtOnce is a naive app: keep-alive HTTP/1.1 on $PORT, and the moment
// SIGTERM comes it exits, whatever it was doing.
const exitAtOnce = `
import http.server, os, signal
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body are two writes: without this, Nagle holds the body
    # for the ACK of the head (40 ms), and the load would be thin.
    disable_nagle_algorithm = True
    def do_GET(self):
        b = b'{"pid": %d}\n' % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

// Apps that know nothing of graceful stops reload ten times under
// keep-alive and close load without a failed request: Python's own
// "python3 -m http.server $PORT" (HTTP/1.0, dies of SIGTERM) and an app
// that keeps connections alive and exits the moment SIGTERM comes. The
// runner stops sending an instance requests, waits for the ones it has,
// and only then signals it; the clients' connections are the runner's.
func TestHTTPNaiveAppsReloadLosingNothing(t *testing.T) {
	heavy(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "exit_at_once.py"), []byte(exitAtOnce), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, app := range []struct{ name, command string }{
		{"python3 -m http.server", `"exec python3 -m http.server $PORT"`},
		{"an app that exits at once on SIGTERM", `["python3", "exit_at_once.py"]`},
	} {
		cfg := fmt.Sprintf(`
listener "http" {
  address = "127.0.0.1:0"
  mode    = "http"
}
app "web" {
  command   = %s
  instances = 2
  listeners = ["http"]
  ready { timeout = "20s" }
}
`, app.command)
		r := startRunnerIn(t, dir, writeConfig(t, dir, cfg))
		port := r.port("http")
		r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		keep := loadWith(t, loadgen.Options{Addr: addr, Workers: 3, KeepAlive: true, Duration: 5 * time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
		closing := loadWith(t, loadgen.Options{Addr: addr, Workers: 3, Duration: 5 * time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
		for round := 0; round < 10; round++ {
			m := r.mark()
			r.signal(syscall.SIGHUP)
			r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
		}
		requireNoFailures(t, app.name+": 10 reloads under keep-alive load", keep())
		requireNoFailures(t, app.name+": 10 reloads under close load", closing())
		r.signal(syscall.SIGTERM)
		r.wait(30 * time.Second)
	}
}

// socketIOModules installs the real socket.io and socket.io-client from
// npm, once per run, into a scratch directory, and returns its
// node_modules. The test is skipped only when npm cannot reach the
// registry; CI installs npm.
func socketIOModules(t *testing.T) string {
	t.Helper()
	sioOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clusterrun-sio-")
		if err != nil {
			sioErr = err
			return
		}
		sioDir = dir
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", dir, "socket.io@4", "socket.io-client@4")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			sioErr = fmt.Errorf("npm install socket.io socket.io-client: %v\n%s", err, out)
			sioOffline = regexp.MustCompile(`ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH|network`).Match(out)
		}
	})
	if sioErr != nil {
		if sioOffline {
			t.Skipf("npm cannot reach the registry, so socket.io cannot be installed: %v", sioErr)
		}
		t.Fatal(sioErr)
	}
	return filepath.Join(sioDir, "node_modules")
}

var (
	sioOnce    sync.Once
	sioDir     string
	sioErr     error
	sioOffline bool
)

// sioResult is what testdata/socketio/client.js prints.
type sioResult struct {
	Acks        int      `json:"acks"`
	PIDs        [][]int  `json:"pids"`
	Errors      []string `json:"errors"`
	Disconnects []string `json:"disconnects"`
}

// runSocketIOClients runs client.js and returns what it saw.
func runSocketIOClients(t *testing.T, modules string, port, clients, msgs, gapMS int) sioResult {
	t.Helper()
	res, err := socketIOClients(modules, port, clients, msgs, gapMS)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// socketIOClients is runSocketIOClients for a goroutine other than the
// test's, which must not call t.Fatal: the error comes back instead.
func socketIOClients(modules string, port, clients, msgs, gapMS int) (sioResult, error) {
	cmd := exec.Command("node", filepath.Join(repo, "e2e/testdata/socketio/client.js"),
		fmt.Sprintf("http://127.0.0.1:%d", port), strconv.Itoa(clients), strconv.Itoa(msgs), strconv.Itoa(gapMS))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var res sioResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		return res, fmt.Errorf("socket.io clients: %v, printed %q (%v)", err, out, jerr)
	}
	if err != nil {
		return res, fmt.Errorf("socket.io clients: %v: %+v", err, res)
	}
	return res, nil
}

// Socket.io's long polling needs every request of a session to reach the
// process that holds it, or it answers 400 "Session ID unknown". With a
// sticky cookie, and with ip-hash (eight clients on eight loopback
// addresses), four instances: a hundred messages per client, each client
// on one process, no 400; then the same across two reloads, where the
// sessions of a replaced process end with a reconnect and never reach
// another process.
func TestHTTPSocketIOSticky(t *testing.T) {
	t.Parallel()
	modules := socketIOModules(t)
	for _, tc := range []struct{ name, opts string }{
		{"sticky cookie", "sticky {\n    cookie = \"io\"\n  }"},
		{"ip-hash", `balance = "ip-hash"`},
	} {
		r := startRunner(t, fmt.Sprintf(`
listener "io" {
  address = "127.0.0.1:0"
  mode    = "http"
  %s
}
app "chat" {
  command   = ["node", "{{repo}}/e2e/testdata/socketio/server.js"]
  instances = 4
  listeners = ["io"]
  env       = { NODE_PATH = %q }
  stop { timeout = "2s" }
}
`, tc.opts, modules))
		port := r.port("io")
		r.waitLine(0, `chat: 4 of 4 instances ready`, 30*time.Second)

		res := runSocketIOClients(t, modules, port, 8, 100, 0)
		pids := map[int]bool{}
		for i, ps := range res.PIDs {
			if len(ps) != 1 {
				t.Errorf("%s: client %d was answered by processes %v, want one", tc.name, i, ps)
			}
			for _, p := range ps {
				pids[p] = true
			}
		}
		if res.Acks != 800 || len(res.Errors) > 0 || len(pids) < 2 {
			t.Errorf("%s: %d acks of 800, %d processes (want 2 or more), errors %q", tc.name, res.Acks, len(pids), res.Errors)
		}
		for _, d := range res.Disconnects {
			if !strings.HasSuffix(d, "io client disconnect") {
				t.Errorf("%s: a session ended on its own: %s", tc.name, d)
			}
		}

		// Across reloads: the clients send for about 3s while two reloads
		// replace every process.
		// The clients' run is bounded by client.js itself (120s).
		done := make(chan error, 1)
		var across sioResult
		go func() {
			var err error
			across, err = socketIOClients(modules, port, 8, 100, 30)
			done <- err
		}()
		for round := 0; round < 2; round++ {
			m := r.mark()
			r.signal(syscall.SIGHUP)
			r.waitLine(m, `chat: reload complete: 4 of 4 instances replaced`, 60*time.Second)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		res = across
		if res.Acks != 800 {
			t.Errorf("%s across reloads: %d acks of 800", tc.name, res.Acks)
		}
		reconnects := 0
		for _, line := range append(res.Disconnects, res.Errors...) {
			if strings.Contains(line, "status=400") || strings.Contains(line, "Session ID unknown") {
				t.Errorf("%s across reloads: %s", tc.name, line)
			}
			if !strings.HasSuffix(line, "io client disconnect") {
				reconnects++
			}
		}
		if log := r.out.all() + r.errs.all(); strings.Contains(log, "Session ID unknown") {
			t.Errorf("%s across reloads: a process answered a session it does not hold:\n%s", tc.name, grepLines(log, "Session ID unknown"))
		}
		t.Logf("%s across reloads: %d acks, %d sessions ended and reconnected: %q", tc.name, res.Acks, reconnects, res.Disconnects)
		r.signal(syscall.SIGTERM)
		r.wait(30 * time.Second)
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// An upgraded connection (a WebSocket, say) goes through raw to one
// instance and stays on it across a reload: plain requests go to the new
// instance at once, while the replaced one keeps the connection until its
// stop timeout; then it gets its stop signal, and the connection ends.
func TestHTTPUpgradeStaysOnItsInstance(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "http"
}
app "web" {
  command   = ["{{helper}}", "upgrade"]
  listeners = ["http"]
  stop { timeout = "3s" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	echo := func(s string) string {
		t.Helper()
		fmt.Fprintf(c, "%s\n", s)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("echo %q: %v", s, err)
		}
		return strings.TrimSpace(line)
	}
	first := echo("a")
	oldPID, _, _ := strings.Cut(first, " ")
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web: reload complete: 1 of 1 instances replaced`, 30*time.Second)
	body, err := getAny(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil || strings.Contains(body, oldPID) {
		t.Errorf("a plain request after the reload: %q %v; want the new instance, not pid %s", body, err, oldPID)
	}
	if got := echo("b"); got != oldPID+" b" {
		t.Errorf("the upgraded connection after the reload answered %q, want %q: it must stay on its instance", got, oldPID+" b")
	}
	r.waitLine(m, `still open after 3s; sending SIGTERM anyway`, 30*time.Second)
	r.waitLine(m, `SIGTERM received, pid `+oldPID, 30*time.Second)
	if line, err := br.ReadString('\n'); err == nil {
		t.Errorf("the upgraded connection outlived its instance: read %q", line)
	}
}

// The figures of an http listener, as a user reads them: status shows each
// instance's requests per second and p50/p99, the metrics endpoint counts
// requests by app, instance and status class with a latency histogram, and
// access_log = true writes one line per request into the app's own log
// stream, as a line of the instance that answered.
func TestHTTPFiguresAndAccessLog(t *testing.T) {
	t.Parallel()
	mport := freePort(t)
	r := startRunner(t, fmt.Sprintf(`
metrics {
  address = "127.0.0.1:%d"
}
listener "http" {
  address    = "127.0.0.1:0"
  mode       = "http"
  access_log = true
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 2
  listeners = ["http"]
}
`, mport))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	m := r.mark()
	waitServed(t, port, 40)
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/missing", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r.waitLine(m, `^web\.[01] +\| 127\.0\.0\.1 "GET /missing" 404 \d+B \d+\.\d{3}ms$`, 30*time.Second)
	r.waitLine(m, `^web\.[01] +\| 127\.0\.0\.1 "GET /" 200 \d+B \d+\.\d{3}ms$`, 30*time.Second)

	out, _, code := r.cli("status")
	if code != 0 || !strings.Contains(out, "REQ/S") || !regexp.MustCompile(`(?m)^web +\d .* [0-9.]+ +[0-9.]+(µs|ms) +[0-9.]+(µs|ms)\s*$`).MatchString(out) {
		t.Errorf("status lacks the instances' last minute:\n%s", out)
	}
	body, err := getAny(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range regexp.MustCompile(`(?m)^clusterrun_http_requests_total\{app="web",code="2xx",instance="[01]",listener="http"\} (\d+)$`).FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	if total < 40 || !strings.Contains(body, `clusterrun_http_requests_total{app="web",code="4xx"`) ||
		!strings.Contains(body, `clusterrun_http_request_duration_seconds_bucket{app="web",listener="http",le="0.005"}`) {
		t.Errorf("metrics: %d 2xx requests counted (want 40 or more):\n%s", total, grepLines(body, "clusterrun_http"))
	}
}
