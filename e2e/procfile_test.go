//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A release line (Heroku's release phase) runs once, to completion,
// before web starts, and again before each reload's rollout of web; the
// release writes a numbered line to runs.log, and web serves that file,
// so what web answers says which release ran before it started.
func TestProcfileReleaseRunsFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freePort(t)
	os.WriteFile(filepath.Join(dir, ".env"), []byte(fmt.Sprintf("PORT=%d\n", port)), 0o644)
	pf := filepath.Join(dir, "Procfile")
	// The release takes a moment, so that a web started beside it (not
	// after it) would find no runs.log yet and exit 1.
	// web is the first line, so that foreman's port for it is the free one.
	os.WriteFile(pf, []byte(`web: test -f runs.log && exec python3 -u -m http.server $PORT --bind 127.0.0.1
release: sleep 0.3; if [ -f fail ]; then echo migration failed; exit 1; fi; echo "release $(( $(cat runs.log 2>/dev/null | wc -l) + 1 ))" >> runs.log; echo migrated
`), 0o644)
	r := startRunnerIn(t, dir, pf)
	_, i := r.waitLine(0, `release.0 \(pid \d+\) exited with status 0; done`, 30*time.Second)
	_, j := r.waitLine(i, `web.0 started \(pid \d+\)`, 30*time.Second)
	r.waitLine(j, `web.0 ready after`, 30*time.Second)
	if got := getText(t, port, "/runs.log"); got != "release 1\n" {
		t.Errorf("web serves runs.log = %q at start, want one release run", got)
	}
	if strings.Contains(strings.Join(r.outLines()[:i], "\n"), "web.0 started") {
		t.Errorf("web started before the release was done:\n%s", r.out.all())
	}

	m := r.mark()
	r.signal(syscall.SIGHUP)
	_, i = r.waitLine(m, `release.0\+? \(pid \d+\) exited with status 0; done`, 30*time.Second)
	_, j = r.waitLine(i, `web.0 started \(pid \d+\), replacement running release 2`, 30*time.Second)
	r.waitLine(j, `web: reload complete`, 30*time.Second)
	if got := getText(t, port, "/runs.log"); got != "release 1\nrelease 2\n" {
		t.Errorf("web serves runs.log = %q after the reload, want two release runs", got)
	}
	if strings.Contains(strings.Join(r.outLines()[m:i], "\n"), "web.0 started") {
		t.Errorf("web's replacement started before the reload's release was done:\n%s", r.out.all())
	}

	// A release that fails aborts the reload, as a failed release phase
	// aborts a deploy: web keeps serving the release it runs.
	os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644)
	m = r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `release.0\+? +\| migration failed`, 30*time.Second)
	line, _ := r.waitLine(m, `web: reload aborted`, 30*time.Second)
	t.Logf("%s", line)
	if got := getText(t, port, "/runs.log"); got != "release 1\nrelease 2\n" {
		t.Errorf("web serves runs.log = %q after the failed release, want the two runs before it", got)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// A web line that sets PORT itself is run as foreman runs it: it listens
// on its own port, which the runner probes; check says so with a warning.
func TestProcfileWebWithItsOwnPort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	own := freePort(t)
	pf := filepath.Join(dir, "Procfile")
	os.WriteFile(pf, []byte(fmt.Sprintf("web: PORT=%d python3 -u -m http.server $PORT --bind 127.0.0.1\n", own)), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644)
	r := startRunnerIn(t, dir, pf)
	if _, errOut, code := r.cli("check"); code != 0 || !strings.Contains(errOut, "Warning: Web line sets its own PORT") {
		t.Errorf("check: exit %d, want 0 with the warning:\n%s", code, errOut)
	}
	r.waitLine(0, `web.0 ready after .* \(tcp check\)`, 30*time.Second)
	if got := getText(t, own, "/hello.txt"); got != "hello\n" {
		t.Errorf("GET on the line's own port %d = %q", own, got)
	}
	for _, l := range r.outLines() {
		if strings.Contains(l, "listening: web") {
			t.Errorf("the runner holds a listener for a web line that binds its own port: %q", l)
		}
	}
	r.signal(syscall.SIGTERM)
	r.wait(30 * time.Second)
}

// check finds a missing program behind env, as Procfiles write a line
// with its variables.
func TestCheckSeesThroughEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pf := filepath.Join(dir, "Procfile")
	os.WriteFile(pf, []byte("web: env RAILS_ENV=production bin/rails server -p $PORT\n"), 0o644)
	cmd := exec.Command(bin, "check", "-f", pf)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err == nil || !strings.Contains(out, "Error: Program not found") || !strings.Contains(out, `runs "bin/rails"`) {
		t.Errorf("check of a line running a missing bin/rails through env: %v\n%s", err, out)
	}
}

func getText(t *testing.T, port int, path string) string {
	t.Helper()
	b, err := getBody(client, fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}

// outLines returns the runner's output lines so far.
func (r *runner) outLines() []string {
	lines, _, _ := r.out.snapshot()
	return lines
}
