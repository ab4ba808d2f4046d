//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type healthAnswer struct {
	code   int
	Status string `json:"status"`
	Reason string `json:"reason"`
	Phase  string `json:"phase"`
}

func probe(t *testing.T, url string) healthAnswer {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h healthAnswer
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("GET %s: not JSON: %q", url, b)
	}
	h.code = resp.StatusCode
	return h
}

// waitProbe polls url until it answers code with a reason containing
// says, with a bound: nothing announces a probe's answer.
func waitProbe(t *testing.T, url string, code int, says string) healthAnswer {
	t.Helper()
	var h healthAnswer
	faultEventually(t, 30*time.Second, fmt.Sprintf("%s to answer %d %q (last: %d %q)", url, code, says, h.code, h.Reason), func() bool {
		h = probe(t, url)
		return h.code == code && strings.Contains(h.Reason, says)
	})
	return h
}

// /healthz and /readyz on the metrics address, and status --check, across
// start, a reload, a crash loop, a stopped app and the drain.
func TestHealthEndpointStates(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := fmt.Sprintf(`
metrics {
  address = "127.0.0.1:%d"
}
app "web" {
  command = ["sleep", "1000"]
  instances = 2
  ready {
    check = "delay"
    delay = "1500ms"
  }
  stop { timeout = "20s" }
}
`, port)
	dir := t.TempDir()
	r := startRunnerIn(t, dir, writeConfig(t, dir, base))
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	r.waitLine(0, `metrics: http://`, 30*time.Second)

	// Start: not ready until web is. Before the runner's loop exists the
	// endpoints say that it is starting.
	if h := probe(t, ready); h.code == 200 {
		if !strings.Contains(r.out.all(), "web: 2 of 2 instances ready") {
			t.Errorf("readyz said ready before web was: %+v", h)
		}
	} else if h.code != 503 || !strings.Contains(h.Reason, "starting") {
		t.Errorf("readyz while starting: %d %+v", h.code, h)
	}
	if h := probe(t, healthz); h.code != 200 && (h.code != 503 || !strings.Contains(h.Reason, "the runner is starting")) {
		t.Errorf("healthz while starting: %+v", h)
	}
	if out, _, code := r.cli("status", "--check"); code != 0 && (code != 1 || !strings.HasPrefix(out, "not ready: ")) {
		t.Errorf("status --check while starting: exit %d %q", code, out)
	}
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	waitProbe(t, ready, 200, "")
	if out, errOut, code := r.cli("status", "--check"); code != 0 || out != "ready\n" {
		t.Errorf("status --check when ready: exit %d %q %q", code, out, errOut)
	}

	// A reload: ready throughout, since the old instances serve.
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web.0 started`, 30*time.Second)
	if h := probe(t, ready); h.code != 200 {
		t.Errorf("readyz during a rolling reload: %+v", h)
	}
	r.waitLine(m, `web: reload complete`, 60*time.Second)

	// A crash loop: not ready, with the reason.
	m = r.mark()
	os.WriteFile(r.cfg, []byte(base+`
app "flaky" {
  command = ["sh", "-c", "exit 3"]
}
`), 0o644)
	r.signal(syscall.SIGHUP)
	h := waitProbe(t, ready, 503, "flaky")
	t.Logf("readyz with a crash-looping app: %d %q", h.code, h.Reason)
	out, _, code := r.cli("status", "--check")
	if code != 1 || !strings.HasPrefix(out, "not ready: ") || !strings.Contains(out, "flaky") || strings.Count(out, "\n") != 1 {
		t.Errorf("status --check with a crash loop: exit %d %q", code, out)
	}
	if h := probe(t, healthz); h.code != 200 {
		t.Errorf("healthz with a crash loop (the loop answers): %+v", h)
	}
	// A stopped app does not count.
	if _, errOut, code := r.cli("stop", "flaky"); code != 0 {
		t.Fatalf("stop flaky: %d %s", code, errOut)
	}
	waitProbe(t, ready, 200, "")

	// The drain: not ready at once, still alive, until the runner exits.
	// A stopped instance cannot act on its SIGTERM before SIGCONT: the
	// drain lasts until the test lets it end. It must be one the reload
	// that added flaky does not replace after this: that reload rolls web
	// over too, and a process it replaces would take its SIGSTOP along.
	r.waitLine(m, `web: reload complete`, 60*time.Second)
	pids := r.servingPids("web")
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP to web.0 (pid %d): %v", pids[0], err)
	}
	// kill(2) only queues it: until the process has stopped, a SIGTERM
	// sent now is taken first (the lower number) and kills it.
	faultEventually(t, 30*time.Second, fmt.Sprintf("web.0 (pid %d) to show state T after SIGSTOP", pids[0]), func() bool {
		return faultProcState(pids[0]) == 'T'
	})
	defer syscall.Kill(pids[0], syscall.SIGCONT)
	m = r.mark()
	r.signal(syscall.SIGTERM)
	r.waitLine(m, `received SIGTERM`, 30*time.Second)
	h = waitProbe(t, ready, 503, "draining")
	if h.Phase != "draining" {
		t.Errorf("readyz while draining: %+v", h)
	}
	if h := probe(t, healthz); h.code != 200 || h.Phase != "draining" {
		t.Errorf("healthz while draining: %+v", h)
	}
	syscall.Kill(pids[0], syscall.SIGCONT)
	if code := r.wait(60 * time.Second); code != 0 {
		t.Errorf("exit %d after the drain", code)
	}
}

// 2,000 idle keep-alive connections to the metrics address cannot take
// the runner's descriptors: past the cap they are answered 503 and
// closed, the held ones are closed by the header timeout, and an instance
// that crashes meanwhile is restarted.
func TestMetricsIdleConnectionsBounded(t *testing.T) {
	heavy(t)
	port := freePort(t)
	r := startRunner(t, fmt.Sprintf(`
metrics {
  address = "127.0.0.1:%d"
}
`, port)+sleepers(2))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	before := faultStatus(r)
	pss0 := pss(t, before.PID)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Each one sends a first request and then idles with the connection
	// kept alive, as a scraper that went quiet would.
	for i := 0; i < 2000; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	during := faultStatus(r)
	pss1 := pss(t, before.PID)
	t.Logf("with 2000 idle metrics connections: runner fds %d (%d before), PSS %.1f MiB (%.1f before)",
		during.FDs, before.FDs, float64(pss1)/(1<<20), float64(pss0)/(1<<20))
	if during.FDs > before.FDs+64+16 {
		t.Errorf("the runner holds %d fds with 2000 idle metrics connections (%d before); the cap is 64", during.FDs, before.FDs)
	}
	// A crash meanwhile is restarted.
	pid := faultServing(r, "web")[0]
	m := r.mark()
	syscall.Kill(pid, syscall.SIGKILL)
	r.waitLine(m, `web.0 started`, 30*time.Second)
	r.waitLine(m, `web.0 ready`, 30*time.Second)
	// The scrape endpoint still answers a new client once the idle ones
	// are gone (closed by the runner's timeouts, or by us).
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	faultEventually(t, 30*time.Second, "a scrape to answer after the idle connections", func() bool {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	faultEventually(t, 30*time.Second, "the runner's fds to return", func() bool {
		return faultStatus(r).FDs <= before.FDs+3
	})
}
