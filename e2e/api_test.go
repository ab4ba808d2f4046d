//go:build linux

package e2e

// The HTTP API (docs/api.md) on the real runner: every endpoint, the token
// rules of the TCP listener, and hostile clients.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/clusterrun/clusterrun/proc"
)

// apiClient is an HTTP client of the runner's unix socket.
func apiClient(r *runner) *http.Client {
	path := faultSocketPath(r)
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// call sends method path (body "" for none) and returns the status and body.
func call(t *testing.T, c *http.Client, base, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wantJSONError checks that body is the API's JSON error for code.
func wantJSONError(t *testing.T, what string, code int, body string, says string) {
	t.Helper()
	var e struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != code || !strings.Contains(e.Error, says) {
		t.Errorf("%s: %q, want a JSON error %d saying %q", what, body, code, says)
	}
}

// sseReader reads one /v1/events stream.
type sseReader struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openEvents(t *testing.T, c *http.Client, base string, hdr ...string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/events", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /v1/events: %s %s", resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &sseReader{resp: resp, sc: sc}
}

// next returns the next event's name and data.
func (s *sseReader) next() (string, string, error) {
	var name, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && data != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	if s.sc.Err() != nil {
		return "", "", s.sc.Err()
	}
	return "", "", io.EOF
}

// waitEvent reads events until one matches (name, and data containing
// every part), with a bound.
func (s *sseReader) waitEvent(t *testing.T, bound time.Duration, name string, parts ...string) string {
	t.Helper()
	timer := time.AfterFunc(bound, func() { s.resp.Body.Close() })
	defer timer.Stop()
	for {
		n, d, err := s.next()
		if err != nil {
			t.Fatalf("waited %s for a %s event with %q: %v", bound, name, parts, err)
		}
		ok := n == name
		for _, p := range parts {
			ok = ok && strings.Contains(d, p)
		}
		if ok {
			return d
		}
	}
}

func TestAPIEndpoints(t *testing.T) {
	t.Parallel()
	r := startRunner(t, sleepers(2)+`
app "worker" {
  command = ["sleep", "1000"]
  ready {
    check = "delay"
    delay = "100ms"
  }
}
`)
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	r.waitLine(0, `worker: 1 of 1 instances ready`, 30*time.Second)
	c := apiClient(r)
	const base = "http://clusterrun"
	ev := openEvents(t, c, base)
	defer ev.resp.Body.Close()
	if name, data, err := ev.next(); err != nil || name != "status" || !strings.Contains(data, `"name":"web"`) {
		t.Fatalf("the first event is %q %.200s (%v), want the status", name, data, err)
	}

	code, body := call(t, c, base, "GET", "/v1/status", "")
	var st statusJSON
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Apps) != 2 {
		t.Fatalf("GET /v1/status: %d %.300s", code, body)
	}
	code, body = call(t, c, base, "GET", "/v1/apps/web", "")
	if code != 200 || !strings.Contains(body, `"name":"web"`) || strings.Contains(body, `"name":"worker"`) {
		t.Errorf("GET /v1/apps/web: %d %.300s", code, body)
	}
	code, body = call(t, c, base, "GET", "/v1/apps/wbe", "")
	wantJSONError(t, "GET /v1/apps/wbe", 404, body, `Did you mean "web"?`)
	code, body = call(t, c, base, "POST", "/v1/status", "")
	wantJSONError(t, "POST /v1/status", 405, body, "use GET")
	code, body = call(t, c, base, "GET", "/v2/status", "")
	wantJSONError(t, "GET /v2/status", 404, body, "no endpoint")

	// Kill an instance: the stream tells the crash and the restart.
	pid := r.servingPids("web")[0]
	syscall.Kill(pid, syscall.SIGKILL)
	ev.waitEvent(t, 30*time.Second, "crashed", fmt.Sprintf(`"pid":%d`, pid), `"reason":"was killed by SIGKILL"`)
	ev.waitEvent(t, 30*time.Second, "restart", `"app":"web"`, `"instance":0`, `"reason":"crash"`)
	ev.waitEvent(t, 30*time.Second, "started", `"app":"web"`, `"instance":0`)

	code, body = call(t, c, base, "POST", "/v1/apps/web/reload", "")
	if code != 200 || !strings.Contains(body, `"outcome":"completed"`) {
		t.Errorf("POST /v1/apps/web/reload: %d %s", code, body)
	}
	ev.waitEvent(t, 30*time.Second, "rollout-ended", `"app":"web"`, `"outcome":"completed"`)
	code, body = call(t, c, base, "POST", "/v1/reload", "")
	if code != 200 || !strings.Contains(body, `"app":"worker"`) {
		t.Errorf("POST /v1/reload: %d %s", code, body)
	}
	code, body = call(t, c, base, "POST", "/v1/apps/web/restart", "")
	if code != 200 || !strings.Contains(body, "restart complete: 2 of 2") {
		t.Errorf("POST /v1/apps/web/restart: %d %s", code, body)
	}
	code, body = call(t, c, base, "POST", "/v1/instances/web.1/restart", "")
	if code != 200 || !strings.Contains(body, "restart complete: 1 of 2") {
		t.Errorf("POST /v1/instances/web.1/restart: %d %s", code, body)
	}
	code, body = call(t, c, base, "POST", "/v1/instances/web.7/restart", "")
	wantJSONError(t, "POST /v1/instances/web.7/restart", 409, body, "instances 0 to 1")
	code, body = call(t, c, base, "POST", "/v1/instances/web/restart", "")
	wantJSONError(t, "POST /v1/instances/web/restart", 400, body, "not APP.N")

	for _, tc := range []struct {
		body string
		code int
		says string
	}{
		{`{"delta": 1}`, 200, "web scaled to 3 instances"},
		{`{"instances": 2}`, 200, "web scaled to 2 instances"},
		{`{"instances": 5000}`, 409, "1..4096"},
		{`{"delta": -5}`, 409, "1..4096"},
		{`{"instances": 2, "delta": 1}`, 400, "exactly one"},
		{`{}`, 400, "exactly one"},
		{`{"count": 2}`, 400, "unknown field"},
		{`{"instances": "two"}`, 400, "bad scale request"},
		{`{"delta": 1} {"delta": 1}`, 400, "more than one"},
		{`[`, 400, "bad scale request"},
	} {
		code, body = call(t, c, base, "POST", "/v1/apps/web/scale", tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("scale %s: %d %s, want %d saying %q", tc.body, code, body, tc.code, tc.says)
		}
	}

	code, body = call(t, c, base, "POST", "/v1/apps/worker/stop", "")
	if code != 200 || !strings.Contains(body, "stopping worker") {
		t.Errorf("POST /v1/apps/worker/stop: %d %s", code, body)
	}
	r.waitLine(0, `worker.0 \(pid \d+\) was killed by SIGTERM`, 30*time.Second)
	code, body = call(t, c, base, "POST", "/v1/apps/worker/restart", "")
	wantJSONError(t, "restart of a stopped app", 409, body, "not running")
	code, body = call(t, c, base, "POST", "/v1/apps/worker/start", "")
	if code != 200 || !strings.Contains(body, "starting worker") {
		t.Errorf("POST /v1/apps/worker/start: %d %s", code, body)
	}

	// Logs: history of one app as JSON lines of the logmux schema.
	code, body = call(t, c, base, "GET", "/v1/logs?app=worker&n=1000", "")
	if code != 200 {
		t.Fatalf("GET /v1/logs: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for _, l := range lines {
		var rec struct {
			App, Stream, Line, About string
			Instance                 int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a /v1/logs line is not JSON: %q", l)
		}
		if rec.App != "worker" && rec.About != "worker" {
			t.Errorf("GET /v1/logs?app=worker sent a line of %q about %q: %s", rec.App, rec.About, rec.Line)
		}
	}
	if !strings.Contains(body, "worker.0 started") {
		t.Errorf("GET /v1/logs?app=worker lacks the runner's lines about worker:\n%s", body)
	}
	for _, q := range []string{"n=-1", "n=x", "follow=maybe"} {
		code, body = call(t, c, base, "GET", "/v1/logs?"+q, "")
		wantJSONError(t, "GET /v1/logs?"+q, 400, body, "")
	}
	code, body = call(t, c, base, "GET", "/v1/logs?app=wokrer", "")
	wantJSONError(t, "GET /v1/logs?app=wokrer", 404, body, `Did you mean "worker"?`)

	// Health.
	code, body = call(t, c, base, "GET", "/healthz", "")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("GET /healthz: %d %s", code, body)
	}
	code, body = call(t, c, base, "GET", "/readyz", "")
	if code != 200 && !strings.Contains(body, "worker is starting") {
		t.Errorf("GET /readyz: %d %s", code, body)
	}
}

// boundPort reads the port the runner printed for pattern's address.
func boundPort(t *testing.T, r *runner, pattern string) int {
	t.Helper()
	line, _ := r.waitLine(0, pattern, 30*time.Second)
	m := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in %q", line)
	}
	p, _ := strconv.Atoi(m[1])
	return p
}

