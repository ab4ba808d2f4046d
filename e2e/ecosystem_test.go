//go:build linux

package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A change under a watched path rolls the app over (new instances ready
// first), naming the path; an ignored one does not; a change to an env
// file the app reads does too.
func TestWatchReloadsTheApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src", "node_modules"), 0o755)
	os.WriteFile(filepath.Join(dir, "app.env"), []byte("GREETING=hello\n"), 0o644)
	r := startRunnerIn(t, dir, writeConfig(t, dir, `
app "web" {
  command   = ["sleep", "1000"]
  instances = 2
  env_file  = ["app.env"]
  watch {
    paths  = ["src"]
    ignore = ["node_modules", "*.log"]
  }
}
`))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	before := r.servingPids("web")
	// Ignored first: then a real change, whose reload must name the real
	// file (an ignored change would have been reported first).
	os.WriteFile(filepath.Join(dir, "src", "node_modules", "x.js"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "debug.log"), []byte("x"), 0o644)
	m := r.mark()
	os.WriteFile(filepath.Join(dir, "src", "main.js"), []byte("x"), 0o644)
	line, _ := r.waitLine(m, `watch: .* changed`, 30*time.Second)
	if !strings.Contains(line, "main.js") {
		t.Errorf("the reload was triggered by %q, want src/main.js", line)
	}
	r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 30*time.Second)
	after := r.servingPids("web")
	for i := range before {
		if after[i] == before[i] {
			t.Errorf("instance %d was not replaced", i)
		}
	}
	// An env file replaced by rename, as editors save.
	m = r.mark()
	tmp := filepath.Join(dir, ".app.env.swp")
	os.WriteFile(tmp, []byte("GREETING=bye\n"), 0o644)
	os.Rename(tmp, filepath.Join(dir, "app.env"))
	r.waitLine(m, `watch: .*app.env changed`, 30*time.Second)
	r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 30*time.Second)
}

// The metrics block serves Prometheus text on its address only.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	r := startRunner(t, fmt.Sprintf(`
metrics {
  address = "127.0.0.1:%d"
}
app "web" {
  command   = ["sleep", "1000"]
  instances = 2
}
`, port))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`clusterrun_up 1`,
		`clusterrun_instances{app="web",state="ready"} 2`,
		`clusterrun_restarts_total{app="web",reason="crash"} 0`,
		`clusterrun_reloads_total{outcome="completed"} 0`,
		`clusterrun_time_to_ready_seconds_count{app="web"} 2`,
		`clusterrun_instance_pss_bytes{app="web",instance="0"`,
		`clusterrun_runner_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// logs -n replays the last lines from the runner's history, of one app or
// all, and --no-follow stops there.
func TestLogsHistory(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
app "counter" {
  command = "for i in $(seq 1 200); do echo line $i; done; exec sleep 1000"
}
app "other" {
  command = "echo other says hi; exec sleep 1000"
}
`)
	r.waitLine(0, `counter.0 +\| line 200$`, 30*time.Second)
	r.waitLine(0, `other.0 +\| other says hi`, 30*time.Second)
	out, errOut, code := r.cli("logs", "counter", "-n", "3", "--no-follow")
	if code != 0 {
		t.Fatalf("logs: exit %d %s", code, errOut)
	}
	var app []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "counter.0") {
			app = append(app, l)
		}
		if strings.HasPrefix(l, "other") {
			t.Errorf("logs counter showed another app's line: %q", l)
		}
	}
	if len(app) == 0 || !strings.HasSuffix(app[len(app)-1], "line 200") || len(app) > 3 {
		t.Errorf("logs counter -n 3 --no-follow printed:\n%s", out)
	}
	out, _, _ = r.cli("logs", "-n", "1000", "--no-follow")
	if !strings.Contains(out, "counter.0 ") || !strings.Contains(out, "other says hi") || !strings.Contains(out, "line 1\n") {
		t.Errorf("logs -n 1000 lacks lines of both apps:\n%.2000s", out)
	}
}
