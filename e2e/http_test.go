//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	r := startRunner(t, fmt.Sprintf(httpGoConfig, "", 3))
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	keep := loadWith(t, loadgen.Options{Addr: addr, Workers: 4, KeepAlive: true, Duration: time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
	closing := loadWith(t, loadgen.Options{Addr: addr, Workers: 4, Duration: time.Minute, MaxRequests: 1_000_000, Timeout: 10 * time.Second})
	for round := 0; round < 2; round++ {
		pids := r.servingPids("web")
		waitServed(t, r, port, 300)
		m := r.mark()
		syscall.Kill(pids[1], syscall.SIGKILL)
		r.waitLine(m, `web\.1 ready after`, 30*time.Second)
	}
	waitServed(t, r, port, 300)
	requireNoFailures(t, "kill -9 of one of 3 instances under keep-alive GET load, twice", keep())
	requireNoFailures(t, "kill -9 of one of 3 instances under close GET load, twice", closing())
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// waitServed sends n requests of its own, one after another: time for the
// load to run, measured in requests rather than a sleep.
func waitServed(t *testing.T, r *runner, port, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := getAny(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// getAny GETs url on a new connection and wants a 200, whatever the body.
func getAny(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
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

var _ = bufio.NewReader
var _ = net.Dial
var _ = http.Get
var _ = regexp.MustCompile
var _ = strconv.Itoa
var _ = strings.Contains