// The API over TCP: only with a token, the read-only one for GETs only,
// health without one, and refusals logged once per burst.
func TestAPIRemoteTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const full, ro = "full-secret-0123456789abcdef", "read-only-secret-0123456789"
	os.WriteFile(filepath.Join(dir, "full.token"), []byte(full+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "ro.token"), []byte(ro+"\n"), 0o600)
	r := startRunnerIn(t, dir, writeConfig(t, dir, sleepers(1)+`
control {
  address              = "127.0.0.1:0"
  token_file           = "full.token"
  read_only_token_file = "ro.token"
}
`))
	port := boundPort(t, r, `control API: http://127\.0\.0\.1:\d+/v1/`)
	r.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	c := &http.Client{Timeout: 60 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	m := r.mark()
	for _, tc := range []struct {
		method, path string
		hdr          []string
		code         int
	}{
		{"GET", "/v1/status", nil, 401},
		{"GET", "/v1/status", bearer("not-the-token-0123456789"), 401},
		{"GET", "/v1/status", bearer(full[:len(full)-1]), 401},
		{"GET", "/v1/status", bearer(full), 200},
		{"GET", "/v1/status", bearer(ro), 200},
		{"GET", "/v1/logs?n=5", bearer(ro), 200},
		{"POST", "/v1/apps/web/restart", bearer(ro), 403},
		{"POST", "/v1/apps/web/scale", bearer(""), 401},
		{"POST", "/v1/apps/web/restart", bearer(full), 200},
		{"GET", "/healthz", nil, 200},
		{"GET", "/readyz", nil, 200},
	} {
		code, body := call(t, c, base, tc.method, tc.path, "", tc.hdr...)
		if code != tc.code {
			t.Errorf("%s %s with %q: %d %s, want %d", tc.method, tc.path, tc.hdr, code, body, tc.code)
		}
		if code == 401 || code == 403 {
			wantJSONError(t, tc.method+" "+tc.path, code, body, "")
		}
	}
	ev := openEvents(t, c, base, bearer(ro)...)
	ev.resp.Body.Close()
	// A burst of refused requests: one line at once, one summary after.
	for i := 0; i < 50; i++ {
		call(t, c, base, "GET", "/v1/status", "", bearer("guess-"+strconv.Itoa(i)+"-0123456789")...)
	}
	r.waitLine(m, `control: refused .* the bearer token is not valid|this API needs a bearer token`, 10*time.Second)
	r.waitLine(m, `\d+ more like it in that burst`, 60*time.Second)
	if n := strings.Count(r.out.all(), "control: refused"); n > 3 {
		t.Errorf("the runner logged %d refusals for 54 refused requests in two bursts, want one line per burst:\n%s", n, r.out.all())
	}
}

// check refuses a control address without a token.
func TestAPIRemoteNeedsToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sleepers(1)+`
control {
  address = "127.0.0.1:7070"
}
`)
	cmd := execCLI(dir, "check", "-f", cfg)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "Control address without a token") {
		t.Errorf("check of a control address without a token: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// pss returns a process's proportional set size in bytes, read the way
// the runner reads its instances'.
func pss(t *testing.T, pid int) int64 {
	t.Helper()
	m, err := proc.ProcessMemory(pid)
	if err != nil {
		t.Fatalf("PSS of pid %d: %v", pid, err)
	}
	return m.PSS
}

// Hostile clients: one that sends its headers slowly is cut off; a
// thousand event streams cost bounded memory, past the followers' cap
// one more is refused with a JSON error, and meanwhile commands answer and
// a crashed instance is restarted (and every stream hears of it).
func TestAPIHostileClients(t *testing.T) {
	heavy(t)
	r := startRunner(t, sleepers(2))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	path := faultSocketPath(r)

	// A slow client: half a request line, then nothing.
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /v1/status HTTP/1.1\r\nHost: x\r\n"))
	slow.SetReadDeadline(time.Now().Add(60 * time.Second))
	t0 := time.Now()
	n, err := io.Copy(io.Discard, slow)
	t.Logf("the slow client was cut off after %s (%d bytes, %v)", time.Since(t0).Round(time.Millisecond), n, err)
	if err != nil {
		t.Errorf("a client that never finishes its headers was not cut off within 60s: %v", err)
	}

	base := faultStatus(r)
	pss0 := pss(t, base.PID)
	const streams = 1024 // the followers' cap
	var held []*sseReader
	var hmu sync.Mutex
	defer func() {
		for _, s := range held {
			s.resp.Body.Close()
		}
	}()
	c := apiClient(r)
	c.Transport.(*http.Transport).MaxConnsPerHost = 0
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := c.Get("http://clusterrun/v1/events")
			if err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				errs <- fmt.Errorf("%s %s", resp.Status, b)
				return
			}
			s := &sseReader{resp: resp, sc: bufio.NewScanner(resp.Body)}
			s.sc.Buffer(make([]byte, 64<<10), 16<<20)
			if name, _, err := s.next(); err != nil || name != "status" {
				errs <- fmt.Errorf("first event %q: %v", name, err)
				resp.Body.Close()
				return
			}
			hmu.Lock()
			held = append(held, s)
			hmu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("opening %d event streams: %v", streams, err)
	}
	// One more follower is refused, clearly.
	code, body := call(t, &http.Client{Transport: c.Transport}, "http://clusterrun", "GET", "/v1/events", "")
	wantJSONError(t, "follower past the cap", 503, body, "too many followers")
	if code != 503 {
		t.Errorf("follower past the cap: %d", code)
	}
	out, errOut, code := r.cli("logs", "-n", "1")
	if code != 1 || !strings.Contains(errOut, "too many followers") || strings.Contains(errOut, "broken pipe") {
		t.Errorf("logs past the followers' cap: exit %d, %q%q", code, out, errOut)
	}
	// Commands still get through.
	if _, errOut, code := r.cli("status"); code != 0 {
		t.Errorf("status with %d streams open: exit %d %s", streams, code, errOut)
	}
	during := faultStatus(r)
	pss1 := pss(t, base.PID)
	t.Logf("with %d event streams: runner PSS %.1f MiB (%.1f before), %d fds (%d before), %d goroutines (%d before)",
		streams, float64(pss1)/(1<<20), float64(pss0)/(1<<20), during.FDs, base.FDs, during.Goroutines, base.Goroutines)
	// A stream costs what net/http costs per connection (its buffers and
	// two goroutines) plus a 256-pointer event buffer: about 32 KiB here.
	// The race runtime's shadow memory follows the heap and the stacks,
	// some six times over.
	perStream := int64(64 << 10)
	if raceBuild {
		perStream *= 8
	}
	if grow := pss1 - pss0; grow > perStream*streams {
		t.Errorf("the runner grew by %d MiB for %d streams (%d KiB each); want under %d KiB each",
			grow>>20, streams, grow/streams>>10, perStream>>10)
	}
	// A crash meanwhile is restarted, and the streams hear of it.
	pid := faultServing(r, "web")[0]
	m := r.mark()
	syscall.Kill(pid, syscall.SIGKILL)
	r.waitLine(m, `web.0 started`, 30*time.Second)
	for i, s := range held[:8] {
		s.waitEvent(t, 30*time.Second, "crashed", fmt.Sprintf(`"pid":%d`, pid))
		_ = i
	}
	for _, s := range held {
		s.resp.Body.Close()
	}
	held = nil
	faultEventually(t, 30*time.Second, fmt.Sprintf("the runner's fds to return to about %d", base.FDs), func() bool {
		return faultStatus(r).FDs <= base.FDs+3
	})
}

// execCLI is a clusterrun command run in dir, with no runner's
// environment.
func execCLI(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

// logs APP: the runner's lines about APP belong to it, lines about other
// apps do not pass, -n counts only the lines that pass, and a mistyped
// app exits 2 naming the app meant.
func TestLogsAppFilter(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "counter" {
  command = "for i in $(seq 1 5); do echo line $i; done; exec sleep 1000"
}
app "other" {
  command = "for i in $(seq 1 50); do echo other $i; done; exec sleep 1000"
}
`)
	r.waitLine(0, `counter.0 +\| line 5$`, 30*time.Second)
	r.waitLine(0, `other.0 +\| other 50$`, 30*time.Second)
	r.waitLine(0, `other: 1 of 1 instances ready`, 30*time.Second)
	out, errOut, code := r.cli("logs", "counter", "-n", "1000", "--no-follow")
	if code != 0 {
		t.Fatalf("logs counter: exit %d %s", code, errOut)
	}
	if !strings.Contains(out, "clusterrun | counter.0 started") || !strings.Contains(out, "counter.0    | line 5") && !strings.Contains(out, "| line 5") {
		t.Errorf("logs counter lacks counter's lines or the runner's lines about it:\n%s", out)
	}
	if strings.Contains(out, "other") {
		t.Errorf("logs counter shows lines about other:\n%s", out)
	}
	// The last 3 lines that pass, whatever other printed after them.
	out, _, _ = r.cli("logs", "counter", "-n", "3", "--no-follow")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Errorf("logs counter -n 3 printed %d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "counter") && !strings.Contains(l, "| line ") {
			t.Errorf("logs counter -n 3 printed %q", l)
		}
	}
	// JSON lines say what a runner line is about.
	out, _, _ = r.cli("logs", "counter", "-n", "1000", "--no-follow", "--log-format", "json")
	if !strings.Contains(out, `"stream":"runner","about":"counter","line":"counter.0 started`) {
		t.Errorf("JSON logs lack about:\n%s", out)
	}
	_, errOut, code = r.cli("logs", "countr", "--no-follow")
	if code != 2 || !strings.Contains(errOut, `Did you mean "counter"?`) {
		t.Errorf("logs countr: exit %d %q, want 2 and did you mean", code, errOut)
	}
}

// ls lists every runner of the user from anywhere; outside a project a
// command finds the only runner, and with several it lists them and asks
// for -f; inside a project whose runner is not up it never picks another.
func TestLsAndFindingTheRunner(t *testing.T) {
	t.Parallel()
	rt, err := os.MkdirTemp("", "cr-rt-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(rt, 0o700)
	defer os.RemoveAll(rt)
	elsewhere := t.TempDir() // no cluster.hcl up the tree of a temp dir
	run := func(dir string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	if out, _, code := run(elsewhere, "ls"); code != 0 || !strings.Contains(out, "no runner is up") {
		t.Errorf("ls with no runner: exit %d %q", code, out)
	}
	d1 := t.TempDir()
	r1 := startRunnerRT(t, d1, writeConfig(t, d1, sleepers(2)), rt)
	r1.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	out, errOut, code := run(elsewhere, "status")
	if code != 0 || !strings.Contains(out, r1.cfg) {
		t.Errorf("status outside a project with one runner up: exit %d %q %q", code, out, errOut)
	}
	d2 := t.TempDir()
	r2 := startRunnerRT(t, d2, writeConfig(t, d2, sleepers(1)), rt)
	r2.waitLine(0, `web: 1 of 1 instances ready`, 30*time.Second)
	out, _, code = run(elsewhere, "ls")
	if code != 0 || !strings.Contains(out, r1.cfg) || !strings.Contains(out, r2.cfg) ||
		!strings.Contains(out, fmt.Sprintf("%d", r1.cmd.Process.Pid)) || !strings.Contains(out, "2/2") || !strings.Contains(out, "1/1") {
		t.Errorf("ls with two runners: exit %d\n%s", code, out)
	}
	out, _, _ = run(elsewhere, "ls", "--sockets")
	if n := len(strings.Fields(out)); n != 2 {
		t.Errorf("ls --sockets printed %d sockets:\n%s", n, out)
	}
	_, errOut, code = run(elsewhere, "reload")
	if code != 2 || !strings.Contains(errOut, "2 runners are up") || !strings.Contains(errOut, r1.cfg) || !strings.Contains(errOut, r2.cfg) {
		t.Errorf("reload outside a project with two runners: exit %d %q", code, errOut)
	}
	// In a project whose runner is not up: that project's answer.
	d3 := t.TempDir()
	writeConfig(t, d3, sleepers(1))
	_, errOut, code = run(d3, "status")
	if code != 1 || !strings.Contains(errOut, "no runner is up") {
		t.Errorf("status in a project with no runner: exit %d %q", code, errOut)
	}
	// A runner killed without cleaning up leaves a stale socket: ls skips it.
	r2.cmd.Process.Kill()
	r2.wait(30 * time.Second)
	out, _, _ = run(elsewhere, "ls")
	if strings.Contains(out, r2.cfg) || !strings.Contains(out, r1.cfg) {
		t.Errorf("ls after a runner was killed:\n%s", out)
	}
}
